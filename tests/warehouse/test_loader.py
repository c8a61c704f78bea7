"""The loader: incremental, idempotent, and honest about objects it cannot load."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessions import body, session
from tallystick import demo
from tallystick.schema import parse_session
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "sessions")


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    w = DuckDBWarehouse(tmp_path / "w.duckdb")
    yield w
    w.close()


def _put(store: LocalStore, value: dict[str, object]) -> str:
    parsed = parse_session(body(value))
    key = session_key(parsed)
    assert store.put_if_absent(key, encode_session(parsed))
    return key


def test_loads_only_what_is_new(store: LocalStore, warehouse: DuckDBWarehouse) -> None:
    """A second run loads only objects stored since the first; a third loads nothing."""
    for s in demo.generate(120, seed=1):
        _put(store, s)
    assert Loader(store, warehouse, batch_size=50).run().loaded == 120
    for s in demo.generate(30, seed=2):
        _put(store, s)
    second = Loader(store, warehouse).run()
    assert (second.pending, second.loaded) == (30, 30)
    assert Loader(store, warehouse).run().pending == 0
    assert warehouse.query("SELECT count(*), count(DISTINCT sessionId) FROM sessions").rows == [(150, 150)]


def test_times_are_stored_in_utc(store: LocalStore, warehouse: DuckDBWarehouse) -> None:
    """A start time with an offset is converted to UTC, and durations are derived."""
    _put(
        store,
        session(
            sessionStartTime="2026-05-01T12:00:00+02:00",
            sessionEndTime="2026-05-01T12:00:02+02:00",
            spans=[
                {
                    "type": "LoadConfig",
                    "startTime": "2026-05-01T12:00:00.5+02:00",
                    "endTime": "2026-05-01T12:00:00.75+02:00",
                }
            ],
        ),
    )
    Loader(store, warehouse).run()
    assert warehouse.query('SELECT "sessionStartTime"::VARCHAR, "durationMs" FROM sessions').rows == [
        ("2026-05-01 10:00:00", 2000.0)
    ]
    assert warehouse.query('SELECT "durationMs", "applicationVersion" FROM spans').rows == [(250.0, "1.4.0")]


def test_same_session_under_two_keys_loads_once(store: LocalStore, warehouse: DuckDBWarehouse) -> None:
    """A session ID reused with another start date is stored twice but counted once."""
    first = session()
    _put(store, first)
    _put(store, {**first, "sessionStartTime": "2026-04-01T00:00:00Z"})
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.duplicates) == (1, 1)
    assert warehouse.query("SELECT count(*) FROM sessions").rows == [(1,)]


def test_damaged_object_is_counted_and_kept(store: LocalStore, warehouse: DuckDBWarehouse) -> None:
    """An object that does not parse is recorded as rejected with a reason, left in storage, not retried."""
    good = _put(store, session())
    bad_value = session()
    bad_key = session_key(parse_session(body(bad_value)))
    store.put_if_absent(bad_key, gzip.compress(b'{"not": "a session"}'))
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.rejected, stats.rejected_keys) == (1, 1, [bad_key])
    rows = warehouse.query("SELECT key, status, error FROM _tallystick_loaded ORDER BY status").rows
    assert [(r[0], r[1]) for r in rows] == [(good, "loaded"), (bad_key, "rejected")]
    assert rows[1][2] == "ValidationError: Object contains unknown field `not`"
    assert store.get(bad_key)
    assert Loader(store, warehouse).run().pending == 0
