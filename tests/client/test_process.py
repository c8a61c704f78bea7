"""The client inside a real process: signals, the terminal notice, CI uploads, the exit bound."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from fixtures.common import wait_until
from tallystick.client._client import Client
from tallystick.client._config import Config
from tallystick.client._queue import file_name


def test_sigterm_queues_the_session_and_keeps_the_exit_status(tool) -> None:  # type: ignore[no-untyped-def]
    """Opted in (handle_sigterm): the session is queued with a Terminated event; the process still dies of SIGTERM."""
    tool.allow()
    env = {**tool.env, "MYTOOL_TELEMETRY": "local", "MYTOOL_TELEMETRY_SIGTERM": "1"}
    with subprocess.Popen(
        tool.command("wait"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stdout.readline() == "waiting\n"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert err == ""
    (session,) = [json.loads(p.read_text()) for p in tool.queued()]
    assert [e["attributes"] for e in session["events"] if e["type"] == "Terminated"] == [{"signal": "SIGTERM"}]


def _script(body: str, data_dir: Path, *, handle_sigterm: bool) -> list[str]:
    """A command running ``body`` after configuring telemetry (on, local only) with a fresh data directory."""
    head = (
        "import os, signal, sys\n"
        "import tallystick.client as t\n"
        "from tallystick.client import _api\n"
        f"t.configure(t.Config('mytool', '1.0.0', 'http://127.0.0.1:9', data_dir={str(data_dir)!r},"
        f" environ={{'MYTOOL_TELEMETRY': 'local'}}, handle_sigterm={handle_sigterm}))\n"
    )
    return [sys.executable, "-c", head + textwrap.dedent(body)]


def test_by_default_sigterm_is_the_tools_own(tmp_path: Path) -> None:
    """Without handle_sigterm no handler is installed: a tool busy in long C code dies at once, unrecorded."""
    body = """
        print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)
        sum(range(10**11))  # one long C call: a Python-level handler would run only after it
    """
    with subprocess.Popen(_script(body, tmp_path, handle_sigterm=False), stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == "True\n"
            time.sleep(0.1)
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=5)
            took = time.monotonic() - sent
        finally:
            process.kill()
    assert process.returncode == -signal.SIGTERM
    assert took < 1.0
    assert list((tmp_path / "queue").glob("*.json")) == []  # the documented trade-off


def test_sigterm_inside_the_clients_own_call_does_not_hang(tmp_path: Path) -> None:
    """SIGTERM landing while the main thread holds the client's count lock still queues the session and dies."""
    body = """
        class Trap(dict):  # raises SIGTERM from inside count(), with its lock held
            armed = True
            def get(self, *args):
                if Trap.armed:
                    Trap.armed = False
                    signal.raise_signal(signal.SIGTERM)
                return dict.get(self, *args)
        _api.active().counts = Trap()
        while True:
            t.event("not a name")  # every call is a drop: count() runs each time
    """
    with subprocess.Popen(_script(body, tmp_path, handle_sigterm=True), stderr=subprocess.PIPE, text=True) as process:
        try:
            _, err = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == -signal.SIGTERM, err
    (path,) = (tmp_path / "queue").glob("*.json")
    assert '"signal":"SIGTERM"' in path.read_text()


