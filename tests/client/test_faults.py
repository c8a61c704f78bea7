"""Fault tests: real runs of the example tool under every failure the client must swallow.

In each, the tool's exit status, stdout and stderr are exactly those of a run with
telemetry off, and no traceback appears.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tallystick.client._queue import file_name

COMMANDS = [("hello", "Ada"), ("hello", "Ada", "--json"), ("fail",)]
FSIZE_WRAPPER = (
    "import os, resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def assert_unhurt(
    tool, args: tuple[str, ...], env: dict[str, str], prefix: list[str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """Run with telemetry on (and the fault), compare with a run with telemetry off."""
    baseline = tool.run(*args, env={**env, "DO_NOT_TRACK": "1"}, cwd=cwd)
    command = (prefix or []) + tool.command(*args)
    result = subprocess.run(
        command, env={**tool.env, **env}, capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )
    assert (result.returncode, result.stdout, result.stderr) == (baseline.returncode, baseline.stdout, baseline.stderr)
    assert "Traceback" not in result.stderr and "tallystick" not in result.stderr
    return result


def _server(kind: str, fake_ingest: Callable[..., Any], black_hole: Any) -> str:
    if kind == "500":
        return str(fake_ingest(status=500).url)
    if kind == "429":
        return str(fake_ingest(status=429, headers={"Retry-After": "3600"}).url)
    if kind == "400":
        return str(fake_ingest(status=400).url)
    if kind == "silent":
        return str(black_hole.url)
    if kind == "unresolvable":
        return "http://telemetry.unresolvable-host.invalid"
    if kind == "refused":
        return "http://127.0.0.1:9"
    raise AssertionError(kind)


@pytest.mark.parametrize("args", COMMANDS, ids=["hello", "json", "fail"])
@pytest.mark.parametrize("kind", ["500", "429", "400", "silent", "unresolvable", "refused"])
def test_server_faults_do_not_show(tool, fake_ingest, black_hole, kind: str, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """Whatever the server does, the tool behaves as without telemetry; the session stays or is set aside."""
    tool.allow()
    waiting = tool.queue_sessions()
    env = {"MYTOOL_TELEMETRY_URL": _server(kind, fake_ingest, black_hole)}
    if kind in {"500", "429", "400", "refused"}:  # servers that answer: let the pass end, to check its outcome
        env["MYTOOL_TELEMETRY_EXIT_TIMEOUT"] = "10"
    assert_unhurt(tool, args, env)
    left = tool.queued_ids()
    if kind == "400":
        assert not set(waiting) & left
        rejected = {json.loads(p.read_text())["sessionId"] for p in (tool.data_dir / "rejected").glob("*.json")}
        # Both waiting sessions are set aside; so is this run's own when the exit queued it while the pass
        # still ran (one more pass then sends it): a matter of timing, so either is right.
        assert set(waiting) <= rejected
        assert len(rejected - set(waiting)) <= 1
    else:
        assert set(waiting) <= left
    if kind == "429":
        assert (tool.data_dir / "upload-state").read_text().split()[2] == "http429"


def _read_only_prefix(directory: Path) -> list[str]:
    """A command prefix that runs the tool with ``directory`` read-only, even as root."""
    if os.geteuid() != 0:
        for path in [directory, *directory.rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
        return []
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to make a read-only directory as root"
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return [unshare, "-m", "sh", "-c", script, str(directory)]


@pytest.mark.parametrize("args", COMMANDS, ids=["hello", "json", "fail"])
def test_read_only_data_directory(tool, fake_ingest, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """A read-only data directory: nothing written, nothing shown, the queued sessions untouched."""
    tool.allow()
    tool.queue_sessions()
    before = sorted(p.name for p in tool.data_dir.rglob("*"))
    server = fake_ingest()
    prefix = _read_only_prefix(tool.data_dir)
    try:
        assert_unhurt(tool, args, {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "5"}, prefix)
    finally:
        for path in [tool.data_dir, *tool.data_dir.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    assert sorted(p.name for p in tool.data_dir.rglob("*")) == before


@pytest.mark.parametrize("args", COMMANDS, ids=["hello", "json", "fail"])
def test_disk_full(tool, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """Writes failing with EFBIG (RLIMIT_FSIZE) leave no partial session and show nothing."""
    tool.allow()
    env = {"MYTOOL_TELEMETRY": "local", "PYTHONDONTWRITEBYTECODE": "1"}  # a cut .pyc would hurt everyone
    assert_unhurt(tool, args, env, [sys.executable, "-c", FSIZE_WRAPPER])
    assert tool.queued() == []
    assert [p.name for p in tool.queue_dir.iterdir()] == []


def test_corrupt_and_half_written_queue_files(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """Garbage in the queue is deleted; the good sessions beside it are still delivered."""
    tool.allow()
    good = tool.queue_sessions(2)
    for i, content in enumerate([b'{"sessionId": "half-writ', b"\x00\x01\x02", b"[]", b"{}", b""]):
        (tool.queue_dir / file_name(1_700_000_000.0 + i, f"bad{i}")).write_bytes(content)
    (tool.queue_dir / ".tmp-999-abcd-x.json").write_bytes(b'{"sessionId": "tmp')
    server = fake_ingest()
    assert_unhurt(tool, ("hello", "Ada"), {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "5"})
    assert set(good) <= set(server.received)
    assert not any(p.name.startswith("1700") for p in tool.queue_dir.iterdir())


def test_unhandled_exception_output_is_unchanged(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A crashing tool prints the same traceback and exit status with telemetry on; the crash is recorded."""
    tool.allow()
    server = fake_ingest(status=500)
    env = {"MYTOOL_TELEMETRY_URL": server.url}
    baseline = tool.run("crash", env={**env, "DO_NOT_TRACK": "1"})
    result = tool.run("crash", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (baseline.returncode, baseline.stdout, baseline.stderr)
    assert result.returncode == 1 and "RuntimeError: something went badly wrong" in result.stderr
    (session,) = [json.loads(p.read_text()) for p in tool.queued()]
    (crash,) = [e for e in session["events"] if e["type"] == "UnhandledException"]
    assert crash["attributes"]["exceptionType"] == "RuntimeError"
    assert "badly" not in json.dumps(session)


@pytest.mark.parametrize(
    ("home", "xdg"),
    [("~", None), ("relative-home", None), (None, "relative-data")],
    ids=["no-passwd-entry", "relative-home", "relative-xdg"],
)
def test_nothing_is_kept_in_the_working_directory(tool, tmp_path: Path, home: str | None, xdg: str | None) -> None:  # type: ignore[no-untyped-def]
    """No usable home (HOME unset for a user without a passwd entry leaves "~"), or a relative XDG_DATA_HOME
    (invalid by the XDG spec): nothing is written relative to where the tool runs."""
    work = tmp_path / "work"
    work.mkdir()
    del tool.env["XDG_DATA_HOME"]
    if home is not None:
        tool.env["HOME"] = home
    if xdg is not None:
        tool.env["XDG_DATA_HOME"] = xdg
    env = {"MYTOOL_TELEMETRY": "1"}
    baseline = tool.run("hello", "Ada", env={**env, "DO_NOT_TRACK": "1"}, cwd=work)
    result = tool.run("hello", "Ada", env=env, cwd=work)
    assert (result.returncode, result.stdout, result.stderr) == (baseline.returncode, baseline.stdout, baseline.stderr)
    assert list(work.iterdir()) == []
    if xdg is not None:  # ignored: the default under the (absolute) home holds the session
        assert len(list((tool.home / ".local/share/mytool/telemetry/queue").glob("*.json"))) == 1


@pytest.mark.parametrize("where", ["read-only", "read-only-queue", "no-home"])
def test_on_ci_a_session_that_cannot_be_queued_is_still_sent(tool, tmp_path: Path, fake_ingest, where: str) -> None:  # type: ignore[no-untyped-def]
    """A locked-down CI runner (read-only data directory, or no home at all): the exit hands the session to
    the upload process, which sends it without a lock or a schedule; the tool's output is unchanged."""
    server = fake_ingest()
    env = {"CI": "true", "MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "20"}
    prefix: list[str] = []
    waiting: list[str] = []
    if where.startswith("read-only"):
        tool.allow()
        waiting = tool.queue_sessions(1)  # a queue the runner's image came with: left as it is
        # All read-only (no lock to be had), or only the queue (the lock is taken, the queue not writable).
        prefix = _read_only_prefix(tool.data_dir if where == "read-only" else tool.queue_dir)
    else:
        del tool.env["XDG_DATA_HOME"]
        tool.env["HOME"] = "~"
        env["MYTOOL_TELEMETRY"] = "1"
    kept = tool.queue_dir if where == "read-only-queue" else tool.data_dir  # what must stay as it was
    before = sorted(p.name for p in kept.rglob("*")) if kept.exists() else []
    work = tmp_path / "work"
    work.mkdir()
    try:
        assert_unhurt(tool, ("hello", "Ada"), env, prefix, cwd=work)
    finally:
        for path in [tool.data_dir, *tool.data_dir.rglob("*")] if tool.data_dir.exists() else []:
            if path.is_dir():
                path.chmod(0o755)
    if where == "read-only-queue":  # with the lock, the queue goes too (its file cannot be deleted: resent later)
        assert len(server.received) == 2 and set(waiting) < set(server.received)
    else:
        assert len(server.received) == 1 and server.requests[0][:2] == ("PUT", "/v1/sessions")
    assert (sorted(p.name for p in kept.rglob("*")) if kept.exists() else []) == before
    if where == "read-only-queue":  # the pass ended and said so: a later run is not held back by its claim
        assert (tool.data_dir / "upload-state").read_text().split()[1:] == ["0", "sent"]
    assert list(work.iterdir()) == []
