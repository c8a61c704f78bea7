"""Retention: sessions older than N days leave storage and warehouse on a schedule, by an injected clock."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures.scan import readable
from sessions import body, session
from tallystick.privacy.quarantine import Quarantine
from tallystick.privacy.retention import DEFAULT_DAYS, Retention, parse_days
from tallystick.privacy.tombstones import Tombstones
from tallystick.schema import ValidationError
from tallystick.storage.local import LocalStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put

USER = "6b1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"


def _day(text: str) -> dict[str, object]:
    return session(sessionStartTime=f"{text}T12:00:00Z", sessionEndTime=f"{text}T12:00:01Z")


def test_retention_deletes_old_sessions_when_due(tmp_path: Path) -> None:
    """Each run deletes what is older than N days by the clock; runs are at most hourly."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    warehouse = open_warehouse(tmp_path / "w.duckdb")
    now = [datetime(2026, 3, 1, 8, 0, tzinfo=UTC)]
    retention = Retention(30, clock=lambda: now[0])
    for day in ("2026-01-15", "2026-01-31", "2026-02-20"):
        put(store, _day(day))
    Loader(store, warehouse).run()
    swept = retention.run_if_due(store, warehouse)
    assert swept is not None and (swept.sessions, swept.objects) == (1, 1)  # 2026-01-15, before 2026-01-30
    now[0] += timedelta(minutes=59)
    assert retention.run_if_due(store, warehouse) is None  # not due yet
    now[0] += timedelta(days=20)
    swept = retention.run_if_due(store, warehouse)
    assert swept is not None and swept.sessions == 1  # 2026-01-31, now before 2026-02-19
    days = [r[0] for r in warehouse.query('SELECT "sessionStartTime"::DATE::VARCHAR FROM sessions').rows]
    assert days == ["2026-02-20"]
    assert [k.key.split("/")[3] for k in store.list("sessions/")] == ["date=2026-02-20"]
    warehouse.close()


def test_retention_off_keeps_sessions_but_prunes_old_tombstones(tmp_path: Path) -> None:
    """With retention off nothing is deleted by age; tombstones older than 90 days are pruned."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    warehouse = open_warehouse(tmp_path / "w.duckdb")
    put(store, _day("2020-01-01"))
    Loader(store, warehouse).run()
    tombstones = Tombstones(store)
    tombstones.add(USER, datetime(2026, 1, 1, tzinfo=UTC))
    swept = Retention(None, clock=lambda: datetime(2026, 3, 1, tzinfo=UTC)).run(store, warehouse)
    assert (swept.sessions, swept.tombstones) == (0, 0)
    swept = Retention(None, clock=lambda: datetime(2026, 4, 2, tzinfo=UTC)).run(store, warehouse)
    assert (swept.sessions, swept.tombstones) == (0, 1)
    assert tombstones.read() == {}
    assert warehouse.query("SELECT count(*) FROM sessions").rows == [(1,)]
    warehouse.close()


def test_retention_sweeps_sessions_stored_before_ingest_saw_a_tombstone(tmp_path: Path) -> None:
    """A session of a just-deleted user that slipped in before ingest refreshed is removed by the next run."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    warehouse = open_warehouse(tmp_path / "w.duckdb")
    put(store, session(userId=USER))  # started 2026-05-01
    put(store, session())
    Loader(store, warehouse).run()
    Tombstones(store).add(USER, datetime(2026, 5, 2, tzinfo=UTC))
    swept = Retention(None, clock=lambda: datetime(2026, 5, 3, tzinfo=UTC)).run(store, warehouse)
    assert (swept.sessions, swept.objects) == (1, 1)
    assert warehouse.query('SELECT count(*) FROM sessions WHERE "userId" = ?', [USER]).rows == [(0,)]
    assert warehouse.query("SELECT count(*) FROM sessions").rows == [(1,)]
    warehouse.close()


@pytest.mark.parametrize(("text", "days"), [("30", 30), ("off", None), ("OFF", None)], ids=["n", "off", "upper"])
def test_retention_days_values(text: str, days: int | None) -> None:
    """--retention-days takes whole days or off."""
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["0", "-3", "a year"], ids=["zero", "negative", "words"])
def test_retention_days_refuses_nonsense(text: str) -> None:
    """Zero, negative and non-numbers are refused with what to write instead."""
    with pytest.raises(argparse.ArgumentTypeError, match="off"):
        parse_days(text)


