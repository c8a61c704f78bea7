"""``tallystick publish`` on the command line: help with examples, progress, one-line errors, a closed pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from publish.conftest import build
from tallystick.cli import main


def tallystick(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tallystick.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``tallystick ARGS`` in this process (faster than a subprocess): exit code, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # --help
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(result: tuple[int, str, str]) -> str:
    code, _, err = result
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tallystick: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def warehouse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "warehouse.duckdb"
    build(path).close()
    return path


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """--help says what the command does and how to start from the default config."""
    code, out, _ = in_process(capsys, "publish", "--help")
    assert code == 0
    assert "tallystick publish --config publish.toml --out site/" in out
    assert "--print-config" in out


def test_publish_with_the_default_config_writes_the_site_and_says_so(warehouse_file: Path, tmp_path: Path) -> None:
    """Progress per chart, then one line naming the files and their size; the optional chart missing is said."""
    out = tmp_path / "site"
    result = tallystick("publish", "--warehouse", str(warehouse_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "publish: chart 1 of 4: Versions in use (adoption)" in result.stderr
    assert "left out breakdown-osname (optional)" in result.stderr
    assert "wrote 7 files" in result.stderr
    assert (out / "index.html").is_file()


def test_print_config_is_the_default_and_parses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--print-config prints a config that publish reads back unchanged."""
    from tallystick.publish import load_config
    from tallystick.publish.config import DEFAULT_TOML

    _, out, _ = in_process(capsys, "publish", "--print-config")
    assert out == DEFAULT_TOML
    (tmp_path / "publish.toml").write_text(out)
    assert load_config(tmp_path / "publish.toml") == load_config(None)


def test_print_config_into_a_closed_pipe_is_quiet() -> None:
    """`tallystick publish --print-config | head -1` exits without a traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tallystick.cli", "publish", "--print-config"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the directory to write the site into with --out"),
        (("--config", "missing.toml"), "cannot read missing.toml"),
    ],
    ids=["no-out", "no-config"],
)
def test_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str], warehouse_file: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """A missing --out or config file is one line saying what to do."""
    extra = () if not args else ("--out", str(tmp_path / "site"))
    line = one_line_error(in_process(capsys, "publish", "--warehouse", str(warehouse_file), *extra, *args))
    assert message in line


def test_an_unpublishable_analysis_is_one_line(
    capsys: pytest.CaptureFixture[str], warehouse_file: Path, tmp_path: Path
) -> None:
    """Asking for an analysis that counts sessions, not users, is refused in one line."""
    config = tmp_path / "publish.toml"
    config.write_text('[[chart]]\nanalysis = "event-rate"\nparams = { event = "Error" }\n')
    args = ("--warehouse", str(warehouse_file), "--config", str(config), "--out", str(tmp_path))
    line = one_line_error(in_process(capsys, "publish", *args))
    assert "event-rate cannot be published" in line


def test_an_unwritable_out_is_one_line(
    capsys: pytest.CaptureFixture[str], warehouse_file: Path, tmp_path: Path
) -> None:
    """--out naming a file, not a directory, is one line naming the directory."""
    (tmp_path / "taken").write_text("")
    args = ("--warehouse", str(warehouse_file), "--out", str(tmp_path / "taken"))
    line = one_line_error(in_process(capsys, "publish", *args))
    assert f"cannot write the site into {tmp_path / 'taken'}" in line


def test_a_closed_stderr_still_writes_the_whole_site(warehouse_file: Path, tmp_path: Path) -> None:
    """`tallystick publish ... 2>&1 | head -1`: progress stops, the site is written all the same, exit 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tallystick.cli", "publish", "--warehouse", str(warehouse_file), "--out", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    process.stderr.close()
    assert process.wait(timeout=120) == 0
    assert (tmp_path / "index.html").is_file()
    assert len(list((tmp_path / "data").iterdir())) == 6
