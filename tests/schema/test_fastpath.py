"""The fast path (``schema.fastpath``) vouches only for what the full validator accepts, with the same Session.

Its duplicate-key count is an upper bound and its loose date-time search matches more
than date-times: the bodies here sit on those edges. For each, either the fast path
declines (None) or it returns exactly what ``parse_session`` returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from sessions import BASE, session
from tallystick.schema import InvalidSession, Session, _rules, parse_session
from tallystick.schema.fastpath import fast_fields, fast_session, key_tokens
from tallystick.schema.session import Event, Span

# Both fast paths; what fast_fields returns has Session's fields and values, not its type: compared as builtins.
FAST: dict[str, Callable[..., Any]] = {"fast_session": fast_session, "fast_fields": fast_fields}


def _same(fast: Any, parsed: Session) -> bool:
    return bool(msgspec.to_builtins(fast) == msgspec.to_builtins(parsed))


def _with_attributes(**attributes: Any) -> bytes:
    return json.dumps(session(attributes=attributes)).encode()


def _replace_time(field: str, text: str) -> bytes:
    value = session()
    value[field] = text
    return json.dumps(value).encode()


def _span_times(start: str, end: str) -> bytes:
    # msgspec rounds to microseconds: these two are equal to it, and only the nanoseconds tell them apart.
    return json.dumps(session(spans=[{**BASE["spans"][0], "startTime": start, "endTime": end}])).encode()


ACCEPTED: dict[str, bytes] = {
    "compact": json.dumps(session(), separators=(",", ":")).encode(),
    "spaced": json.dumps(session(), indent=2).encode(),
    "space before colon": json.dumps(session()).replace('": ', '" :\t').encode(),
    "value starting with a colon": _with_attributes(command=":build"),
    "escaped quote then colon": _with_attributes(command='say "a": b'),
    "backslash at end of value": _with_attributes(path="C:\\\\"),
    "key-like text in a value": _with_attributes(command='"sessionId": "x"'),
    "space-for-T outside a time field": _with_attributes(note="2026-05-01 10:00:00Z"),
    "offset without colon outside a time field": _with_attributes(note="10:00:00+0200"),
    "negative offset without colon outside a time field": _with_attributes(note="10:00:00.5-0200"),
    "date-like version": _with_attributes(dockerVersion="27-05 12:1"),
    "times a nanosecond apart": _span_times("2026-05-01T10:00:01.000000001Z", "2026-05-01T10:00:01.000000002Z"),
    "zero-length span, nanoseconds": _span_times("2026-05-01T10:00:01.123456789Z", "2026-05-01T10:00:01.123456789Z"),
    "last day of year 9999 ahead of UTC": _replace_time("sessionEndTime", "9999-12-31T23:00:00+05:00"),
}


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("name", ACCEPTED)
def test_fast_path_never_disagrees_on_valid_bodies(name: str, fast: str) -> None:
    raw = ACCEPTED[name]
    parsed = parse_session(raw)
    found = FAST[fast](raw)
    assert found is None or _same(found, parsed)
    if fast == "fast_session":
        assert found is None or found == parsed


@pytest.mark.parametrize("fast", FAST)
def test_fast_path_vouches_for_ordinary_sessions(fast: str) -> None:
    """The common case must not fall back to the (slower) full validator."""
    for raw in (ACCEPTED["compact"], ACCEPTED["spaced"], ACCEPTED["space before colon"]):
        for _ in range(2):  # fast_fields: names seen, then names known
            assert _same(FAST[fast](raw), parse_session(raw))


REJECTED: dict[str, bytes] = {
    "duplicate key with space before colon": json.dumps(session()).encode()[:-1]
    + b', "userId" : "'
    + BASE["userId"].encode()
    + b'"}',
    "duplicate attribute": json.dumps(session()).replace('"shell": "fish"', '"shell": "fish", "shell" :"zsh"').encode(),
    "space for T in a time field": _replace_time("sessionEndTime", "2026-05-01 10:00:01.500Z"),
    "offset without colon in a time field": _replace_time("sessionEndTime", "2026-05-01T12:00:01.500+0200"),
    "negative offset without colon in a time field": _replace_time("sessionEndTime", "2026-05-01T05:00:01-0500"),
    "attribute name with a dash": _with_attributes(**{"os-name": "Linux"}),
    "attribute name with a trailing newline": _with_attributes(**{"osName\n": "Linux"}),
    "span attribute name starting with a digit": json.dumps(
        session(spans=[{**BASE["spans"][0], "attributes": {"1st": True}}])
    ).encode(),
    "event type with a space": json.dumps(session(events=[{**BASE["events"][0], "type": "Update Nudge"}])).encode(),
    "span type with a slash": json.dumps(session(spans=[{**BASE["spans"][0], "type": "Load/Config"}])).encode(),
    "span ending a nanosecond early": _span_times("2026-05-01T10:00:01.000000002Z", "2026-05-01T10:00:01.000000001Z"),
    "session ending a nanosecond early": json.dumps(
        session(
            sessionStartTime="2026-05-01T12:00:00.0000000029+02:00", sessionEndTime="2026-05-01T10:00:00.000000001Z"
        ),
    ).encode(),
    "time before the year 1 in UTC": _replace_time("sessionStartTime", "0001-01-01T00:00:00+01:00"),
    "event after the year 9999 in UTC": json.dumps(
        session(events=[{**BASE["events"][0], "time": "9999-12-31T23:00:00-05:00"}])
    ).encode(),
}


@pytest.mark.parametrize("fast", FAST)
@pytest.mark.parametrize("name", REJECTED)
def test_fast_path_declines_what_the_validator_rejects(name: str, fast: str) -> None:
    raw = REJECTED[name]
    fast_session(ACCEPTED["compact"])  # names of a valid session known: the invalid ones still are not
    assert FAST[fast](raw) is None
    with pytest.raises(InvalidSession):
        parse_session(raw)


@pytest.mark.parametrize("name", [*ACCEPTED, *REJECTED])
def test_key_count_is_never_below_the_number_of_keys(name: str) -> None:
    """The soundness of the duplicate check rests on this bound."""
    raw = {**ACCEPTED, **REJECTED}[name]
    keys = 0

    def count(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal keys
        keys += len(pairs)
        return dict(pairs)

    json.loads(raw, object_pairs_hook=count)
    assert key_tokens(raw) >= keys


def test_fast_path_declines_a_value_over_the_limit_it_is_given() -> None:
    """The per-value limit is a setting: over it the fast path declines and the validator says maxLength."""
    raw = _with_attributes(exception="\tat x.Y.z(Y.kt:1)\n" * 100)
    assert fast_session(raw) == parse_session(raw)
    assert fast_session(raw, max_value_chars=1000) is None
    with pytest.raises(InvalidSession) as info:
        parse_session(raw, max_value_chars=1000)
    assert [(e.key, e.type) for e in info.value.errors] == [("attributes.exception", "maxLength")]


@pytest.mark.parametrize("struct", [Session, Event, Span])
def test_fast_fields_structs_are_sessions_but_for_name_patterns(struct: type[msgspec.Struct]) -> None:
    """fast_fields decodes into copies of the contract's Structs: same fields, names on the wire, defaults."""
    from tallystick.schema import fastpath

    copy = getattr(fastpath, f"_{struct.__name__}")
    shape = lambda cls: [(f.name, f.encode_name, f.required, f.default) for f in msgspec.structs.fields(cls)]  # noqa: E731
    assert shape(copy) == shape(struct)
    # Their JSON Schemas differ only in the name patterns, the Structs' names and their docstrings.
    name_patterns = {_rules.ATTRIBUTE_NAME_PATTERN, _rules.TYPE_NAME_PATTERN}

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: v.replace("/_", "/") if k == "$ref" else plain(v)
                for k, v in node.items()
                if not (k == "pattern" and v in name_patterns) and k not in ("title", "description")
            }
        return [plain(v) for v in node] if isinstance(node, list) else node

    theirs, mine = msgspec.json.schema(struct)["$defs"], msgspec.json.schema(copy)["$defs"]
    assert {name.lstrip("_"): plain(d) for name, d in mine.items()} == {name: plain(d) for name, d in theirs.items()}
