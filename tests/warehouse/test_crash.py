"""Crash safety: the loader killed at random points never loses nor duplicates a session."""

from __future__ import annotations

import gzip
import os
import pty
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sessions import body, session
from tallystick import demo
from tallystick.schema import parse_session
from tallystick.storage.layout import session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Batch, Warehouse, open_warehouse
from tallystick.warehouse.clickhouse import ClickHouseWarehouse, open_clickhouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put

KILLS = 10


@pytest.fixture(params=["duckdb", "clickhouse"])
def crash_spec(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The crash test runs the loader as a process: DuckDB and the ClickHouse 18.16 server."""
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    return str(request.getfixturevalue("clickhouse_spec"))


def _fill(store: LocalStore, n: int) -> tuple[set[str], int, int, set[str]]:
    """Store n demo sessions, a few stored twice under another date, and damaged objects."""
    ids: set[str] = set()
    events = spans = 0
    for i, value in enumerate(demo.generate(n, seed=5)):
        put(store, value)
        ids.add(str(value["sessionId"]))
        events += len(value["events"] or [])
        spans += len(value["spans"] or [])
        if i % 400 == 0:  # the same session under a second key
            put(store, {**value, "sessionStartTime": "2026-01-01T00:00:00Z", "sessionEndTime": "2026-01-01T00:00:01Z"})
    damaged = set()
    for _ in range(3):
        key = session_key(parse_session(body(session())))
        store.put_if_absent(key, gzip.compress(b"{not json"))
        damaged.add(key)
    return ids, events, spans, damaged


def _count(spec: str) -> int:
    try:
        warehouse = open_warehouse(spec, read_only=True) if "://" not in spec else open_warehouse(spec)
    except Exception:
        return 0
    try:
        return int(warehouse.query("SELECT count(*) FROM sessions").rows[0][0])
    except Exception:
        return 0
    finally:
        warehouse.close()


def _load_argv(store: LocalStore, spec: str, workers: int) -> list[str]:
    argv = [sys.executable, "-m", "tallystick.cli", "load", "--storage", str(store.root), "--warehouse", spec]
    return [*argv, "--batch-size", "25", "--workers", str(workers)]


def _run_and_kill(argv: list[str], after_batches: int, jitter: float) -> bool:
    """Run the loader on a terminal (so it reports each batch), SIGKILL it ``jitter`` seconds
    after its ``after_batches``-th report; True if it was killed, False if it finished first."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave, start_new_session=True)
    os.close(slave)
    reports = 0
    deadline = time.monotonic() + 60
    try:
        while reports <= after_batches and time.monotonic() < deadline:  # the first report is the count
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    reports += os.read(master, 4096).count(b"loaded ")
                except OSError:  # the loader closed the terminal: it has finished
                    break
            elif process.poll() is not None:
                break
        time.sleep(jitter)
        killed = process.poll() is None
        if killed:
            os.killpg(process.pid, signal.SIGKILL)  # its reader workers share its process group
        process.wait(timeout=30)
        assert process.returncode in (0, -signal.SIGKILL), process.returncode
        return killed
    finally:
        os.close(master)


@pytest.mark.slow
def test_loader_killed_at_random_points_then_completes(store: LocalStore, crash_spec: str) -> None:
    """SIGKILL at 10 random moments of a load, then a full run: every stored session exactly once."""
    ids, events, spans, damaged = _fill(store, 1500)
    rng = random.Random(20260506)
    kills = partial = 0
    for i in range(KILLS):
        before = _count(crash_spec)
        # After 0-3 batch reports, then 0-60 ms: before the first write, mid-batch, or between batches.
        argv = _load_argv(store, crash_spec, workers=2 if i % 3 == 2 else 0)
        kills += _run_and_kill(argv, after_batches=rng.randint(0, 3), jitter=rng.uniform(0.0, 0.06))
        after = _count(crash_spec)
        partial += before < after < len(ids)
    assert kills == KILLS, f"only {kills} of {KILLS} runs were killed before they finished"
    assert partial >= 3, f"only {partial} kills landed after the loader had written something"
    final = subprocess.run(_load_argv(store, crash_spec, workers=2), capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr.decode()

    warehouse = open_warehouse(crash_spec)
    try:
        loaded = [r[0] for r in warehouse.query('SELECT "sessionId" FROM sessions').rows]
        assert len(loaded) == len(ids) and set(loaded) == ids
        assert warehouse.query("SELECT count(*) FROM events").rows[0][0] == events
        assert warehouse.query("SELECT count(*) FROM spans").rows[0][0] == spans
        rejected = warehouse.query("SELECT DISTINCT key FROM _tallystick_loaded WHERE status = 'rejected'").rows
        assert {r[0] for r in rejected} == damaged
        assert Loader(store, warehouse).run().pending == 0
    finally:
        warehouse.close()


class _FailsBeforeCheckpoint(ClickHouseWarehouse):
    """Writes the data of a batch, then fails where a crash would: before the final checkpoint."""

    def write_batch(self, batch: Batch) -> int:
        self._checkpoint = self._fail_on_final  # type: ignore[method-assign]
        return super().write_batch(batch)

    def _fail_on_final(self, rows: Iterator[tuple[str, str, str, str | None, str]] | list[Any]) -> None:
        rows = list(rows)
        if rows and rows[0][2] != "pending":
            raise RuntimeError("crash between the insert and the checkpoint")
        ClickHouseWarehouse._checkpoint(self, rows)


@pytest.mark.parametrize("engine", ["clickhouse", "chdb"])
def test_crash_between_insert_and_checkpoint_is_recovered(
    store: LocalStore, engine: str, request: pytest.FixtureRequest
) -> None:
    """Rows inserted without their checkpoint are removed by recovery and loaded again, once."""
    spec = str(request.getfixturevalue(f"{engine}_spec"))
    for value in demo.generate(50, seed=9):
        put(store, value)
    plain = open_clickhouse(spec)
    failing = _FailsBeforeCheckpoint(plain.transport, plain.database)
    with pytest.raises(RuntimeError, match="crash between"):
        Loader(store, failing, workers=0).run()
    assert plain.query("SELECT count(*) FROM sessions").rows == [(50,)]  # data in, checkpoint not
    stats = Loader(store, plain, workers=0).run()
    assert (stats.loaded, stats.duplicates) == (50, 0)
    assert plain.query('SELECT count(*), count(DISTINCT "sessionId") FROM sessions').rows == [(50, 50)]
    statuses = plain.query("SELECT status, count(*) FROM _tallystick_loaded GROUP BY status ORDER BY status").rows
    assert statuses == [("aborted", 50), ("loaded", 50), ("pending", 100)]
    plain.close()


def test_recovery_keeps_sessions_loaded_before(store: LocalStore, clickhouse_spec: str) -> None:
    """A duplicate of an already loaded session in an interrupted batch is not deleted by recovery."""
    first = session()
    put(store, first)
    plain = open_clickhouse(clickhouse_spec)
    Loader(store, plain, workers=0).run()
    put(store, {**first, "sessionStartTime": "2026-04-01T00:00:00Z"})
    put(store, session())
    failing = _FailsBeforeCheckpoint(plain.transport, plain.database)
    with pytest.raises(RuntimeError):
        Loader(store, failing, workers=0).run()
    stats = Loader(store, plain, workers=0).run()
    assert (stats.loaded, stats.duplicates) == (1, 1)
    assert plain.query("SELECT count(*), count(DISTINCT sessionId) FROM sessions").rows == [(2, 2)]
    plain.close()


def test_warehouse_interface_is_complete() -> None:
    """Both engines implement every abstract method of Warehouse."""
    assert not getattr(ClickHouseWarehouse, "__abstractmethods__", None)
    assert issubclass(ClickHouseWarehouse, Warehouse)
