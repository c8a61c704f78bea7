"""CSV cells that a spreadsheet shows as text and never runs as a formula.

Values in the warehouse come from clients, so any of them may be a payload such as
``=HYPERLINK(...)``. Text starting with ``= + - @``, a tab or a carriage return gets
a leading ``'`` (OWASP's advice against CSV injection); numbers, negative ones
included, stay numbers.

Every CSV Tallystick writes (``query``, ``report``, the dashboard's download, a published
site's data files) ends its lines with ``\n``, as DuckDB's ``COPY ... TO`` and ClickHouse's
``CSV`` format do and as ``cut``, ``sort``, ``awk`` and ``wc -l`` expect: the ``csv``
module's default ``\r\n`` left a ``\r`` on every last field for Unix tools. Spreadsheets,
pandas and ``csv.reader`` read either.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [spreadsheet_safe(v) for v in values]


class Writer:
    """``writerow``/``writerows`` as ``csv.writer``'s, with ``\\n`` line ends (see the module's docstring).

    With ``lineterminator="\\n"`` the ``csv`` module (3.11) stops quoting a field that holds a
    bare ``\\r``, which every reader then takes for a line end: such a field is quoted here.
    """

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        values = list(row)
        if not any(isinstance(v, str) and "\r" in v for v in values):
            self._writer.writerow(values)
            return
        cells = []
        for value in values:
            if isinstance(value, str) and "\r" in value:
                cells.append('"' + value.replace('"', '""') + '"')
            elif value is None or value == "":
                cells.append("")
            else:
                one = io.StringIO()
                csv.writer(one, lineterminator="\n").writerow([value])
                cells.append(one.getvalue()[:-1])
        self._out.write(",".join(cells) + "\n")

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: IO[str]) -> Writer:
    """A CSV writer on ``out`` with ``\\n`` line ends (see the module's docstring)."""
    return Writer(out)
