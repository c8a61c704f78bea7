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
    """One analysis's answer: ``headline``, its numbers (``summary``), detail tables, notes on reading it.

    ``headline`` is the answer in one or two plain sentences: the effect, its uncertainty and the caveat
    that matters most, written from the same numbers as ``summary`` (so it never claims more than they
    support). ``chart`` is a Vega-Lite specification of the main picture (data inlined), or None.
    """

    analysis: str
    title: str
    scope: dict[str, Any]
    summary: dict[str, Any]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    chart: dict[str, Any] | None = None
    headline: str = ""

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
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": title,
        "width": 640,
        "height": 320,
        "data": {"values": _jsonable(table.records())},
        "config": {"axis": {"labelLimit": 240, "titleFontWeight": "normal"}, "legend": {"labelLimit": 240}},
        **body,
    }


def _axis(fmt: str | None) -> dict[str, Any]:
    """Axis labels in human units: ``%``, ``ms`` (thousands separators), or plain numbers (never 1e+04)."""
    if fmt == "%":
        return {"axis": {"format": "%"}}
    return {"axis": {"format": ",~r" if fmt is None else fmt}}


def line_chart(
    table: Table,
    x: str,
    y: str,
    color: str | None = None,
    *,
    title: str,
    percent: bool = False,
    x_type: str = "temporal",
    x_title: str = "",
    y_title: str = "",
    color_title: str = "",
    log: bool = False,
    points: bool = False,
) -> dict[str, Any]:
    """A Vega-Lite line chart of one table (x temporal unless told); axis titles in words."""
    y_scale: dict[str, Any] = {"scale": {"type": "log"}} if log else {}
    encoding: dict[str, Any] = {
        "x": {"field": x, "type": x_type, "title": x_title or x, **({"sort": None} if x_type == "ordinal" else {})},
        "y": {
            "field": y,
            "type": "quantitative",
            "title": y_title or y,
            **_axis("%" if percent else None),
            **y_scale,
        },
    }
    if color:
        encoding["color"] = {"field": color, "type": "nominal", "title": color_title or color}
        at = table.columns.index(color) if color in table.columns else None
        if at is not None and len({row[at] for row in table.rows}) > 10:  # tableau10 would repeat a colour
            encoding["color"]["scale"] = {"scheme": "tableau20"}
    mark = {"type": "line", "point": points or len(table.rows) <= 3}
    return _spec(title, table, mark=mark, encoding=encoding)


def bar_chart(
    table: Table,
    x: str,
    y: str,
    *,
    title: str,
    percent: bool = False,
    error: tuple[str, str] | None = None,
    x_title: str = "",
    y_title: str = "",
) -> dict[str, Any]:
    """A Vega-Lite bar chart (x nominal, in table order), with error bars from two columns."""
    y_enc = {"field": y, "type": "quantitative", "title": y_title or y, **_axis("%" if percent else None)}
    bars: dict[str, Any] = {
        "mark": "bar",
        "encoding": {
            "x": {
                "field": x,
                "type": "nominal",
                "sort": None,
                "title": x_title or x,
                "axis": {"labelLimit": 240, "labelAngle": 0 if len(table.rows) <= 4 else -35},
            },
            "y": y_enc,
        },
    }
    layers = [bars]
    if error:
        layers.append(
            {
                "mark": "errorbar",
                "encoding": {
                    "x": {"field": x, "type": "nominal", "sort": None},
                    "y": {"field": error[0], "type": "quantitative", "title": y_title or y},
                    "y2": {"field": error[1]},
                },
            }
        )
    return _spec(title, table, layer=layers)
