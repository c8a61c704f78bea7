"""The loader: incremental, idempotent, and honest about objects it cannot load, on every engine."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import msgspec

from sessions import body, session
from tallystick import demo
from tallystick.schema import Session, parse_session
from tallystick.storage import open_store
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Warehouse, open_warehouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put


def _counts(warehouse: Warehouse) -> tuple[int, int]:
    row = warehouse.query('SELECT count(*), count(DISTINCT "sessionId") FROM sessions').rows[0]
    return int(row[0]), int(row[1])


def test_loads_only_what_is_new(store: LocalStore, warehouse: Warehouse) -> None:
    """A second run loads only objects stored since the first; a third loads nothing."""
    for s in demo.generate(120, seed=1):
        put(store, s)
    assert Loader(store, warehouse, batch_size=50, chunk_size=20, workers=0).run().loaded == 120
    for s in demo.generate(30, seed=2):
        put(store, s)
    second = Loader(store, warehouse).run()
    assert (second.pending, second.loaded) == (30, 30)
    assert Loader(store, warehouse).run().pending == 0
    assert _counts(warehouse) == (150, 150)


def test_worker_processes_load_the_same(store: LocalStore, warehouse: Warehouse) -> None:
    """Reading in worker processes, in small chunks and batches, loads every session and its children once."""
    sessions = list(demo.generate(400, seed=3))
    for s in sessions:
        put(store, s)
    stats = Loader(store, warehouse, batch_size=100, chunk_size=30, workers=2).run()
    assert (stats.loaded, stats.duplicates, stats.rejected) == (400, 0, 0)
    assert _counts(warehouse) == (400, 400)
    events = sum(len(s["events"] or []) for s in sessions)
    spans = sum(len(s["spans"] or []) for s in sessions)
    assert warehouse.query("SELECT count(*) FROM events").rows[0][0] == events
    assert warehouse.query("SELECT count(*) FROM spans").rows[0][0] == spans


def test_times_are_stored_in_utc(store: LocalStore, warehouse: Warehouse) -> None:
    """A start time with an offset is converted to UTC, and durations are derived."""
    put(
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
    assert warehouse.query('SELECT "sessionStartTime", "durationMs", "ingestionTime" FROM sessions').rows == [
        (datetime(2026, 5, 1, 10, 0, 0), 2000.0, None)
    ]
    assert warehouse.query('SELECT "durationMs", "applicationVersion" FROM spans').rows == [(250.0, "1.4.0")]


def test_same_session_under_two_keys_loads_once(store: LocalStore, warehouse: Warehouse) -> None:
    """A session ID reused with another start date is stored twice but counted once, in one run or two."""
    first = session()
    put(store, first)
    put(store, {**first, "sessionStartTime": "2026-04-01T00:00:00Z"})
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.duplicates) == (1, 1)
    third = {**first, "sessionStartTime": "2026-03-01T00:00:00Z"}
    put(store, third)
    assert (Loader(store, warehouse).run().duplicates, _counts(warehouse)) == (1, (1, 1))
    assert warehouse.query("SELECT count(*) FROM events").rows == [(1,)]


def test_damaged_object_is_counted_and_kept(store: LocalStore, warehouse: Warehouse) -> None:
    """An object that does not parse is recorded as rejected with a reason, left in storage, not retried."""
    good = put(store, session())
    bad_key = session_key(parse_session(body(session())))
    store.put_if_absent(bad_key, gzip.compress(b'{"not": "a session"}'))
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.rejected, stats.rejected_keys) == (1, 1, [bad_key])
    rows = warehouse.query(
        "SELECT key, status, error FROM _tallystick_loaded WHERE status != 'pending' ORDER BY status"
    ).rows
    assert [(r[0], r[1]) for r in rows] == [(good, "loaded"), (bad_key, "rejected")]
    assert rows[1][2] == "ValidationError: Object contains unknown field `not`"
    assert store.get(bad_key)
    assert Loader(store, warehouse).run().pending == 0


def test_session_ending_before_it_starts_is_rejected(store: LocalStore, warehouse: Warehouse) -> None:
    """Rules the Struct cannot express (end before start) are checked at load time too."""
    bad = msgspec.convert(
        session(sessionStartTime="2026-05-01T10:00:00Z", sessionEndTime="2026-05-01T09:00:00Z"), Session
    )
    key = session_key(bad)
    store.put_if_absent(key, encode_session(bad))
    put(store, session())
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.rejected, stats.rejected_keys) == (1, 1, [key])
    assert warehouse.query("SELECT error FROM _tallystick_loaded WHERE status = 'rejected'").rows == [
        ("sessionEndTime is before sessionStartTime",)
    ]


def test_workers_open_a_bucket_with_the_key_in_its_url(azure_store_url: Callable[..., str], tmp_path: Path) -> None:
    """Reader processes get the storage URL with its secrets (a store's ``url`` shows them as ``***``).

    Azurite checks the account key (moto accepts any), so a worker given the shown URL is refused.
    """
    url = azure_store_url()
    assert "account_key=" in url
    store = open_store(url)
    assert "***" in store.url  # what is shown hides the key ...
    for s in demo.generate(60, seed=5):
        parsed = parse_session(body(s))
        store.put_if_absent(session_key(parsed), encode_session(parsed))
    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    try:
        stats = Loader(store, warehouse, batch_size=20, chunk_size=10, workers=1).run()  # ... the workers get it
        assert (stats.loaded, stats.rejected) == (60, 0)
    finally:
        warehouse.close()
        store.close()


_POOL_SCRIPT = """
import os, sys, time, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from tallystick.warehouse.reader import init_worker, read_chunk_in_worker
pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
                           initargs=(sys.argv[1], os.getpid()))
list(pool.map(read_chunk_in_worker, [[], []]))
print(" ".join(str(p) for p in pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaps counts as ended), read from /proc."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_reader_processes_end_when_the_loader_is_killed(tmp_path: Path) -> None:
    """A loader killed with SIGKILL (no chance to stop its pool) leaves no reader process behind."""
    loader = subprocess.Popen(
        [sys.executable, "-c", _POOL_SCRIPT, str(tmp_path / "sessions")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert loader.stdout is not None
        workers = [int(p) for p in loader.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
    finally:
        loader.kill()
        loader.wait()
        if loader.stdout is not None:
            loader.stdout.close()
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in workers if _alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"reader processes {left} outlived the loader"