def test_default_retention_is_documented() -> None:
    """The default in the code is the one docs/privacy.md states."""
    doc = (Path(__file__).parents[2] / "docs" / "privacy.md").read_text()
    assert f"default {DEFAULT_DAYS} days" in doc


def test_tombstones_hold_a_digest_and_still_honour_those_written_with_the_plain_id(tmp_path: Path) -> None:
    """A tombstone's key and body hold a one-way digest of the user ID; an older plain-ID tombstone still refuses."""
    from tallystick.privacy.tombstones import PREFIX, user_digest

    store = LocalStore(tmp_path / "s")
    when = datetime(2026, 5, 2, tzinfo=UTC)
    tombstones = Tombstones(store)
    tombstones.add(USER, when)
    (key,) = [info.key for info in store.list(PREFIX)]
    assert USER not in key and USER.encode() not in (store.get(key) or b"")
    assert user_digest(USER) in key and user_digest(USER) != user_digest(USER.upper())
    other = "2b7c1e9a-4d3f-4a6b-9c8d-7e6f5a4b3c2d"
    store.put_if_absent(f"{PREFIX}{other}/{int(when.timestamp() * 1000):013d}.json", b"{}")  # an old release's
    tombstones.refresh()
    before, after = when - timedelta(hours=1), when + timedelta(hours=1)
    assert tombstones.refuses(USER, before) == when and tombstones.refuses(USER, after) is None
    assert tombstones.refuses(other, before) == when
    assert tombstones.refuses("5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a", before) is None


def test_retention_reaches_sessions_dated_ahead_and_quarantine_samples_leaving_no_byte(tmp_path: Path) -> None:
    """A session its client dated 2099 ages from its arrival; old quarantine samples go; no file keeps either."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    database = tmp_path / "w.duckdb"
    warehouse = open_warehouse(database)
    ahead = session(
        sessionStartTime="2099-01-01T00:00:00Z",
        sessionEndTime="2099-01-01T00:00:01Z",
        ingestionTime="2026-01-10T08:00:00Z",
    )
    old, kept = _day("2026-01-15"), {**_day("2026-02-20"), "ingestionTime": "2026-02-20T13:00:00Z"}
    fresh_ahead = {**ahead, "sessionId": str(uuid.uuid4()), "ingestionTime": "2026-02-27T00:00:00Z"}
    for s in (ahead, old, kept, fresh_ahead):
        put(store, s)
    rejected = session()
    for when, sent in ((datetime(2026, 1, 12, tzinfo=UTC), rejected), (datetime(2026, 2, 25, tzinfo=UTC), kept)):
        quarantine = Quarantine(store, clock=when.timestamp)
        quarantine.rejected("demo", "1.4.0", [ValidationError("events[0].time", "required", None, "x")], body(sent))
        quarantine.flush()
    Loader(store, warehouse).run()
    gone = [ahead["sessionId"], old["sessionId"], rejected["sessionId"]]

    def naming(needle: str) -> list[str]:
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        return [p.name for p in files if needle.encode() in readable(p) or needle in p.as_posix()]

    assert all(naming(s) for s in gone), "the scan finds them before"
    swept = Retention(30, clock=lambda: datetime(2026, 3, 1, 8, 0, tzinfo=UTC)).run(store, warehouse)
    assert (swept.sessions, swept.objects, swept.samples) == (2, 2, 1), swept
    assert "1 quarantine samples" in str(swept)
    remaining = {r[0] for r in warehouse.query('SELECT "sessionId" FROM sessions').rows}
    assert remaining == {kept["sessionId"], fresh_ahead["sessionId"]}
    warehouse.close()
    assert {s: naming(s) for s in gone} == {s: [] for s in gone}
    assert naming(kept["sessionId"]) and naming(fresh_ahead["sessionId"])


def test_retention_runs_again_when_the_clock_goes_back() -> None:
    """A clock set back (after running ahead) makes the next run due instead of waiting until it catches up."""
    now = [datetime(2026, 3, 1, 8, 0, tzinfo=UTC)]
    retention = Retention(30, clock=lambda: now[0])
    retention.last = now[0]
    now[0] += timedelta(minutes=30)
    assert not retention.due()
    now[0] -= timedelta(days=200)
    assert retention.due()
