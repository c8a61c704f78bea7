"""`tallystick load --every`: a scheduled loader outlives a warehouse that goes away for a while,
and says it is working during a long load when its output goes to a log."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

from fixtures.clickhouse import ClickHouseServer
from fixtures.common import wait_until
from sessions import session
from tallystick.cli.load import _progress_printer
from tallystick.storage.local import LocalStore
from tallystick.warehouse import cycle, open_warehouse
from warehouse.conftest import put


class Forwarder:
    """A TCP relay on a fixed port of 127.0.0.1 to a real server: ``stop()`` makes the server
    unreachable (connections refused) as a restart does, ``start()`` brings it back on the same port."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.listener: socket.socket | None = None
        self.open: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, dest: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                dest.sendall(data)
        except OSError:
            pass
        for s in (source, dest):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        assert self.listener is not None
        with contextlib.suppress(OSError):  # wakes the thread blocked in accept(); close() alone would not
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.open.clear()


def test_a_scheduled_load_outlives_a_warehouse_restart(
    store: LocalStore, clickhouse_server: ClickHouseServer, clickhouse_spec: str
) -> None:
    """With --every, a cycle that cannot reach ClickHouse is said in one line and the next cycle loads."""
    relay = Forwarder(clickhouse_server.http_port)
    relay.start()
    spec = clickhouse_spec.replace(f":{clickhouse_server.http_port}/", f":{relay.port}/")
    put(store, session())
    argv = [sys.executable, "-m", "tallystick.cli", "load", "--every", "1s", "--workers", "0"]
    argv += ["--storage", str(store.root), "--warehouse", spec, "--data-dir", str(store.root.parent)]
    log = store.root.parent / "load.log"
    with log.open("w") as out, subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT) as loader:
        try:
            wait_until(lambda: "1 session loaded" in log.read_text(), timeout=60, what="the first load")
            relay.stop()
            wait_until(lambda: "load failed" in log.read_text(), timeout=30, what="a failed cycle")
            put(store, session())
            relay.start()
            wait_until(lambda: log.read_text().count("1 session loaded") == 2, timeout=30, what="the next load")
            assert loader.poll() is None, log.read_text()
        finally:
            loader.terminate()
            relay.stop()
    failed = [line for line in log.read_text().splitlines() if "load failed" in line]
    assert "Traceback" not in log.read_text()
    assert re.fullmatch(r"\d\d:\d\d:\d\d load failed: cannot reach ClickHouse at .*; trying again in 1s", failed[0])
    warehouse = open_warehouse(clickhouse_spec)
    try:
        assert warehouse.query("SELECT count() FROM sessions").rows == [(2,)]
    finally:
        warehouse.close()


def test_a_scheduled_load_stops_when_its_first_cycle_fails(tmp_path: Path) -> None:
    """A warehouse that is not there at the first cycle is a setting to fix: one line, exit status 1."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    argv = [sys.executable, "-m", "tallystick.cli", "load", "--every", "1s", "--data-dir", str(tmp_path)]
    argv += ["--warehouse", f"clickhouse://127.0.0.1:{port}/telemetry"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"tallystick: error: cannot reach ClickHouse at http://127.0.0.1:{port}")


def test_a_long_load_into_a_log_says_how_far_it_got(store: LocalStore, tmp_path: Path) -> None:
    """Into a log (not a terminal) the loader prints running counts during a load, without counting first."""
    for _ in range(30):
        put(store, session())
    log = io.StringIO()
    warehouse = open_warehouse(str(tmp_path / "warehouse.duckdb"))
    try:
        stats = cycle.run(
            store, warehouse, progress=_progress_printer(log, every=0), batch_size=10, workers=0, count_first=False
        )
    finally:
        warehouse.close()
    assert stats.loaded == 30
    lines = log.getvalue().splitlines()
    counts = [
        int(re.fullmatch(r"\d\d:\d\d:\d\d loading: (\d+) objects so far \(.*/s\): .*", line)[1]) for line in lines
    ]
    assert counts == [10, 20, 30]
    assert lines[-1].endswith(": 30 new, 0 duplicate, 0 rejected")
