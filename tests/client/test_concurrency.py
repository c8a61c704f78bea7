"""Many runs of the tool at once, sharing one queue: the server receives each session exactly once."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

RUNS = 20


def test_concurrent_runs_send_each_session_exactly_once(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """20 simultaneous runs plus one later run: every queued session reaches the server once (counted server-side)."""
    tool.allow()
    seeded = set(tool.queue_sessions(60))
    server = fake_ingest(delay=0.01)  # slow enough that runs overlap while one uploads
    # The exit bound is raised so no run abandons a request in flight; the lock is what is tested here.
    env = {**tool.env, "MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"}
    processes = [
        subprocess.Popen(
            tool.command("hello", f"run{i}"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(RUNS)
    ]
    deadline = time.monotonic() + 120
    outputs = []
    for i, process in enumerate(processes):
        out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        outputs.append((process.returncode, out, err, i))
    assert all(code == 0 and out == f"Hello, run{i}!\n" and err == "" for code, out, err, i in outputs)
    written = tool.queued_ids() | (set(server.counts()) - seeded)
    assert len(written) == RUNS, "each run queued its own session"
    drain = tool.run("hello", "drain", env={"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert drain.returncode == 0
    counts = server.counts()
    assert seeded | written <= set(counts)
    assert set(counts.values()) == {1}, {k: n for k, n in counts.items() if n != 1}
    assert len(tool.queued()) <= 1  # at most the drain run's own session waits
    assert len(set(counts) | tool.queued_ids()) == len(seeded) + RUNS + 1


def test_a_signal_handler_can_reenter_the_uploader_and_the_counter(tmp_path: Path) -> None:
    """start, wait and count called again on a thread that already holds their lock return at once."""
    import threading

    from tallystick.client._client import Client
    from tallystick.client._config import Config
    from tallystick.client._queue import Queue
    from tallystick.client._uploader import Uploader

    config = Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, install_hooks=False)
    client = Client(config)
    queue = Queue(
        str(tmp_path), max_files=10, max_bytes=10**6, max_age_seconds=1e9, clock=config.clock, count=client.count
    )
    uploader = Uploader(config, queue, count=client.count, log=lambda _m: None)

    def interrupted() -> None:  # what a SIGTERM handler does, inside the calls it interrupted
        with client._count_lock:
            client.count("invalidName")
        with uploader._guard:
            uploader.start()
            uploader.wait(0.5)

    worker = threading.Thread(target=interrupted, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert client.counts == {"invalidName": 1}


# Each process imports the client, then waits for the go byte on stdin, so all configure at the same instant.
_FIRST_RUN = """
import sys
import tallystick.client as telemetry
sys.stdin.buffer.read(1)
telemetry.configure(telemetry.Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=sys.argv[1]))
"""


def test_simultaneous_first_runs_share_one_user_id_and_one_secret(tmp_path: Path) -> None:
    """20 first runs of one installation at the same instant (a CI matrix, parallel hooks): one user, one secret."""
    import json
    import sys

    data_dir = tmp_path / "telemetry"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MYTOOL_TELEMETRY": "local"}
    processes = [
        subprocess.Popen([sys.executable, "-c", _FIRST_RUN, str(data_dir)], env=env, stdin=subprocess.PIPE)
        for _ in range(RUNS)
    ]
    time.sleep(0.5)  # every process has imported the client and waits
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"x")
        process.stdin.flush()
    for process in processes:
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=60) == 0
    sessions = [json.loads(p.read_text()) for p in (data_dir / "queue").glob("*.json")]
    assert len(sessions) == RUNS
    user_id = (data_dir / "user-id").read_text()
    assert {s["userId"] for s in sessions} == {user_id}
    secrets = (data_dir / "erasure-secret").read_text().splitlines()
    assert [line.split()[0] for line in secrets] == [user_id]
    commitment = secrets[0].split()[2]
    assert {s["attributes"]["telemetryErasureCommitment"] for s in sessions} == {commitment}
