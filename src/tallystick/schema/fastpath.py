"""A fast, exact acceptance test for session bodies: msgspec's C decoder plus what it cannot see.

``msgspec.json.decode(body, type=Session)`` checks every type, pattern, length and
limit of the Structs at C speed, and already rejects invalid UTF-8, lone
surrogates, NaN/Infinity and integers beyond 64 bits. What it cannot see:

* **duplicate keys** (it keeps the last one). The decoded session accounts for one
  key per non-null field plus every attribute (``decoded_keys``); the body holds at
  least that many key tokens, more when a key is repeated or an optional field is
  sent as ``null``. ``key_tokens`` counts ``":`` once whitespace is dropped, in C
  (about 1 us for a 1 KB body): every key's closing quote is followed by its colon,
  so the count is never below the number of keys; a string starting with a colon
  or holding ``\\":`` adds to it. So a count equal to ``decoded_keys`` proves there
  is no duplicate and no ``null``; any other count sends the body to the full
  validator, which is exact.
* **end before start** of the session and of each span: compared here (a tie to the microsecond in a
  body with nanoseconds, and any time on the first or last day a ``datetime`` holds, go to the full
  validator, which compares nanoseconds and checks that the UTC instant exists).
* **a string attribute value over the length limit** (the server's setting, so not in the
  Structs): only a body longer than the limit can hold one, so ordinary bodies skip the walk.
* **RFC 3339 spelling**: msgspec also reads ``2024-05-01 12:00:00Z`` and offsets
  without a colon (``+0200``); a body holding ``-DD HH:`` or ``:SS[.f]+HHMM"``
  anywhere goes to the full validator, which accepts such strings only outside a
  timestamp field. Both searches start at a literal character, which ``re`` finds
  at C speed (one search for either shape would try a match at every digit).

``fast_fields`` is the same test for the server's hot path, a few microseconds cheaper: it
decodes into Structs with ``Session``'s fields whose attribute and type names carry no
``pattern`` (msgspec calls the regex engine once per name, about half of the decoding), and
checks the names against sets of names already found valid (names repeat from one session of a
tool to the next), the rules' own functions deciding a name not seen yet.

The fast path never rejects: when it cannot vouch for a body it returns None and
the caller runs the full validator, which alone words the errors. So the
answers are those of the full validator, only sooner for the common valid case;
``tests/schema/test_fastpath.py`` checks that the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, cast

import msgspec

from tallystick.schema import _rules
from tallystick.schema.session import Attributes, AttributeValue, Event, Session, Span, Timestamp, Uuid4

_WHITESPACE = b" \t\r\n"
# Date-times msgspec reads but RFC 3339 does not allow (or something containing their telltale part):
# a space for 'T' ("2024-05-01 12:00"), an offset without a colon ("12:00:00+0200").
_SPACE_FOR_T = re.compile(rb"-[0-9]{2} [0-9]{2}:")
_OFFSET_WITHOUT_COLON = re.compile(rb':[0-9]{2}(?:\.[0-9]+)?[+-][0-9]{4}"')
# Two cheaper searches first, one of which finds any such offset (most bodies hold neither): a literal
# start the engine skips to (':' starts every key's value, which made the search above cost 3 us).
_PLUS = re.compile(rb"\+")
_MINUS_FOUR_DIGITS = re.compile(rb'-[0-9]{4}"')
# msgspec keeps microseconds (rounded): two times equal to the microsecond may differ in the nanoseconds a
# seventh fractional digit holds, so such a tie goes to the full validator, which compares those too.
_NANOSECONDS = re.compile(rb":[0-9]{2}\.[0-9]{7}")
# A local time on the first or last day msgspec can hold may fall outside it in UTC (0001-01-01T00:00+01:00):
# the full validator refuses it (a key and the warehouse need the UTC instant). Looked for with ``in``: two
# searches by ``re`` took three times as long (about 1 us per KB body, on the ingest's hot path).
_FIRST_DAY = b"0001-01-01"
_LAST_DAY = b"9999-12-31"
_decoder = msgspec.json.Decoder(Session)


def _required(cls: type[msgspec.Struct]) -> int:
    return sum(f.required for f in msgspec.structs.fields(cls))


_SESSION_KEYS, _EVENT_KEYS, _SPAN_KEYS = _required(Session), _required(Event), _required(Span)


def key_tokens(body: bytes | msgspec.Raw) -> int:
    """At least the number of object keys the JSON text ``body`` holds, duplicates included (see above)."""
    return bytes(body).translate(None, _WHITESPACE).count(b'":')


def _attribute_keys(attributes: Attributes | None) -> int:
    return 0 if attributes is None else 1 + len(attributes)


def decoded_keys(session: Session) -> int:
    """How many keys a body without duplicates or ``null`` optional fields needs to decode to ``session``."""
    keys = _SESSION_KEYS + (session.ingestion_time is not None) + _attribute_keys(session.attributes)
    if session.events is not None:
        keys += 1
        for event in session.events:
            keys += _EVENT_KEYS + _attribute_keys(event.attributes)
    if session.spans is not None:
        keys += 1
        for span in session.spans:
            keys += _SPAN_KEYS + _attribute_keys(span.attributes)
    return keys


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    sessions: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=_rules.MAX_BATCH_SESSIONS)]


_batch_decoder = msgspec.json.Decoder(_RawBatch)


def fast_batch(body: bytes) -> list[msgspec.Raw] | None:
    """The JSON text of each session of a well-formed batch body, or None when the full check must decide.

    Well-formed: valid JSON, exactly one key ``sessions`` holding an array of at most
    100 items. The sessions themselves are not checked here.
    """
    try:
        batch = _batch_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if key_tokens(body) != 1 + sum(key_tokens(raw) for raw in batch.sessions):  # a second "sessions"
        return None
    return batch.sessions


def _has_long_value(session: Session, limit: int) -> bool:
    if _rules.long_value(session.attributes, limit) is not None:
        return True
    for items in (session.events, session.spans):
        if items is not None:
            for item in items:
                if _rules.long_value(item.attributes, limit) is not None:
                    return True
    return False


def fast_session(body: bytes | msgspec.Raw, max_value_chars: int = _rules.ATTRIBUTE_VALUE_MAX_LENGTH) -> Session | None:
    """The session in ``body`` if it certainly follows every rule; None when the full validator must decide.

    ``max_value_chars``: the longest string attribute value allowed, in code points.
    """
    try:
        session = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return _vouched(session, body, max_value_chars)


# Session, Event and Span with unpatterned names (see the module docstring); tests/schema/test_fastpath.py
# checks that their fields are Session's.
_Name = Annotated[str, msgspec.Meta(max_length=_rules.NAME_MAX_LENGTH)]
_TypeName = Annotated[str, msgspec.Meta(max_length=_rules.TYPE_NAME_MAX_LENGTH)]
_Attributes = Annotated[dict[_Name, AttributeValue], msgspec.Meta(max_length=_rules.MAX_ATTRIBUTES)]


class _Event(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    type: _TypeName
    time: Timestamp
    attributes: _Attributes | None = None


class _Span(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    type: _TypeName
    start_time: Timestamp
    end_time: Timestamp
    attributes: _Attributes | None = None


class _Session(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    session_id: Uuid4
    user_id: Uuid4
    session_start_time: Timestamp
    session_end_time: Timestamp
    application_id: Annotated[
        str, msgspec.Meta(pattern=_rules.APPLICATION_ID_PATTERN, max_length=_rules.APPLICATION_ID_MAX_LENGTH)
    ]
    application_version: Annotated[
        str, msgspec.Meta(pattern=_rules.VERSION_PATTERN, max_length=_rules.VERSION_MAX_LENGTH)
    ]
    ingestion_time: Timestamp | None = None
    attributes: _Attributes | None = None
    events: Annotated[list[_Event], msgspec.Meta(max_length=_rules.MAX_EVENTS)] | None = None
    spans: Annotated[list[_Span], msgspec.Meta(max_length=_rules.MAX_SPANS)] | None = None


_fields_decoder = msgspec.json.Decoder(_Session)
_KNOWN_NAMES_MAX = 10_000  # per set: enough for any tool's names, bounded against a flood of new ones
_attribute_names: set[str] = set()
_type_names: set[str] = set()


def _names_known(names: set[str], new: Iterable[str], valid: Callable[[object], bool]) -> bool:
    """Whether every name in ``new`` follows its rule (``valid``); those not yet in ``names`` join it."""
    if names.issuperset(new):
        return True
    for name in new:
        if name not in names:
            if not valid(name):
                return False
            if len(names) < _KNOWN_NAMES_MAX:
                names.add(name)
    return True


def _names_ok(session: _Session) -> bool:
    """Whether the attribute and type names of ``session`` follow their rules."""
    attribute_names, type_names = _attribute_names, _type_names
    if session.attributes and not _names_known(attribute_names, session.attributes, _rules.is_attribute_name):
        return False
    for items in (session.events, session.spans):
        if items is not None:
            for item in items:
                if item.type not in type_names and not _names_known(type_names, (item.type,), _rules.is_type_name):
                    return False
                if item.attributes and not _names_known(attribute_names, item.attributes, _rules.is_attribute_name):
                    return False
    return True


def fast_fields(body: bytes | msgspec.Raw, max_value_chars: int = _rules.ATTRIBUTE_VALUE_MAX_LENGTH) -> Session | None:
    """``fast_session``, sooner (see the module docstring), for readers of the session's fields only.

    What it returns has ``Session``'s fields and values but is not a ``Session`` (nor equal to one):
    for code that only reads them (the server's key, stored form and privacy checks).
    """
    try:
        session = _fields_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if not _names_ok(session):
        return None
    return _vouched(cast(Session, session), body, max_value_chars)


def _vouched(session: Session, body: bytes | msgspec.Raw, max_value_chars: int) -> Session | None:
    """``session`` if the rules msgspec cannot see hold for it and its ``body`` (see the module docstring)."""
    if session.session_end_time < session.session_start_time:
        return None
    tie = session.session_end_time == session.session_start_time
    if session.spans is not None:
        for span in session.spans:
            if span.end_time <= span.start_time:
                if span.end_time < span.start_time:
                    return None
                tie = True
    if tie and _NANOSECONDS.search(body):
        return None
    text = body if isinstance(body, bytes) else bytes(body)
    if _FIRST_DAY in text or _LAST_DAY in text:
        return None
    if key_tokens(body) != decoded_keys(session):
        return None
    if _SPACE_FOR_T.search(body) or (
        (_PLUS.search(body) or _MINUS_FOUR_DIGITS.search(body)) and _OFFSET_WITHOUT_COLON.search(body)
    ):
        return None
    # A UTF-8 text of n bytes holds no string longer than n code points.
    if len(body) > max_value_chars and _has_long_value(session, max_value_chars):
        return None
    return session
