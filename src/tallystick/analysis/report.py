"""What every analysis returns: plain data for the terminal, JSON, CSV, charts and the dashboard."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass
class Table:
    """Rows under named columns; values are str, int, float, bool, date or None."""

    name: str
    columns: list[str]
    rows: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


@dataclass
class Report:
    """One analysis's answer: headline numbers (``summary``), detail tables, notes on reading it.

    ``chart`` is a Vega-Lite specification of the main picture (data inlined), or None.
    """

    analysis: str
    title: str
    scope: dict[str, Any]
    summary: dict[str, Any]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    chart: dict[str, Any] | None = None

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"{self.analysis} has no table {name!r}; tables: {', '.join(t.name for t in self.tables)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates and datetimes as ISO strings."""
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _spec(title: str, table: Table, **body: Any) -> dict[str, Any]:
    """A Vega-Lite spec of the house size over ``table``'s rows; ``body`` adds mark/encoding or layers."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": 640,
        "height": 320,
        "data": {"values": _jsonable(table.records())},
        **body,
    }


def line_chart(
    table: Table,
    x: str,
    y: str,
    color: str | None = None,
    *,
    title: str,
    percent: bool = False,
    x_type: str = "temporal",
) -> dict[str, Any]:
    """A Vega-Lite line chart of one table (x temporal unless told)."""
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": x_type, "title": x, **({"sort": None} if x_type == "ordinal" else {})},
        "y": {"field": y, "type": "quantitative", "title": y, **({"axis": {"format": "%"}} if percent else {})},
    }
    if color:
        encoding["color"] = {"field": color, "type": "nominal", "title": color}
    return _spec(title, table, mark={"type": "line", "point": False}, encoding=encoding)


def bar_chart(
    table: Table, x: str, y: str, *, title: str, percent: bool = False, error: tuple[str, str] | None = None
) -> dict[str, Any]:
    """A Vega-Lite bar chart (x nominal, in table order), with error bars from two columns."""
    bars: dict[str, Any] = {
        "mark": "bar",
        "encoding": {
            "x": {"field": x, "type": "nominal", "sort": None, "title": x},
            "y": {"field": y, "type": "quantitative", "title": y, **({"axis": {"format": "%"}} if percent else {})},
        },
    }
    layers = [bars]
    if error:
        layers.append(
            {
                "mark": "errorbar",
                "encoding": {
                    "x": {"field": x, "type": "nominal", "sort": None},
                    "y": {"field": error[0], "type": "quantitative"},
                    "y2": {"field": error[1]},
                },
            }
        )
    return _spec(title, table, layer=layers)
