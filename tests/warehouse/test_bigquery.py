"""The BigQuery schema and load job are generated from the Structs and committed up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tallystick.schema import Event, Session, Span
from tallystick.warehouse import bigquery


def _names(fields: list[dict[str, Any]]) -> list[str]:
    return [f["name"] for f in fields]


def test_schema_matches_the_structs() -> None:
    """Every Struct field is a column with the wire name, and nested records match Event and Span."""
    fields = bigquery.schema()
    assert _names(fields) == bigquery.struct_names(Session)
    by_name = {f["name"]: f for f in fields}
    assert (by_name["events"]["mode"], _names(by_name["events"]["fields"])) == (
        "REPEATED",
        bigquery.struct_names(Event),
    )
    assert (by_name["spans"]["mode"], _names(by_name["spans"]["fields"])) == ("REPEATED", bigquery.struct_names(Span))
    assert by_name["sessionStartTime"] == {"name": "sessionStartTime", "type": "TIMESTAMP", "mode": "REQUIRED"}
    assert by_name["attributes"] == {"name": "attributes", "type": "JSON", "mode": "NULLABLE"}


def test_committed_files_are_current() -> None:
    """The files under warehouse/bigquery/ are what the generator writes (run it after changing the Structs)."""
    for name, content in bigquery.files().items():
        assert (bigquery.HERE / name).read_text() == content, "regenerate: python -m tallystick.warehouse.bigquery"


def test_transfer_reads_the_storage_layout() -> None:
    """The hourly transfer reads the same object layout the ingest service writes."""
    params = bigquery.transfer(bucket="telemetry")["params"]
    assert params["data_path_template"] == "gs://telemetry/sessions/v1/*"
    assert params["file_format"] == "JSON"


def test_help_prints_usage_and_writes_nothing(tmp_path: Path) -> None:
    """`python -m tallystick.warehouse.bigquery --help` exits 0 with usage and an example, and writes no files."""
    result = subprocess.run(
        [sys.executable, "-m", "tallystick.warehouse.bigquery", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m tallystick.warehouse.bigquery [-h] [DIR]")
    assert "example:" in result.stdout and "sessions.schema.json" in result.stdout
    assert list(tmp_path.iterdir()) == []  # not taken for a directory named --help


def test_writes_the_generated_files_into_the_given_directory(tmp_path: Path) -> None:
    """Given DIR, it creates DIR and writes every generated file there, silently."""
    target = tmp_path / "out" / "bq"
    assert bigquery.main([str(target)]) == 0
    assert {p.name: p.read_text() for p in target.iterdir()} == bigquery.files()


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        pytest.param(["--bogus"], 2, "unrecognized arguments: --bogus", id="unknown-option"),
        pytest.param(["a", "b"], 2, "unrecognized arguments: b", id="two-directories"),
        pytest.param(["{file}"], 1, "cannot write to {file}: File exists", id="directory-is-a-file"),
    ],
)
def test_a_bad_argument_is_one_line_without_traceback(
    argv: list[str], code: int, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad argument or an unusable directory exits non-zero with one error line naming the problem."""
    file = tmp_path / "taken"
    file.write_text("")
    with pytest.raises(SystemExit) as exited:
        sys.exit(bigquery.main([a.format(file=file) for a in argv]))
    err = capsys.readouterr().err
    assert exited.value.code == code
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert errors == [f"python -m tallystick.warehouse.bigquery: error: {error.format(file=file)}"]
