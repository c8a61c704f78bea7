"""``tallystick report``: tables, JSON, CSV, charts, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from analysis.conftest import END, load
from tallystick import demo
from tallystick.cli import main
from tallystick.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small demo warehouse of its own, closed, as the CLI opens it read-only."""
    path = tmp_path_factory.mktemp("cli") / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path)
    load(warehouse, list(demo.generate(4000, seed=2, end=END, arrivals=True)))
    warehouse.close()
    return str(path)


def test_table_output(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The default output is a readable title, summary and tables."""
    assert main(["report", "breakdown", "--warehouse", spec, "--attribute", "shell", "--every", "month"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Which values of shell are used?")
    assert "fish" in out and "note:" in out


def test_json_and_csv(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json is the whole report; --format csv one table."""
    args = [
        "report",
        "feature-impact",
        "--warehouse",
        spec,
        "--feature",
        "tabCompletion",
        "--outcome",
        "UnknownCommand",
    ]
    assert main([*args, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["relative_difference"] < 0
    assert main([*args, "--format", "csv", "--table", "difference"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["per", "relative_difference", "lo", "hi"] and len(rows) == 3
    assert "\r" not in out and out.count("\n") == 3  # \n line ends, as every CSV Tallystick writes


@pytest.mark.parametrize("suffix", [pytest.param(".png", id="png"), pytest.param(".html", id="html")])
def test_chart(spec: str, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--chart writes a PNG or a self-contained HTML page."""
    pytest.importorskip("vl_convert")
    path = tmp_path / f"chart{suffix}"
    assert main(["report", "adoption", "--warehouse", spec, "--chart", str(path)]) == 0
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<html" in data[:500].lower()
    assert b"cdn." not in data and b"https://cdn" not in data


def test_errors_are_one_line(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Mistakes exit 1 with one line that says what to do."""
    assert main(["report", "breakdown", "--warehouse", spec, "--attribute", "shel"]) == 1
    assert main(["report", "adoption", "--warehouse", spec, "--span", "X"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "'shel'" in err[0] and "does not take --span" in err[1]


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a name, the analyses are listed."""
    assert main(["report"]) == 0
    assert "common-factor" in capsys.readouterr().out


def test_every_answer_as_json_and_csv_refused(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a NAME, --format json is every headline in one document; --format csv or --chart: one line, status 2."""
    assert main(["report", "--warehouse", spec, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["app"] == "demo" and len(document["answers"]) >= 5
    adoption = next(a for a in document["answers"] if a["name"] == "adoption")
    assert adoption["title"] and adoption["headline"]
    for flags, named in ((["--format", "csv"], "--format csv"), (["--chart", "out.png"], "--chart")):
        assert main(["report", "--warehouse", spec, *flags]) == 2
        captured = capsys.readouterr()
        (line,) = captured.err.strip().splitlines()
        assert captured.out == "" and line.startswith(f"tallystick: error: {named} needs an analysis NAME: ")
        assert line.endswith("every answer at once is text, or --format json")