def _run_with_tty_stderr(tool, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Run the tool with stderr on a pseudo-terminal (stdout a pipe); return status, stdout, stderr."""
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            tool.command(*args),
            env={**tool.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=follower,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return result.returncode, result.stdout, b"".join(chunks).decode().replace("\r\n", "\n")
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def test_first_run_notice_on_a_terminal_once_and_never_on_stdout(tool) -> None:  # type: ignore[no-untyped-def]
    """With stderr on a terminal and no choice made, the notice shows once, on stderr; stdout is untouched."""
    code, out, err = _run_with_tty_stderr(tool, "hello", "Ada", "--json")
    assert code == 0 and json.loads(out) == {"message": "Hello, Ada!"}
    assert "MYTOOL_TELEMETRY=1" in err and "DO_NOT_TRACK=1" in err
    code, out, err = _run_with_tty_stderr(tool, "hello", "Ada", "--json")
    assert code == 0 and json.loads(out) == {"message": "Hello, Ada!"} and err == ""
    assert tool.queued() == []


def test_no_notice_on_ci_even_on_a_terminal(tool) -> None:  # type: ignore[no-untyped-def]
    """On CI the notice never shows."""
    _, _, err = _run_with_tty_stderr(tool, "hello", "Ada", env={"CI": "true"})
    assert err == ""


def test_on_ci_the_session_is_sent_at_exit(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """On CI (no later run will come) the run's own session is uploaded by the process its exit starts."""
    server = fake_ingest()
    env = {
        "CI": "true",
        "MYTOOL_TELEMETRY": "1",
        "MYTOOL_TELEMETRY_URL": server.url,
        "MYTOOL_TELEMETRY_UPLOAD_INTERVAL": "600",
    }
    for name in ("Ada", "Bob"):  # on CI the pause after a success does not apply
        result = tool.run("hello", name, env=env)
        assert result.returncode == 0 and result.stderr == ""
    wait_until(lambda: len(server.received) == 2, timeout=15, what="both sessions sent")
    wait_until(lambda: tool.queued() == [], timeout=5, what="the queue emptied")


def test_exit_does_not_wait_for_an_upload_to_a_silent_server(tmp_path: Path, black_hole) -> None:  # type: ignore[no-untyped-def]
    """finish() starts the upload process and returns; that process alone waits on the silent server."""
    data_dir = tmp_path / "data"
    (data_dir / "queue").mkdir(parents=True)
    (data_dir / "consent").write_text("allowed")
    (data_dir / "queue" / file_name(time.time(), "waiting")).write_text('{"sessionId": "waiting"}')
    config = Config("mytool", "1.0.0", black_hole.url, data_dir=data_dir, install_hooks=False, environ={})
    client = Client(config)
    client.start()
    began = time.perf_counter()
    client.finish()
    took = time.perf_counter() - began
    assert took < 1.0, "well below the 5 s request timeout the upload process waits"
    wait_until(lambda: black_hole.accepted == 1, timeout=15, what="the upload process reaching the server")
    assert (data_dir / "upload-state").read_text().split()[2] == "attempt", "claimed while in flight"
    assert client.uploader is None, "no thread in this process"


def test_a_silent_server_does_not_hold_the_tool(tool, black_hole) -> None:  # type: ignore[no-untyped-def]
    """The tool exits long before the 5 s request timeout when the server never answers."""
    tool.allow()
    tool.queue_sessions(3)
    began = time.monotonic()
    result = tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY_URL": black_hole.url})
    assert result.returncode == 0 and result.stderr == ""
    assert time.monotonic() - began < 3.0
    assert len(tool.queued()) == 4


def test_show_prints_exactly_what_is_queued(tool) -> None:  # type: ignore[no-untyped-def]
    """`python -m tallystick.client show` lists the queued sessions as they would be sent; allow/disable work."""
    import sys

    tool.allow()
    tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY": "local"})
    show = subprocess.run(
        [sys.executable, "-m", "tallystick.client", "show", "--app", "mytool", "--json"],
        env=tool.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(show.stdout)
    assert report["storedConsent"] == "allowed"
    assert [s["sessionId"] for s in report["queued"]] == sorted(tool.queued_ids())
    assert report["queued"][0] == json.loads(tool.queued()[0].read_text())
    subprocess.run(
        [sys.executable, "-m", "tallystick.client", "disable", "--app", "mytool"],
        env=tool.env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert tool.queued() == [] and (tool.data_dir / "consent").read_text() == "disabled"


def test_debug_switch_prints_the_session_to_stderr(tool) -> None:  # type: ignore[no-untyped-def]
    """MYTOOL_TELEMETRY_DEBUG=1 prints the session on stderr and queues nothing; stdout is untouched."""
    result = tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY": "1", "MYTOOL_TELEMETRY_DEBUG": "1"})
    assert result.stdout == "Hello, Ada!\n"
    assert '"type": "UpdateNudgeShown"' in result.stderr
    assert tool.queued() == []


def test_the_upload_process_keeps_none_of_the_tools_inherited_descriptors(tool, black_hole) -> None:  # type: ignore[no-untyped-def]
    """Pipes the tool inherited (stdout in `$(tool)`, a jobserver or CI runner's fd 3+) reach EOF when the tool exits.

    The upload process is stuck on a silent server meanwhile: a reader waiting for EOF must not wait for it.
    """
    import select

    tool.allow()
    tool.queue_sessions(1)
    extra_read, extra_write = os.pipe()
    high_read, high_write = os.pipe()
    high = os.dup2(high_write, 40)  # a descriptor far from the first free ones
    os.close(high_write)
    try:
        process = subprocess.Popen(
            tool.command("hello", "Ada"),
            env={**tool.env, "MYTOOL_TELEMETRY_URL": black_hole.url},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(extra_write, high),
        )
        os.close(extra_write)
        os.close(high)
        out, err = process.communicate(timeout=30)  # `out=$(tool)`: stdout and stderr at EOF
        assert (out, err, process.returncode) == (b"Hello, Ada!\n", b"", 0)
        wait_until(lambda: black_hole.accepted == 1, timeout=15, what="the upload process waiting on the server")
        for reader in (extra_read, high_read):
            readable, _, _ = select.select([reader], [], [], 2.0)
            assert readable and os.read(reader, 1) == b"", "EOF: the upload process holds no copy of the write end"
    finally:
        os.close(extra_read)
        os.close(high_read)


def test_inherited_descriptors_lists_only_what_a_child_would_inherit() -> None:
    """An inheritable pipe end is listed for closing in the child; Python's own close-on-exec ones are not."""
    from tallystick.client._spawn import inherited_descriptors

    read_end, write_end = os.pipe()
    try:
        os.set_inheritable(write_end, True)
        found = inherited_descriptors()
        assert write_end in found and read_end not in found
        assert all(fd >= 3 for fd in found)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_forked_children_record_nothing_and_the_parent_queues_once(tmp_path: Path) -> None:
    """A fork pool's workers and an os.fork child exiting normally add nothing; the parent's one session is queued."""
    body = """
        import multiprocessing

        def work(i):
            with t.span("ChildWork"):
                t.event("ChildDone")
            return i

        with t.span("Parent"):
            with multiprocessing.get_context("fork").Pool(2) as pool:
                assert pool.map(work, range(4)) == [0, 1, 2, 3]
        pid = os.fork()
        if pid == 0:
            work(9)
            sys.exit(0)  # the child runs the exit handlers too
        assert os.waitpid(pid, 0)[1] == 0
        t.event("ParentDone")
    """
    result = subprocess.run(_script(body, tmp_path, handle_sigterm=False), capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (queued,) = (tmp_path / "queue").glob("*.json")
    session = json.loads(queued.read_text())
    assert [e["type"] for e in session["events"]] == ["ParentDone"]
    assert [s["type"] for s in session["spans"]] == ["Parent"]


def test_ctrl_c_queues_the_session_and_the_tool_dies_of_sigint(tmp_path: Path) -> None:
    """KeyboardInterrupt mid-run: the traceback and exit status are Python's own, and the session is queued."""
    body = """
        import time
        with t.span("Wait"):
            print("running", flush=True)  # inside the span: a Ctrl-C before it would leave no span to mark
            time.sleep(30)
    """
    with subprocess.Popen(
        _script(body, tmp_path, handle_sigterm=False), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == "running\n"
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=10)
        finally:
            process.kill()
    assert process.returncode == -signal.SIGINT
    assert err.rstrip().endswith("KeyboardInterrupt") and "tallystick" not in err
    (queued,) = (tmp_path / "queue").glob("*.json")
    spans = json.loads(queued.read_text())["spans"]
    assert [(s["type"], s.get("attributes")) for s in spans] == [("Wait", {"failed": True})]
