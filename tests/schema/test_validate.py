"""The session contract: every rule, with the field path and rule name it reports."""

from __future__ import annotations

from typing import Any

import pytest

from sessions import BASE, body, session
from tallystick.schema import InvalidSession, _rules, parse_session
from tallystick.schema.jsonschema import SCHEMA_FILE, render

LONG = "x" * (_rules.ATTRIBUTE_VALUE_MAX_LENGTH + 1)


def _errors(raw: bytes) -> list[tuple[str, str]]:
    with pytest.raises(InvalidSession) as info:
        parse_session(raw)
    return [(e.key, e.type) for e in info.value.errors]


def test_valid_session_parses() -> None:
    """A session following every rule parses, keeping its values."""
    parsed = parse_session(body(BASE))
    assert parsed.session_id == BASE["sessionId"]
    assert parsed.attributes == BASE["attributes"]
    assert parsed.events is not None and parsed.events[0].type == "UpdateNudgeShown"


def test_null_collections_mean_empty() -> None:
    """null for attributes, events and spans is accepted."""
    parsed = parse_session(body(session(attributes=None, events=None, spans=None)))
    assert parsed.events is None and parsed.attributes is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"sessionId": None}, ("sessionId", "type"), id="session-id-null"),
        pytest.param({"sessionId": "0B8F6A6E-3C1D-4E7A-9A51-2F0C5D8E9B14"}, ("sessionId", "pattern"), id="uuid-upper"),
        pytest.param({"userId": "0b8f6a6e-3c1d-1e7a-9a51-2f0c5d8e9b14"}, ("userId", "pattern"), id="uuid-v1"),
        pytest.param({"sessionStartTime": "2026-05-01 10:00"}, ("sessionStartTime", "dateTime"), id="bad-time"),
        pytest.param({"sessionStartTime": "2026-05-01T10:00:00"}, ("sessionStartTime", "dateTime"), id="no-offset"),
        pytest.param({"sessionEndTime": "2026-05-01T09:00:00Z"}, ("sessionEndTime", "order"), id="end-before-start"),
        pytest.param({"applicationId": "My App"}, ("applicationId", "pattern"), id="app-pattern"),
        pytest.param({"applicationId": "a" * 65}, ("applicationId", "maxLength"), id="app-too-long"),
        pytest.param({"applicationVersion": "one"}, ("applicationVersion", "pattern"), id="version-pattern"),
        pytest.param(
            {"applicationVersion": "1.0.0-" + "a" * 60}, ("applicationVersion", "maxLength"), id="version-long"
        ),
        pytest.param({"attributes": []}, ("attributes", "type"), id="attributes-array"),
        pytest.param({"attributes": {"bad-name": 1}}, ("attributes.bad-name", "keyPattern"), id="attribute-name"),
        pytest.param({"attributes": {"a" * 65: 1}}, ("attributes." + "a" * 65, "keyPattern"), id="attribute-name-long"),
        pytest.param({"attributes": {"shell": LONG}}, ("attributes.shell", "maxLength"), id="attribute-value-long"),
        pytest.param({"attributes": {"shell": {"a": 1}}}, ("attributes.shell", "type"), id="attribute-object"),
        pytest.param({"attributes": {"n": 2**63}}, ("attributes.n", "range"), id="int-over-64-bit"),
        pytest.param({"attributes": {f"k{i}": i for i in range(201)}}, ("attributes", "maxProperties"), id="too-many"),
        pytest.param({"events": [{"time": "2026-05-01T10:00:00Z"}]}, ("events[0].type", "required"), id="event-type"),
        pytest.param({"events": [{"type": "A"}]}, ("events[0].time", "required"), id="event-time"),
        pytest.param(
            {"events": [{"type": "a b", "time": "2026-05-01T10:00:00Z"}]},
            ("events[0].type", "pattern"),
            id="event-type-pattern",
        ),
        pytest.param(
            {"events": [{"type": "A", "time": "2026-05-01T10:00:00Z", "x": 1}]},
            ("events[0].x", "unknownField"),
            id="event-unknown-field",
        ),
        pytest.param(
            {"events": [{"type": "A", "time": "2026-05-01T10:00:00Z"}] * (_rules.MAX_EVENTS + 1)},
            ("events", "maxItems"),
            id="too-many-events",
        ),
        pytest.param(
            {"spans": [{"type": "A", "startTime": "2026-05-01T10:00:01Z", "endTime": "2026-05-01T10:00:00Z"}]},
            ("spans[0].endTime", "order"),
            id="span-end-before-start",
        ),
        pytest.param(
            {
                "spans": [
                    {
                        "type": "A",
                        "startTime": "2026-05-01T10:00:01Z",
                        "endTime": "2026-05-01T10:00:02Z",
                        "attributes": {"x": LONG},
                    }
                ]
            },
            ("spans[0].attributes.x", "maxLength"),
            id="span-attribute-long",
        ),
        pytest.param({"colour": "blue"}, ("colour", "unknownField"), id="unknown-field"),
    ],
)
def test_each_rule_reports_its_field_and_rule(change: dict[str, Any], expected: tuple[str, str]) -> None:
    """A session breaking one rule is rejected naming that field path and rule."""
    assert expected in _errors(body(session(**change)))


