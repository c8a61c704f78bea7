"""The command line: help that helps, and one-line errors for bad configuration."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.common import wait_until
from fixtures.ingest import IngestServer


def tallystick(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tallystick.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tallystick: error: ")
    return lines[0]


@pytest.mark.parametrize(
    "command", ["up", "serve", "load", "dashboard", "query", "demo", "report", "privacy", "delete-user", "rejects"]
)
def test_help_has_an_example(command: str) -> None:
    """Each command's --help describes it and shows an example."""
    result = tallystick(command, "--help")
    assert result.returncode == 0
    assert "example" in result.stdout
    assert f"tallystick {command}" in result.stdout


def test_port_in_use(tmp_path: Path) -> None:
    """A taken port gives one line saying to pick another, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line_error(tallystick("serve", "--app", "demo", "--port", str(port), "--data-dir", str(tmp_path)))
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line


def test_unusable_data_dir(tmp_path: Path) -> None:
    """A data directory that cannot be created gives one line naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = _one_line_error(tallystick("serve", "--app", "demo", "--port", "0", "--data-dir", str(blocker / "sub")))
    assert str(blocker / "sub" / "sessions") in line
    assert "--data-dir" in line


def test_invalid_application_id(tmp_path: Path) -> None:
    """An application ID that breaks the contract gives one line with the rule."""
    line = _one_line_error(tallystick("serve", "--app", "My Tool", "--port", "0", "--data-dir", str(tmp_path)))
    assert "invalid application ID 'My Tool'" in line


def test_sending_for_an_unregistered_application(ingest_server: Callable[..., IngestServer]) -> None:
    """Demo data sent to a server that does not know the app gives one line saying how to register it."""
    server = ingest_server(apps=["othertool"])
    line = _one_line_error(tallystick("demo", "--url", server.url, "--sessions", "5"))
    assert "does not accept application 'demo'" in line
    assert "--app demo" in line


def test_a_replica_stopping_while_demo_sends(ingest_server: Callable[..., IngestServer]) -> None:
    """An ingest service that goes away part-way (a restart) ends `demo` with one line, not a traceback."""
    server = ingest_server(apps=["demo"])
    argv = [sys.executable, "-m", "tallystick.cli", "demo", "--url", server.url, "--sessions", "100000"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as demo:
        wait_until(lambda: bool(server.stored_keys()) or demo.poll() is not None, timeout=60, what="a stored session")
        server.kill()
        stdout, stderr = demo.communicate(timeout=60)
    line = _one_line_error(subprocess.CompletedProcess(argv, demo.returncode, stdout, stderr))
    assert f"the ingest service at {server.url} stopped answering after" in line
    assert "run the same command again" in line


def test_query_before_any_load(tmp_path: Path) -> None:
    """Querying a warehouse that does not exist yet says to load first."""
    line = _one_line_error(tallystick("query", "--data-dir", str(tmp_path), "SELECT 1"))
    assert f"-m tallystick.cli load --data-dir {tmp_path}`" in line  # as it was run, on the same data


def test_bad_sql_shows_the_engine_message(tmp_path: Path) -> None:
    """A query error shows the engine's own message (with its pointer to the spot), not a traceback."""
    assert tallystick("load", "--data-dir", str(tmp_path)).returncode == 0
    result = tallystick("query", "--data-dir", str(tmp_path), "SELECT nope FROM sessions")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith('tallystick: error: Binder Error: Referenced column "nope" not found')


def test_query_output_formats(tmp_path: Path) -> None:
    """query prints an aligned table by default and CSV or JSON lines on request."""
    assert tallystick("load", "--data-dir", str(tmp_path)).returncode == 0
    sql = "SELECT 1 AS a, 'x' AS b"
    assert tallystick("query", "--data-dir", str(tmp_path), sql).stdout.splitlines() == [
        "a  b",
        "-  -",
        "1  x",
        "(1 row)",
    ]
    assert tallystick("query", "--data-dir", str(tmp_path), "--format", "csv", sql).stdout.split() == ["a,b", "1,x"]
    assert (
        tallystick("query", "--data-dir", str(tmp_path), "--format", "json", sql).stdout.strip() == '{"a": 1, "b": "x"}'
    )


def test_a_chdb_directory_another_process_holds(tmp_path: Path) -> None:
    """chDB lets one process use a data directory: a second (a load while a dashboard reads) gets one line."""
    directory = tmp_path / "chdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CHDB, str(directory)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        line = _one_line_error(tallystick("query", "--warehouse", f"chdb://{directory}", "SELECT 1"))
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert f"chdb://{directory.resolve()} cannot be opened" in line
    assert "one process at a time" in line


HOLD_CHDB = """
import sys, time
from tallystick.warehouse import open_warehouse
warehouse = open_warehouse("chdb://" + sys.argv[1])
warehouse.ensure_schema()
print("open", flush=True)
time.sleep(600)
"""


def test_a_mistyped_option_names_the_one_meant(capsys: pytest.CaptureFixture[str]) -> None:
    """`load --evry 1h` shows load's usage and suggests --every; a stray argument is named, nothing suggested."""
    from tallystick.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["load", "--evry", "1h"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "usage: tallystick load" in err
    assert err.strip().endswith(
        "tallystick load: error: unrecognized arguments: --evry 1h (--evry: did you mean --every?)"
    )
    with pytest.raises(SystemExit):
        main(["rejects", "extra"])
    assert capsys.readouterr().err.strip().endswith("tallystick rejects: error: unrecognized arguments: extra")


def test_demo_refuses_a_url_that_is_not_http() -> None:
    """A mistyped scheme gets one line naming the URL and an example, not 'no ingest service answers'."""
    line = _one_line_error(tallystick("demo", "--url", "htp://127.0.0.1:8780", "--sessions", "1"))
    assert "'htp://127.0.0.1:8780' is not an http:// or https:// URL" in line


def test_import_from_a_directory_that_is_not_there(tmp_path: Path) -> None:
    """A missing source directory is a typo to report, not an empty bucket that imports nothing."""
    line = _one_line_error(tallystick("import", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "data")))
    assert f"no directory at {tmp_path / 'nope'}" in line


def test_an_analysis_of_an_empty_warehouse_says_to_load(tmp_path: Path) -> None:
    """report and digest on a warehouse without sessions say to load some, with the same data directory."""
    assert tallystick("load", "--data-dir", str(tmp_path)).returncode == 0
    for args in (("report", "adoption"), ("digest",)):
        result = tallystick(*args, "--data-dir", str(tmp_path))
        assert result.returncode == 1
        line = result.stderr.strip().splitlines()[-1]
        assert "no sessions in the warehouse yet: load some with" in line
        assert f"load --data-dir {tmp_path}`" in line


def test_the_command_without_the_server_parts_says_how_to_install_them() -> None:
    """`pip install tallystick` (the client alone) still installs the script: it says what to install, no traceback."""
    code = "import sys; sys.modules['msgspec'] = None; from tallystick._entry import main; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60)
    line = _one_line_error(result)
    assert line.endswith("(msgspec is not installed): pip install 'tallystick[server]'")


def test_demo_reports_each_batch_it_sent(ingest_server: Callable[..., IngestServer]) -> None:
    """demo.send gives its progress callback the running counts after every batch (the CLI shows them on a terminal)."""
    from tallystick import demo

    server = ingest_server(apps=["demo"])
    seen: list[int] = []
    counts = demo.send(server.url, demo.generate(250, seed=4), batch=100, progress=lambda c: seen.append(c[201]))
    assert seen == [100, 200, 250]
    assert counts[201] == 250
