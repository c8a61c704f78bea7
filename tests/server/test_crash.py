"""Crash test: SIGKILL the server 20 times under load; every acknowledged session survives, whole.

SIGKILL leaves the kernel's page cache intact, so this checks the order of things (an
answer only after the log sync, a name only for complete content, recovery replaying what
the log holds), not that fsync reaches the disk; that is the write-ahead log's part
(``storage/_wal.py``, whose recovery of lost or damaged objects ``tests/storage/test_wal.py``
checks). The last kill comes under load and the check runs after the replay a restart does.
"""

from __future__ import annotations

import gzip
import http.client
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessions import body, session
from tallystick.schema import parse_session
from tallystick.storage.layout import decode_session
from tallystick.storage.local import LocalStore

KILLS = 20
CLIENTS = 8


class Load:
    """Clients sending new sessions (and some resends) until stopped; remembers what was acknowledged."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bodies: dict[str, bytes] = {}
        self.acked: set[str] = set()
        self.failures = 0

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            with self.lock:
                resend = self.bodies and rng.random() < 0.1
                if resend:
                    sid = rng.choice(list(self.bodies))
                    raw = self.bodies[sid]
            if not resend:
                value = session()
                sid, raw = value["sessionId"], body(value)
                with self.lock:
                    self.bodies[sid] = raw
            try:
                status = self.put(raw)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                time.sleep(0.005)
                continue
            if status in (201, 304):
                with self.lock:
                    self.acked.add(sid)

    def put(self, raw: bytes) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("PUT", "/v1/sessions", raw, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


@pytest.mark.slow
def test_acknowledged_sessions_survive_sigkill(server_process: Callable[..., Any]) -> None:
    """Killed at random moments 20 times, the server never loses an acknowledged session nor leaves a partial one."""
    server = server_process()
    load = Load(server.port)
    rng = random.Random(5)
    logged = 0
    with ThreadPoolExecutor(CLIENTS) as pool:
        running = [pool.submit(load.client, seed) for seed in range(CLIENTS)]
        for kill in range(KILLS):
            time.sleep(rng.uniform(0.05, 0.3))
            server.kill()
            if any(p.stat().st_size for p in (server.storage / ".wal").glob("*.log")):
                logged += 1  # killed while the log held records: the restart must replay them
            if kill < KILLS - 1:
                server.start()
        load.stop.set()
        for future in running:
            future.result(timeout=30)

    assert logged >= KILLS // 2, f"only {logged} kills left records in the log: they missed the writes"
    store = LocalStore(server.storage)
    recovery = store.open_log()  # what the next start would do
    store.close()
    assert recovery is not None and recovery.records > 0, "the last kill left nothing in the log"
    stored: dict[str, bytes] = {}
    for info in store.list("sessions/"):
        data = store.get(info.key)
        parsed = decode_session(data)  # a partial object would fail here
        assert parse_session(gzip.decompress(data)).session_id == parsed.session_id
        assert info.key.endswith(f"/{parsed.session_id}.json.gz")
        stored[parsed.session_id] = data
    missing = load.acked - set(stored)
    assert not missing, f"{len(missing)} acknowledged sessions are not stored"
    assert len(load.acked) >= 100, "the load was too small to mean anything"
    assert load.failures > 0, "no request was cut off: the kills did not hit the load"
