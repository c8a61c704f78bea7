"""Quarantine: rejected sessions are not stored but counted by application, version and rule, with a bounded sample."""

from __future__ import annotations

from collections.abc import Callable

from privacy.conftest import Server, declared, eventually, tallystick, tool_session
from tallystick.privacy.quarantine import OTHER, SAMPLES, UNREGISTERED, Quarantine, read_counts, read_samples
from tallystick.schema import ValidationError
from tallystick.storage.memory import MemoryStore


def _error(rule: str = "pattern") -> list[ValidationError]:
    return [ValidationError("events[0].time", rule, "x", "events[0].time must be a date-time")]


def test_a_bad_field_of_one_version_is_counted_and_sampled(privacy_server: Callable[..., Server]) -> None:
    """Version 2.3 sending a bad field shows up in `tallystick rejects` by version and rule, with the field path."""
    server = privacy_server(declared("open"))
    bad = tool_session(applicationVersion="2.3.0")
    bad["events"][0]["time"] = "yesterday"
    for _ in range(3):
        assert server.put(bad)[0] == 400
    assert server.put(tool_session(applicationVersion="2.2.0"))[0] == 201
    eventually(lambda: "2.3.0" in tallystick("rejects", "--storage", server.storage).stdout, "the counts")
    out = tallystick("rejects", "--storage", server.storage, "--bodies").stdout
    assert ["mytool", "2.3.0", "dateTime", "3"] in [line.split() for line in out.splitlines()]
    assert "events[0].time: dateTime:" in out
    assert "yesterday" in out  # the sampled body
    _, metrics = server.request("GET", "/metrics")
    assert 'tallystick_rejected_sessions_total{application="mytool",rule="dateTime",version="2.3.0"} 3.0' in metrics


def test_samples_are_bounded_and_truncated() -> None:
    """At most per_key samples per (app, version, rule), max_samples in the store, each cut to sample_bytes."""
    store = MemoryStore("memory://")
    quarantine = Quarantine(store, max_samples=4, sample_bytes=300, per_key=2)
    for i in range(5):
        quarantine.rejected("mytool", "1.0.0", _error(), b"x" * 1000 + str(i).encode())
    for version in ("2.0.0", "3.0.0"):
        quarantine.rejected("mytool", version, _error("required"), b"{}")
    quarantine.flush()
    samples = read_samples(store, limit=100)
    assert len(samples) == 4 == len(list(store.list(SAMPLES)))
    big = [s for s in samples if s["applicationVersion"] == "1.0.0"]
    assert all(s["truncated"] and len(s["body"]) == 300 and s["bodyBytes"] == 1001 for s in big)
    rejections, _ = read_counts(store)
    assert {(r.version, r.rule, r.count) for r in rejections} == {
        ("1.0.0", "pattern", 5),
        ("2.0.0", "required", 1),
        ("3.0.0", "required", 1),
    }


def test_sampling_can_be_switched_off() -> None:
    """With samples off only counts are kept."""
    store = MemoryStore("memory://")
    quarantine = Quarantine(store, samples=False)
    quarantine.rejected("mytool", "1.0.0", _error(), b"{}")
    quarantine.flush()
    assert read_samples(store) == []
    assert [r.count for r in read_counts(store)[0]] == [1]


def test_labels_are_bounded() -> None:
    """Unregistered applications and invalid or too many versions collapse into fixed labels."""
    quarantine = Quarantine(MemoryStore("memory://"))
    assert quarantine.labels("evil", "1.0.0", {"mytool"}) == (UNREGISTERED, "1.0.0")
    assert quarantine.labels("mytool", "not a version", {"mytool"}) == ("mytool", OTHER)
    labels = {quarantine.labels("mytool", f"1.0.{i}", {"mytool"})[1] for i in range(100)}
    assert len(labels) == 51 and OTHER in labels


def test_deleted_users_rejections_are_never_sampled() -> None:
    """A session refused because its user was deleted is counted, never kept."""
    store = MemoryStore("memory://")
    quarantine = Quarantine(store)
    quarantine.rejected("mytool", "1.0.0", _error("deletedUser"), b'{"userId": "u"}')
    quarantine.flush()
    assert read_samples(store) == []
    assert [r.rule for r in read_counts(store)[0]] == ["deletedUser"]
