"""The fast path (``schema.fastpath``) vouches only for what the full validator accepts, with the same Session.

Its duplicate-key count is an upper bound and its loose date-time search matches more
than date-times: the bodies here sit on those edges. For each, either the fast path
declines (None) or it returns exactly what ``parse_session`` returns.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessions import BASE, session
from tallystick.schema import InvalidSession, parse_session
from tallystick.schema.fastpath import fast_session, key_tokens


def _with_attributes(**attributes: Any) -> bytes:
    return json.dumps(session(attributes=attributes)).encode()


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
    "date-like version": _with_attributes(dockerVersion="27-05 12:1"),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_fast_path_never_disagrees_on_valid_bodies(name: str) -> None:
    raw = ACCEPTED[name]
    parsed = parse_session(raw)
    fast = fast_session(raw)
    assert fast is None or fast == parsed


def test_fast_path_vouches_for_ordinary_sessions() -> None:
    """The common case must not fall back to the (slower) full validator."""
    for raw in (ACCEPTED["compact"], ACCEPTED["spaced"], ACCEPTED["space before colon"]):
        assert fast_session(raw) == parse_session(raw)


def _replace_time(field: str, text: str) -> bytes:
    value = session()
    value[field] = text
    return json.dumps(value).encode()


REJECTED: dict[str, bytes] = {
    "duplicate key with space before colon": json.dumps(session()).encode()[:-1]
    + b', "userId" : "'
    + BASE["userId"].encode()
    + b'"}',
    "duplicate attribute": json.dumps(session()).replace('"shell": "fish"', '"shell": "fish", "shell" :"zsh"').encode(),
    "space for T in a time field": _replace_time("sessionEndTime", "2026-05-01 10:00:01.500Z"),
    "offset without colon in a time field": _replace_time("sessionEndTime", "2026-05-01T12:00:01.500+0200"),
}


@pytest.mark.parametrize("name", REJECTED)
def test_fast_path_declines_what_the_validator_rejects(name: str) -> None:
    raw = REJECTED[name]
    assert fast_session(raw) is None
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
