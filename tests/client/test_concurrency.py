"""Many runs of the tool at once, sharing one queue: the server receives each session exactly once."""

from __future__ import annotations

import subprocess
import time

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
