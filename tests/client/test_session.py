"""Session recording: contract-valid output, checked names, limits, thread safety."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallystick.client._errors import InvalidData
from tallystick.client._session import RESERVED_ATTRIBUTES, Session, dumps
from tallystick.schema import _rules, validation_errors


def make(strict: bool = False, clock: Callable[[], float] | None = None) -> tuple[Session, dict[str, int]]:
    counts: dict[str, int] = {}

    def count(reason: str, n: int) -> None:
        counts[reason] = counts.get(reason, 0) + n

    session = Session(
        "mytool",
        "1.0.0",
        "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14",
        clock=clock or (lambda: 1_700_000_000.0),
        strict=strict,
        count=count,
    )
    return session, counts


def test_session_is_valid_under_the_server_schema() -> None:
    """A session with attributes, events and spans passes the server's validator."""
    session, _ = make()
    session.set_attributes({"command": "build", "plugins": 3, "ratio": 0.5, "fast": True, "nothing": None})
    session.add_event("UpdateNudgeShown", {"latestVersion": "2.1"})
    session.add_span("LoadConfig", 1_700_000_000.0, 1_700_000_000.25, {})
    tree = session.to_dict()
    assert validation_errors(tree) == []
    assert tree["events"] == [
        {"type": "UpdateNudgeShown", "time": "2023-11-14T22:13:20.000000Z", "attributes": {"latestVersion": "2.1"}}
    ]


def test_end_never_before_start_even_if_the_clock_goes_back() -> None:
    """A clock running backwards still gives end >= start for spans and the session."""
    times = iter([100.0, 50.0])
    session, _ = make(clock=lambda: next(times))
    session.add_span("Work", 100.0, 90.0, {})
    tree = session.to_dict()
    assert tree["sessionEndTime"] == tree["sessionStartTime"]
    assert tree["spans"][0]["endTime"] == tree["spans"][0]["startTime"]
    assert validation_errors(tree) == []


@pytest.mark.parametrize(
    "name",
    ["Update Nudge", "-Event", "", "a" * 129, "Événement"],
    ids=["space", "dash-first", "empty", "long", "accent"],
)
def test_bad_event_type_raises_in_strict_mode(name: str) -> None:
    """Strict mode raises InvalidData naming the rule for a bad event type."""
    session, _ = make(strict=True)
    with pytest.raises(InvalidData, match=re.escape("letters, digits, '_', '.', ':' or '-'")):
        session.add_event(name, {})


def test_bad_names_are_dropped_and_counted_otherwise() -> None:
    """Without strict mode a bad event, span or attribute is dropped and counted; the session stays valid."""
    session, counts = make()
    session.add_event("bad name", {})
    session.add_span("bad span", 1.0, 2.0, {})
    session.add_event("Good", {"bad-key": 1, "ok": float("nan"), "fine": 1})
    tree = session.to_dict()
    assert counts == {"invalidName": 2, "invalidAttribute": 2}
    assert tree["events"][0]["attributes"] == {"fine": 1}
    assert validation_errors(tree) == []


@pytest.mark.parametrize(
    "value",
    [float("inf"), 2**63, object(), [1], {"a": 1}],
    ids=["infinity", "too-big-int", "object", "list", "dict"],
)
def test_bad_attribute_values_raise_in_strict_mode(value: object) -> None:
    """Values outside str/int/float/bool/None (or out of range) raise in strict mode."""
    session, _ = make(strict=True)
    with pytest.raises(InvalidData):
        session.add_event("Thing", {"value": value})


def test_long_strings_are_cut_not_lost() -> None:
    """A string longer than the contract allows is cut to the limit outside strict mode."""
    session, _ = make()
    session.add_event("Thing", {"text": "x" * (_rules.ATTRIBUTE_VALUE_MAX_LENGTH + 10)})
    assert len(session.to_dict()["events"][0]["attributes"]["text"]) == _rules.ATTRIBUTE_VALUE_MAX_LENGTH


def test_event_limit_is_enforced_and_counted() -> None:
    """Events past the contract's limit are dropped and counted."""
    session, counts = make()
    for _ in range(_rules.MAX_EVENTS + 5):
        session.add_event("Tick", {})
    assert len(session.to_dict()["events"]) == _rules.MAX_EVENTS
    assert counts == {"tooManyEvents": 5}


def test_tool_attributes_leave_room_for_the_clients_own() -> None:
    """A tool cannot fill the attribute limit: the client keeps room for its environment and costs."""
    session, counts = make()
    session.set_attributes({f"a{i}": i for i in range(_rules.MAX_ATTRIBUTES)})
    session.set_attributes({f"own{i}": i for i in range(RESERVED_ATTRIBUTES)}, internal=True)
    tree = session.to_dict()
    assert len(tree["attributes"]) == _rules.MAX_ATTRIBUTES
    assert counts["tooManyAttributes"] == RESERVED_ATTRIBUTES
    assert validation_errors(tree) == []


def test_environment_is_withheld_where_consent_does_not_cover_it_and_kept_within_the_limit() -> None:
    """set_environment takes describe's attributes unchecked, but withholds and limits them like any others."""
    from tallystick.client._collection import Coverage

    session, counts = make()
    session.coverage = Coverage(["attribute shell"])
    session.set_environment({"shell": "zsh", "osName": "Linux"})
    assert session.to_dict()["attributes"] == {"osName": "Linux"}
    assert counts == {"notConsented": 1}
    full, counts = make()
    full.set_attributes({f"a{i}": i for i in range(_rules.MAX_ATTRIBUTES - RESERVED_ATTRIBUTES)})
    full.set_attributes({f"own{i}": i for i in range(RESERVED_ATTRIBUTES - 1)}, internal=True)
    full.set_environment({"shell": "zsh", "osName": "Linux"})
    assert len(full.to_dict()["attributes"]) == _rules.MAX_ATTRIBUTES
    assert counts == {"tooManyAttributes": 1}


def test_recording_is_thread_safe() -> None:
    """Events recorded from many threads at once are all kept."""
    session, _ = make()

    def record() -> None:
        for _ in range(200):
            session.add_event("Tick", {"n": 1})

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(session.to_dict()["events"]) == 1600


attribute_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5000), st.binary(max_size=4)
)


@given(st.dictionaries(st.text(max_size=70), attribute_values, max_size=30), st.text(max_size=70))
def test_whatever_a_tool_records_the_session_stays_valid(attributes: dict[str, object], name: str) -> None:
    """Property: arbitrary names and values never make an invalid session outside strict mode."""
    session, _ = make()
    session.set_attributes(attributes)
    session.add_event(name, attributes)
    session.add_span(name, 1.0, 2.0, attributes)
    assert validation_errors(session.to_dict()) == []


_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_JSON_TREES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_TREES)
def test_dumps_writes_what_json_writes(tree: object) -> None:
    """The session's JSON (written without importing json) is json.dumps's, byte for byte, or refused the same way."""
    try:
        expected = json.dumps(tree, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        with pytest.raises(ValueError, match="not a JSON number"):
            dumps(tree)
        return
    assert dumps(tree) == expected


@pytest.mark.parametrize(
    "value", [{1: "a"}, {"a": {1, 2}}, [b"bytes"], object()], ids=["int-key", "set", "bytes", "object"]
)
def test_dumps_refuses_what_json_refuses(value: object) -> None:
    """Keys that are not strings and values of other types are a TypeError, as in json (it would coerce int keys)."""
    with pytest.raises(TypeError):
        dumps(value)
