"""Session text reaches the terminal escaped, and every command ends quietly when its reader goes away."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from sessions import session
from tallystick._terminal import safe
from tallystick.storage.local import LocalStore
from warehouse.conftest import load_all, put

HOSTILE = "\u001b[31mRED\u001b[0m\u001b]0;pwned\u0007"
UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e")


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "tallystick.cli", *args], capture_output=True, text=True, timeout=60, **kwargs
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose warehouse holds sessions with a control-sequence attribute, and many plain ones."""
    root = tmp_path_factory.mktemp("hostile")
    store = LocalStore(root / "sessions", fsync=False)
    for i in range(3):
        attributes = {"shell": HOSTILE, "note": "tab\there\nnew line \u202eevil\x9b[2J", "n": i}
        put(store, session(attributes=attributes))
    for i in range(400):
        put(store, session(attributes={"shell": "fish", "n": i}))
    load_all(store, root / "warehouse.duckdb")
    return root


def assert_clean(text: str) -> None:
    for char in UNSAFE:
        assert char not in text, (char, text[:300])


def test_safe_escapes_what_drives_a_terminal_and_keeps_the_rest() -> None:
    """Controls (C0, DEL, C1), bidi overrides and separators become visible escapes; other text is untouched."""
    assert safe(HOSTILE) == "\\x1b[31mRED\\x1b[0m\\x1b]0;pwned\\x07"
    assert safe("a\tb\nc\x7fd\x9be\u202ef\u2028g") == "a\\x09b\\x0ac\\x7fd\\x9be\\u202ef\\u2028g"
    assert safe("zoë 日本 🙂 👩‍💻 -- ok") == "zoë 日本 🙂 👩‍💻 -- ok"
    assert safe(safe(HOSTILE)) == safe(HOSTILE)


def test_query_table_escapes_session_text(data: Path) -> None:
    """`tallystick query` prints an attribute holding escape sequences as visible text, one row per line."""
    result = run(
        "query",
        "--data-dir",
        str(data),
        "SELECT attributes->>'shell' AS s, attributes->>'note' AS t FROM sessions WHERE attributes->>'shell' <> 'fish'",
    )
    assert result.returncode == 0, result.stderr
    assert_clean(result.stdout)
    assert "\\x1b[31mRED\\x1b[0m\\x1b]0;pwned\\x07" in result.stdout
    assert len(result.stdout.splitlines()) == 2 + 3 + 1  # header, rule, 3 rows, count: no forged lines


def test_report_table_escapes_session_text(data: Path) -> None:
    """`tallystick report` (text) prints attribute values escaped."""
    result = run("report", "breakdown", "--data-dir", str(data), "--app", "demo", "--attribute", "shell")
    assert result.returncode == 0, result.stderr
    assert_clean(result.stdout)
    assert "\\x1b[31mRED" in result.stdout


def test_error_lines_quoting_session_text_are_escaped(data: Path) -> None:
    """An engine error that quotes a stored value prints it escaped, on one line."""
    result = run(
        "query",
        "--data-dir",
        str(data),
        "SELECT CAST(attributes->>'shell' AS INTEGER) FROM sessions WHERE attributes->>'shell' <> 'fish'",
    )
    assert result.returncode == 1
    assert_clean(result.stderr)
    assert result.stderr.startswith("tallystick: error: ")


def _on_a_terminal(*args: str) -> str:
    """What the command prints with a pseudo-terminal as stdout."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tallystick.cli", *args], stdout=follower, stderr=subprocess.DEVNULL
        )
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        proc.wait(timeout=60)
    finally:
        os.close(leader)
    return out.decode()


@pytest.mark.parametrize("command", ["query", "report"])
def test_csv_on_a_terminal_is_escaped_but_a_file_gets_the_data(data: Path, command: str) -> None:
    """CSV written to a terminal is escaped; written to a pipe or file it holds the stored bytes."""
    if command == "query":
        args = [
            "query",
            "--data-dir",
            str(data),
            "--format",
            "csv",
            "SELECT DISTINCT attributes->>'shell' FROM sessions",
        ]
    else:
        args = [
            "report",
            "breakdown",
            "--data-dir",
            str(data),
            "--app",
            "demo",
            "--attribute",
            "shell",
            "--format",
            "csv",
        ]
    shown = _on_a_terminal(*args)
    assert_clean(shown)
    assert "\\x1b[31mRED" in shown
    assert HOSTILE in run(*args).stdout


PIPED = {
    "query": ["query", "--format", "csv", "SELECT * FROM sessions, range(50)"],
    "query table": ["query", "SELECT * FROM sessions, range(50)"],
    "report json": ["report", "breakdown", "--app", "demo", "--attribute", "n", "--format", "json"],
}


def _closed_after_one_line(argv: list[str]) -> tuple[int, str]:
    """Run ``argv``, read one line of its output and close the pipe (what ``| head -1`` does)."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=60), err


@pytest.mark.parametrize("args", PIPED.values(), ids=PIPED.keys())
def test_a_closed_pipe_ends_quietly(data: Path, args: list[str]) -> None:
    """`... | head -1`: the command stops without a traceback or an error line, exit code 0."""
    code, err = _closed_after_one_line(
        [sys.executable, "-m", "tallystick.cli", args[0], "--data-dir", str(data), *args[1:]]
    )
    assert (code, err) == (0, "")


def test_client_show_ends_quietly_on_a_closed_pipe(tmp_path: Path) -> None:
    """`python -m tallystick.client show | head -1` ends without a traceback."""
    _, err = _closed_after_one_line(
        [sys.executable, "-m", "tallystick.client", "show", "--app", "demo", "--data-dir", str(tmp_path)]
    )
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_hints_name_the_program_as_it_was_run(tmp_path: Path) -> None:
    """Run by a path (`.venv/bin/tallystick`, not on $PATH), a hint names that path, and runs as printed."""
    script = Path(sys.executable).parent / "tallystick"
    cwd = script.parent.parent
    env = {**os.environ, "PATH": "/usr/bin:/bin", "TALLYSTICK_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        ["bin/tallystick", "query", "SELECT 1"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "run `bin/tallystick load`" in result.stderr, result.stderr
    hint = result.stderr.split("run `", 1)[1].split("`", 1)[0]
    ran = subprocess.run(hint, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr


def test_report_overview_shows_which_analysis_runs_on_a_terminal_only(data: Path) -> None:
    """`tallystick report` says '[i/N] name ...' on a terminal's stderr, cleared each time; stdout stays plain."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tallystick.cli", "report", "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=follower,
        )
        os.close(follower)
        err = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            err += chunk
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        os.close(leader)
    assert proc.returncode == 0
    from tallystick.analysis import ANALYSES

    assert f"[1/{len(ANALYSES)}] adoption ..." in err.decode()
    assert err.decode().endswith("\r\x1b[K")  # the last one cleared
    assert "\x1b" not in out and "Version adoption" in out
    assert run("report", "--data-dir", str(data)).stderr == ""  # not a terminal: no progress
