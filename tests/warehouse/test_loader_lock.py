"""One loader at a time on a ClickHouse server (18.16): a scheduled load and `delete-user`'s load
reach the same database at once; the second waits instead of recovering the first's batch."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from sessions import session
from tallystick.storage.local import LocalStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.clickhouse import LOCK_TABLE
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put

HOLD = """
import sys, time
from tallystick.warehouse import open_warehouse
held = open_warehouse(sys.argv[1]).loading()
held.__enter__()
print("held", flush=True)
time.sleep(120)
"""


def _lock_tables(spec: str) -> list[str]:
    warehouse = open_warehouse(spec)
    try:
        rows = warehouse.query(
            f"SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '{LOCK_TABLE}%'"
        )
        return [str(r[0]) for r in rows.rows]
    finally:
        warehouse.close()


def test_a_second_load_waits_for_the_first(store: LocalStore, clickhouse_spec: str) -> None:
    """While one process loads, another's load says it waits, then loads once the first is done."""
    for _ in range(3):
        put(store, session())
    first, second = open_warehouse(clickhouse_spec), open_warehouse(clickhouse_spec)
    said: list[str] = []
    result: list[int] = []
    try:
        with first.loading():
            waiting = threading.Thread(
                target=lambda: result.append(Loader(store, second, workers=0, report=said.append).run().loaded)
            )
            waiting.start()
            deadline = time.monotonic() + 30
            while not said and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            assert waiting.is_alive()
            assert result == []
        waiting.join(timeout=60)
        assert result == [3]
        assert said == ["waiting for another loader (" + said[0].split("(", 1)[1]]
        assert said[0].endswith(f") to finish loading into {clickhouse_spec.rsplit('/', 1)[1]}")
        assert _lock_tables(clickhouse_spec) == []
    finally:
        first.close()
        second.close()


def test_a_killed_loaders_lock_is_taken_over_at_once(store: LocalStore, clickhouse_spec: str) -> None:
    """A loader SIGKILLed while holding the lock (this host, its PID gone) does not hold up the next."""
    put(store, session())
    with subprocess.Popen([sys.executable, "-c", HOLD, clickhouse_spec], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        assert _lock_tables(clickhouse_spec) == [LOCK_TABLE]
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()
    warehouse = open_warehouse(clickhouse_spec)
    said: list[str] = []
    started = time.monotonic()
    try:
        assert Loader(store, warehouse, workers=0, report=said.append).run().loaded == 1
    finally:
        warehouse.close()
    assert time.monotonic() - started < 10
    assert said == []
    assert _lock_tables(clickhouse_spec) == []
