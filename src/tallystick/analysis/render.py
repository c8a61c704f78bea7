"""Reports for people: a terminal table, CSV, JSON, and charts as PNG, SVG or self-contained HTML."""

from __future__ import annotations

import json
import math
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from tallystick._csv import safe_row
from tallystick._csv import writer as csv_writer
from tallystick._terminal import is_terminal, safe, safe_value
from tallystick.analysis.errors import BadParameter
from tallystick.analysis.report import Report, Table
from tallystick.analysis.words import number

MAX_ROWS = 40


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return number(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list) and len(value) == 3 and all(isinstance(v, float) for v in value):
        return f"{_cell(value[0])} (interval {_cell(value[1])} to {_cell(value[2])})"  # estimate, lo, hi
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_cell(v) for v in value) + ")"
    return safe(str(value))


def _table_lines(columns: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[_cell(v) for v in r] for r in rows]
    columns = [safe(c) for c in columns]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return lines


def _summary_lines(summary: dict[str, Any], indent: str = "") -> list[str]:
    lines = []
    for key, value in summary.items():
        if isinstance(value, dict) and value and len(value) <= 16:
            lines.append(f"{indent}{key}:")
            lines += _summary_lines(value, indent + "  ")
        elif isinstance(value, dict):
            lines.append(f"{indent}{key}: ({len(value)} entries; see --format json)")
        else:
            lines.append(f"{indent}{key}: {_cell(value)}")
    return lines


def write_text(report: Report, out: IO[str], *, all_rows: bool = False) -> None:
    lines = [report.title, "=" * len(report.title)]
    if report.headline:
        lines += [*textwrap.wrap(report.headline, 100), ""]
    scope = report.scope
    lines.append(
        f"{scope['app']}, {scope['since']} to {scope['until']}"
        + (f", where {', '.join(f'{k}={v}' for k, v in scope['where'].items())}" if scope.get("where") else "")
        + (f", versions {', '.join(scope['versions'])}" if scope.get("versions") else "")
    )
    lines.append("")
    lines += _summary_lines(report.summary)
    for table in report.tables:
        lines += ["", f"{table.name}:"]
        rows = (
            table.rows
            if all_rows
            else table.rows[-MAX_ROWS:]
            if table.name in ("daily", "over_time", "recent")
            else table.rows[:MAX_ROWS]
        )
        lines += _table_lines(table.columns, rows)
        if len(rows) < len(table.rows):
            lines.append(f"({len(table.rows) - len(rows)} more rows: --all-rows, or --format csv --table {table.name})")
    if report.notes:
        lines += ["", *(f"note: {n}" for n in report.notes)]
    # Titles, scope and notes may quote session text (a version, an attribute value) too.
    out.write("\n".join(safe(line) for line in lines) + "\n")


def write_csv(report: Report, out: IO[str], table: str | None = None) -> None:
    t: Table = report.table(table) if table else report.tables[0]
    shown = safe_value if is_terminal(out) else (lambda v: v)  # a file gets the data as stored
    writer = csv_writer(out)
    writer.writerow(safe_row(shown(c) for c in t.columns))
    for row in t.rows:
        writer.writerow(safe_row(shown(v.isoformat() if isinstance(v, date | datetime) else v) for v in row))


def write_json(report: Report, out: IO[str]) -> None:
    json.dump(report.to_dict(), out, indent=2, default=str)
    out.write("\n")


def write_chart(report: Report, path: str | Path) -> Path:
    """The report's chart as PNG, SVG or self-contained HTML (no network needed), by the file's suffix."""
    path = Path(path)
    if report.chart is None:
        raise BadParameter(f"{report.analysis} has no chart")
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg", ".html"):
        raise BadParameter(f"--chart {path}: name a .png, .svg or .html file")
    try:
        import vl_convert
    except ImportError:
        raise BadParameter("charts need vl-convert-python: `pip install vl-convert-python`") from None
    spec = report.chart
    if suffix == ".png":
        path.write_bytes(vl_convert.vegalite_to_png(spec, scale=2))
    elif suffix == ".svg":
        path.write_text(vl_convert.vegalite_to_svg(spec), encoding="utf-8")
    else:
        path.write_text(vl_convert.vegalite_to_html(spec, bundle=True), encoding="utf-8")
    return path
