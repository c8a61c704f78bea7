"""The example tool as users run it, in the field: verified TLS, proxies, black holes, CI machines.

Each test runs the tool as real processes; the upload happens in the detached
process each run's exit starts, so results are read from the servers and the
data directory, waiting (bounded) where the upload runs after the tool ended.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from fixtures.common import wait_until

RUNS = 20


def _state(tool) -> list[str]:  # type: ignore[no-untyped-def]
    path = tool.data_dir / "upload-state"
    return path.read_text().split() if path.exists() else []


def test_a_wrong_ca_is_silent_to_the_tool_and_counted_in_its_telemetry(tool, fake_ingest, certificates) -> None:  # type: ignore[no-untyped-def]
    """TLS verification failing shows nothing; the next sessions say so; with the right CA everything arrives."""
    server = fake_ingest(tls=certificates.server_context())
    tool.allow()
    env = {"MYTOOL_TELEMETRY_URL": server.url, "SSL_CERT_FILE": str(certificates.wrong_ca_file)}
    baseline = tool.run("hello", "Ada", env={**env, "DO_NOT_TRACK": "1"})
    first = tool.run("hello", "Ada", env={**env, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert (first.returncode, first.stdout, first.stderr) == (baseline.returncode, baseline.stdout, baseline.stderr)
    assert _state(tool)[1:] == ["1", "certificate"]
    second = tool.run("hello", "Bob", env=env)
    assert (second.stdout, second.stderr) == ("Hello, Bob!\n", "")
    sessions = [json.loads(p.read_text()) for p in tool.queued()]
    assert len(sessions) == 2 and server.received == []
    latest = max(sessions, key=lambda s: s["sessionStartTime"])
    assert latest["attributes"]["telemetryUploadFailures"] == 1
    assert latest["attributes"]["telemetryUploadError"] == "certificate"
    (tool.data_dir / "upload-state").write_text("0 1 certificate\n")  # the back-off has passed
    env["SSL_CERT_FILE"] = str(certificates.ca_file)
    tool.run("hello", "Cy", env={**env, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert len(server.received) == 3 and tool.queued() == []
    assert _state(tool)[1:] == ["0", "sent"]


def test_https_through_an_authenticating_proxy_from_the_tool(tool, fake_ingest, certificates, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """The upload process honours HTTPS_PROXY with credentials and SSL_CERT_FILE from the tool's environment."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = tinyproxy(auth=("alice", "pass123"))
    tool.allow()
    env = {
        "MYTOOL_TELEMETRY_URL": server.url,
        "SSL_CERT_FILE": str(certificates.ca_file),
        "HTTPS_PROXY": proxy.url.replace("http://", "http://alice:pass123@"),
        "NO_PROXY": "example.org",
        "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30",
    }
    result = tool.run("hello", "Ada", env=env)
    assert result.stdout == "Hello, Ada!\n" and result.stderr == ""
    assert len(server.received) == 1
    assert proxy.relayed() == [f"CONNECT 127.0.0.1:{server.url.rsplit(':', 1)[1]}"]
    assert not any("pass123" in p.read_text(errors="replace") for p in tool.data_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize("ci", [False, True], ids=["laptop", "ci"])
def test_a_black_hole_costs_one_attempt_across_concurrent_runs(tool, black_hole, ci: bool) -> None:  # type: ignore[no-untyped-def]
    """20 runs at once and 5 after them, a server that never answers: one connection in all (counted server-side)."""
    tool.allow()
    tool.queue_sessions(3)
    env = {**tool.env, "MYTOOL_TELEMETRY_URL": black_hole.url}
    if ci:
        env["CI"] = "true"
    processes = [
        subprocess.Popen(tool.command("hello", f"run{i}"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(RUNS)
    ]
    for i, process in enumerate(processes):
        out, err = process.communicate(timeout=60)
        assert (process.returncode, out, err) == (0, f"Hello, run{i}!\n".encode(), b"")
    wait_until(lambda: black_hole.accepted >= 1, timeout=15, what="the one attempt")
    for i in range(5):
        tool.run("hello", f"later{i}", env=env)
    time.sleep(1.0)  # room for any further upload process to (wrongly) connect
    assert black_hole.accepted == 1
    assert len(tool.queued()) == 3 + RUNS + 5, "nothing lost"


def test_retry_after_is_honoured_by_every_later_run(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A 503 with Retry-After: the runs after it send nothing until then, on CI too."""
    server = fake_ingest(status=503, headers={"Retry-After": "3600"})
    tool.allow()
    env = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"}
    tool.run("hello", "Ada", env=env)
    assert len(server.requests) == 1
    next_time, failures, outcome = _state(tool)
    assert float(next_time) > time.time() + 3500 and (failures, outcome) == ("0", "http503")
    tool.run("hello", "Bob", env=env)
    tool.run("hello", "Cy", env={**env, "CI": "true"})
    assert len(server.requests) == 1
    assert len(tool.queued()) == 3


def test_a_ci_job_delivers_every_session_before_its_machine_goes(tool, ingest_server) -> None:  # type: ignore[no-untyped-def]
    """A simulated CI job: 8 runs, then the data directory is deleted at once; every session reaches the server."""
    server = ingest_server(apps=["mytool"])
    env = {"CI": "true", "MYTOOL_TELEMETRY": "1", "MYTOOL_TELEMETRY_URL": server.url}
    env["MYTOOL_TELEMETRY_UPLOAD_INTERVAL"] = "600"  # the default pause: CI must not depend on it
    runs = 8
    for i in range(runs):
        result = tool.run("hello", f"job{i}", env=env)
        assert result.returncode == 0 and result.stderr == ""
    shutil.rmtree(tool.home / "data", ignore_errors=True)  # the machine is wiped with the job
    wait_until(lambda: len(set(server.stored_session_ids())) >= runs, timeout=30, what="every session stored")
    stored = Counter(server.stored_session_ids())
    assert len(stored) == runs and set(stored.values()) == {1}


def test_batches_with_fallback_to_puts_from_the_tool(tool, fake_ingest, ingest_server) -> None:  # type: ignore[no-untyped-def]
    """Several waiting sessions go in one POST /v1/batches to the real server, and as PUTs where there is none."""
    tool.allow()
    real = ingest_server(apps=["mytool"])
    waiting = set(tool.queue_sessions(4))
    tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY_URL": real.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert waiting < set(real.stored_session_ids()) and tool.queued() == []
    log = (tool.data_dir / "upload.log").read_text()
    assert "outcome: sent" in log
    old = fake_ingest(batches=False)
    waiting = set(tool.queue_sessions(3))
    tool.run("hello", "Bob", env={"MYTOOL_TELEMETRY_URL": old.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert [r[:2] for r in old.requests] == [("POST", "/v1/batches")] + [("PUT", "/v1/sessions")] * 4
    assert waiting < set(old.received) and tool.queued() == []


def test_without_posix_spawn_a_thread_uploads(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """Where no upload process can start (no os.posix_spawn, as on Windows), a thread sends, same schedule."""
    server = fake_ingest()
    tool.allow()
    waiting = set(tool.queue_sessions(2))
    no_spawn = (
        "import os, runpy, sys; del os.posix_spawn; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    env = {**tool.env, "MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"}
    result = subprocess.run(
        [sys.executable, "-c", no_spawn, *tool.command("hello", "Ada")[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello, Ada!\n", "")
    assert waiting <= set(server.received)
    assert _state(tool)[1:] == ["0", "sent"]


@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "threads"])
def test_the_upload_process_starts_from_single_and_multi_threaded_tools(tmp_path, fake_ingest, threads: bool) -> None:  # type: ignore[no-untyped-def]
    """The upload process starts whether or not the tool runs other threads, and leaves its output alone."""
    server = fake_ingest()
    script = textwrap.dedent(f"""
        import threading, time
        import tallystick.client as telemetry
        if {threads}:
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        print("done")
        telemetry.configure(telemetry.Config("mytool", "1.0.0", {server.url!r}, data_dir={str(tmp_path)!r},
                            environ={{"MYTOOL_TELEMETRY": "1"}}, exit_timeout=30))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "done\n", "")
    assert len(server.received) == 1


def test_a_clock_that_went_back_does_not_stop_uploads(tool, ingest_server) -> None:  # type: ignore[no-untyped-def]
    """A machine that ran years ahead (a VM booted with a wrong clock, then synced) left a back-off, and
    sessions stamped in its future, behind: the next run sends them all, and the real ingest stores them."""
    server = ingest_server(apps=["mytool"])
    tool.allow()
    ahead = time.time() + 5 * 365 * 86400
    ids = tool.queue_sessions(2, start=ahead)  # stamped 2030, named 5 years ahead of now
    tool.data_dir.joinpath("upload-state").write_text(f"{ahead + 60:.3f} 1 timeout\n")
    env = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"}
    result = tool.run("hello", "Ada", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello, Ada!\n", "")
    assert set(ids) <= set(server.stored_session_ids())
    assert _state(tool)[1:] == ["0", "sent"] and float(_state(tool)[0]) < time.time() + 3600


def test_from_the_tool_behind_a_tls_intercepting_proxy(tool, fake_ingest, certificates, intercepting_proxy) -> None:  # type: ignore[no-untyped-def]
    """A corporate laptop: https_proxy without scheme, Basic auth, TLS re-signed by the company's CA that the
    user trusts through REQUESTS_CA_BUNDLE alone; the tool's output is unchanged and the session arrives."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = intercepting_proxy(certificates.ca_file)
    tool.allow()
    env = {
        "MYTOOL_TELEMETRY_URL": server.url,
        "https_proxy": f"alice:s3cret@127.0.0.1:{proxy.port}",
        "no_proxy": "localhost,.corp.example,[::1]:8080",
        "REQUESTS_CA_BUNDLE": str(proxy.ca_file),
        "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30",
    }
    baseline = tool.run("hello", "Ada", env={**env, "DO_NOT_TRACK": "1"})
    result = tool.run("hello", "Ada", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (baseline.returncode, baseline.stdout, baseline.stderr)
    assert len(server.received) == 1 and proxy.intercepted == ["PUT /v1/sessions HTTP/1.1"]
    assert _state(tool)[1:] == ["0", "sent"]
