"""CSV output of client-supplied values is safe to open in a spreadsheet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tallystick._csv import safe_row, spreadsheet_safe


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")', id="formula"),
        pytest.param("@SUM(1+1)", "'@SUM(1+1)", id="at"),
        pytest.param("+1", "'+1", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("\tx", "'\tx", id="tab"),
        pytest.param("fish", "fish", id="plain"),
        pytest.param(-3, -3, id="negative-number"),
        pytest.param(None, None, id="null"),
    ],
)
def test_spreadsheet_safe(value: object, expected: object) -> None:
    """Text a spreadsheet would evaluate gets a leading quote; everything else is unchanged."""
    assert spreadsheet_safe(value) == expected


def test_query_csv_is_spreadsheet_safe(tmp_path: Path) -> None:
    """tallystick query --format csv escapes formula-like values and column names; lines end in \\n."""
    run = [sys.executable, "-m", "tallystick.cli"]
    assert subprocess.run([*run, "load", "--data-dir", str(tmp_path)], capture_output=True).returncode == 0
    out = subprocess.run(
        [*run, "query", "--data-dir", str(tmp_path), "--format", "csv", "SELECT '=1+1' AS \"=c\", -5 AS n"],
        capture_output=True,
        check=True,
    ).stdout
    assert out == b"'=c,n\n'=1+1,-5\n"  # as DuckDB's COPY and ClickHouse's CSV end lines, and cut/awk expect
    assert safe_row(["=a", 1]) == ["'=a", 1]


def test_writer_ends_lines_in_newline_and_quotes_a_bare_carriage_return() -> None:
    """Lines end in \\n; a field holding \\r or \\n is quoted, so csv.reader and other readers get it back whole."""
    import csv
    import io

    from tallystick._csv import writer

    out = io.StringIO()
    writer(out).writerows([["a\rb", "c\nd", None, -5, 'q"\r', ""], ["plain", 1]])
    text = out.getvalue()
    assert text == '"a\rb","c\nd",,-5,"q""\r",\nplain,1\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["a\rb", "c\nd", "", "-5", 'q"\r', ""], ["plain", "1"]]