@pytest.mark.parametrize(
    "field", ["sessionId", "userId", "sessionStartTime", "sessionEndTime", "applicationId", "applicationVersion"]
)
def test_required_fields(field: str) -> None:
    """Each required field missing is reported as required."""
    value = session()
    del value[field]
    assert _errors(body(value)) == [(field, "required")]


def test_every_violation_is_listed() -> None:
    """All violations are reported at once, not only the first."""
    value = session(sessionId="nope", applicationVersion="?", attributes={"a-b": 1})
    assert {("sessionId", "pattern"), ("applicationVersion", "pattern"), ("attributes.a-b", "keyPattern")} <= set(
        _errors(body(value))
    )


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        pytest.param(b'{"a": NaN}', "json", id="nan"),
        pytest.param(b'{"a": Infinity}', "json", id="infinity"),
        pytest.param(b"\xff\xfe{}", "utf8", id="invalid-utf8"),
        pytest.param(b'{"sessionId": ', "json", id="truncated"),
        pytest.param(b"[" * 100_000, "json", id="deep-nesting"),
    ],
)
def test_malformed_bodies(raw: bytes, rule: str) -> None:
    """Bodies that are not strict UTF-8 JSON are rejected as a whole."""
    assert _errors(raw) == [("", rule)]


def test_float_overflow_is_rejected() -> None:
    """A number beyond a 64-bit float is rejected at its path."""
    raw = body(session()).replace(b'"projectSize": 12', b'"projectSize": 1e400')
    assert ("attributes.projectSize", "range") in _errors(raw)


def test_duplicate_keys_are_rejected() -> None:
    """A key given twice, at the top or nested, is reported with its path."""
    raw = body(session()).replace(b'"shell": "fish"', b'"shell": "fish", "shell": "zsh"')
    raw = raw.replace(b'"applicationId": "demo"', b'"applicationId": "demo", "applicationId": "demo"')
    assert {("attributes.shell", "duplicateKey"), ("applicationId", "duplicateKey")} <= set(_errors(raw))


def test_lone_surrogate_is_rejected() -> None:
    """An escaped unpaired UTF-16 surrogate cannot become valid UTF-8, so it is rejected."""
    raw = body(session()).replace(b'"fish"', b'"\\ud800"')
    assert ("attributes.shell", "utf8") in _errors(raw)


def test_limits_are_inclusive() -> None:
    """Exactly at each limit is still accepted (64-char names, 128-char types, 256 Ki-char values, 200 keys)."""
    attributes = {f"k{i}": i for i in range(199)} | {"a" * 64: "x" * _rules.ATTRIBUTE_VALUE_MAX_LENGTH}
    events = [{"type": "A" * _rules.TYPE_NAME_MAX_LENGTH, "time": "2026-05-01T10:00:00Z"}] * _rules.MAX_EVENTS
    parse_session(body(session(attributes=attributes, events=events, applicationId="a" * 64)))


def test_error_message_names_field_and_rule() -> None:
    """The message says which field and what is expected, in words."""
    with pytest.raises(InvalidSession) as info:
        parse_session(body(session(applicationVersion="banana")))
    (error,) = info.value.errors
    assert error.message.startswith("applicationVersion must be a SemVer or PEP 440 version")
    assert error.invalid_value == "banana"


def test_checked_in_json_schema_is_current() -> None:
    """session.schema.json matches what the Structs generate (run python -m tallystick.schema.jsonschema)."""
    assert SCHEMA_FILE.read_text() == render()


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("2026-05-01 10:00:00Z", id="space-separator"),
        pytest.param("2026-05-01T10:00:00+0200", id="offset-without-colon"),
        pytest.param("2026-05-01T10:00:60Z", id="leap-second"),
        pytest.param("2026-05-01T10:00Z", id="no-seconds"),
    ],
)
def test_timestamps_must_be_rfc_3339(stamp: str) -> None:
    """Date-time spellings outside RFC 3339 (and leap seconds, which Python cannot hold) are rejected."""
    assert ("sessionStartTime", "dateTime") in _errors(body(session(sessionStartTime=stamp)))


def test_lower_case_t_and_z_are_rfc_3339() -> None:
    """RFC 3339 allows 't' and 'z' in lower case."""
    parse_session(body(session(sessionStartTime="2026-05-01t10:00:00z")))


def test_loose_timestamp_in_an_attribute_is_fine() -> None:
    """Only timestamp fields follow RFC 3339: an attribute value may look like anything."""
    parse_session(body(session(attributes={"builtAt": "2026-05-01 10:00:00+0200"})))


def test_surrogate_in_a_key_yields_an_encodable_error() -> None:
    """A key holding an escaped unpaired surrogate is reported with the surrogate escaped, not a crash."""
    raw = body(session()).replace(b'"shell"', b'"\\ud800x"')
    with pytest.raises(InvalidSession) as info:
        parse_session(raw)
    for error in info.value.errors:
        error.key.encode("utf-8")
        error.message.encode("utf-8")
    assert any(e.type == "keyPattern" and e.key == "attributes.\\ud800x" for e in info.value.errors)


def test_a_wrong_kind_of_optional_time_says_what_it_takes() -> None:
    """An ingestionTime of the wrong JSON kind names the kind expected (was: "a value or null")."""
    with pytest.raises(InvalidSession) as info:
        parse_session(body(session(ingestionTime=5)))
    (error,) = info.value.errors
    assert (error.key, error.type) == ("ingestionTime", "type")
    assert error.message == "ingestionTime must be an RFC 3339 date-time string or null, not number"
