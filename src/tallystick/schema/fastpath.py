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
* **end before start** of the session and of each span: compared here.
* **a string attribute value over the length limit** (the server's setting, so not in the
  Structs): only a body longer than the limit can hold one, so ordinary bodies skip the walk.
* **RFC 3339 spelling**: msgspec also reads ``2024-05-01 12:00:00Z`` and offsets
  without a colon (``+0200``); a body holding ``-DD HH:`` or ``:SS[.f]+HHMM"``
  anywhere goes to the full validator, which accepts such strings only outside a
  timestamp field. Both searches start at a literal character, which ``re`` finds
  at C speed (one search for either shape would try a match at every digit).

The fast path never rejects: when it cannot vouch for a body it returns None and
the caller runs the full validator, which alone words the errors. So the
answers are those of the full validator, only sooner for the common valid case;
``tests/schema/test_fastpath.py`` checks that the two agree.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from tallystick.schema import _rules
from tallystick.schema.session import Attributes, Event, Session, Span

_WHITESPACE = b" \t\r\n"
# Date-times msgspec reads but RFC 3339 does not allow (or something containing their telltale part):
# a space for 'T' ("2024-05-01 12:00"), an offset without a colon ("12:00:00+0200").
_SPACE_FOR_T = re.compile(rb"-[0-9]{2} [0-9]{2}:")
_OFFSET_WITHOUT_COLON = re.compile(rb':[0-9]{2}(?:\.[0-9]+)?[+-][0-9]{4}"')
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
    if session.session_end_time < session.session_start_time:
        return None
    if session.spans is not None:
        for span in session.spans:
            if span.end_time < span.start_time:
                return None
    if key_tokens(body) != decoded_keys(session):
        return None
    if _SPACE_FOR_T.search(body) or _OFFSET_WITHOUT_COLON.search(body):
        return None
    # A UTF-8 text of n bytes holds no string longer than n code points.
    if len(body) > max_value_chars and _has_long_value(session, max_value_chars):
        return None
    return session
