"""Vega-Lite specs for the dashboard's own charts (overview and explore), data inline.

Values that came from clients (versions, attribute values, event types) travel only as
data; Vega draws them as text, never as markup.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tallystick.dashboard.explore import Series
from tallystick.dashboard.overview import COMPLETE, Overview

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier only; never fetched
HEIGHT = 240
Spec = dict[str, Any]


def _base(title: str, description: str) -> Spec:
    return {
        "$schema": SCHEMA,
        "title": {"text": title, "anchor": "start", "fontSize": 14},
        "description": description,
        "width": "container",
        "height": HEIGHT,
        "autosize": {"type": "fit", "contains": "padding"},
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 11}, "legend": {"labelLimit": 220}},
    }


def _x(field: str, title: str = "") -> Spec:
    return {
        "field": field,
        "type": "temporal",
        "timeUnit": "utcyearmonthdate",
        "scale": {"type": "utc"},
        "title": title or None,
    }


SPARSE = 14  # fewer points than this: draw each one, so a new app's first days show


def _empty(spec: Spec, message: str) -> Spec:
    """A chart with nothing to draw says so in words instead of showing bare axes."""
    spec.pop("layer", None)
    spec["data"] = {"values": [{"message": message}]}
    spec["mark"] = {"type": "text", "fontSize": 13, "color": "#5b6775"}
    spec["encoding"] = {"text": {"field": "message", "type": "nominal"}}
    spec["height"] = HEIGHT // 3
    return spec


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def activity(ov: Overview) -> Spec:
    """Sessions and active users per day, with days likely incomplete shaded."""
    spec = _base("Sessions and active users per day", "Daily sessions and distinct users")
    incomplete = [
        {"day": d["day"], "next": _next_day(d["day"]), "missing": round(1 - d["complete"], 3), "arrived": d["complete"]}
        for d in ov.daily
        if d["complete"] < COMPLETE
    ]
    spec["datasets"] = {"daily": ov.daily, "incomplete": incomplete}
    spec["layer"] = [
        {
            "data": {"name": "incomplete"},
            "mark": {"type": "rect", "color": "#f2b134"},
            "encoding": {
                "x": {"field": "day", "type": "temporal", "scale": {"type": "utc"}, "title": None},
                "x2": {"field": "next"},
                "opacity": {
                    "field": "missing",
                    "type": "quantitative",
                    "scale": {"domain": [0, 1], "range": [0.1, 0.5]},
                    "legend": None,
                },
                "tooltip": [
                    {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": "day"},
                    {"field": "arrived", "type": "quantitative", "format": ".0%", "title": "expected arrived so far"},
                ],
            },
        },
        {
            "data": {"name": "daily"},
            "transform": [{"fold": ["sessions", "users"], "as": ["series", "count"]}],
            "mark": {"type": "line", "interpolate": "monotone", "strokeWidth": 1.5, "point": len(ov.daily) < SPARSE},
            "encoding": {
                "x": _x("day"),
                "y": {"field": "count", "type": "quantitative", "title": None},
                "color": {
                    "field": "series",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": ["sessions", "users"], "range": ["#2f6fb0", "#d1603d"]},
                    "legend": {"orient": "top", "labelExpr": "datum.label == 'users' ? 'active users' : datum.label"},
                },
                "tooltip": [
                    {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate"},
                    {"field": "series", "type": "nominal"},
                    {"field": "count", "type": "quantitative"},
                ],
            },
        },
    ]
    return spec


def versions(ov: Overview) -> Spec:
    """Share of sessions per version, per week, stacked to 100 %."""
    spec = _base("Versions in use (share of sessions per week)", "Stacked share of sessions by application version")
    if not ov.versions:
        return _empty(spec, "No sessions in this period")
    spec["data"] = {"values": ov.versions}
    weeks = len({row["week"] for row in ov.versions})
    # An area needs two weeks to be seen; a new app's first week is a stacked bar.
    spec["mark"] = {"type": "area", "interpolate": "monotone"} if weeks >= 3 else {"type": "bar"}
    spec["encoding"] = {
        "x": _x("week"),
        "y": {
            "field": "sessions",
            "type": "quantitative",
            "stack": "normalize",
            "title": None,
            "axis": {"format": ".0%"},
        },
        "color": {
            "field": "version",
            "type": "nominal",
            "title": "version",
            "sort": ov.version_order,
            "scale": {"domain": ov.version_order, "scheme": "tableau20"},
        },
        "order": {"field": "versionRank", "type": "quantitative"},
        "tooltip": [
            {"field": "week", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": "week of"},
            {"field": "version", "type": "nominal"},
            {"field": "sessions", "type": "quantitative"},
        ],
    }
    rank = {v: i for i, v in enumerate(ov.version_order)}
    for row in ov.versions:
        row["versionRank"] = rank.get(row["version"], len(rank))
    return spec


def errors(ov: Overview) -> Spec:
    """Share of sessions with an error event, per week and event type."""
    spec = _base("Errors (share of sessions with each error event, per week)", "Weekly error rate by event type")
    if not ov.errors or not any(row.get("share") for row in ov.errors):
        return _empty(spec, "No error events in this period")
    spec["data"] = {"values": ov.errors}
    # A line per event type, not stacked bars: a session can have two types, so stacked shares
    # would add up to more than the share of sessions with an error.
    weeks = len({row["week"] for row in ov.errors})
    spec["mark"] = {"type": "line", "point": True} if weeks < SPARSE else {"type": "line", "interpolate": "monotone"}
    spec["encoding"] = {
        "x": {**_x("week"), "timeUnit": "utcyearweek"},
        "y": {"field": "share", "type": "quantitative", "title": None, "axis": {"format": ".1%"}},
        "color": {"field": "type", "type": "nominal", "title": "event", "scale": {"scheme": "set2"}},
        "tooltip": [
            {"field": "week", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": "week of"},
            {"field": "type", "type": "nominal", "title": "event"},
            {"field": "share", "type": "quantitative", "format": ".2%", "title": "sessions with it"},
        ],
    }
    return spec


def explore(series: Series, view: str, by: str) -> Spec:
    """The explore view: a line per group over time, or one bar per group."""
    spec = _base(series.label + (f" by {by.removeprefix('attr.')}" if by else ""), series.label)
    spec["data"] = {"values": series.rows}
    fmt = ".1%" if "Share" in series.label else ",.4~r"
    color = {
        "field": "group",
        "type": "nominal",
        "title": by.removeprefix("attr.") or None,
        "sort": series.groups,
        "scale": {"domain": series.groups, "scheme": "tableau10"},
    }
    if not by:
        color["legend"] = None
    tooltip = [
        {"field": "group", "type": "nominal", "title": by.removeprefix("attr.") or "group"},
        {"field": "value", "type": "quantitative", "format": fmt, "title": series.label},
        {"field": "sessions", "type": "quantitative"},
    ]
    if view == "compare":
        spec["height"] = max(HEIGHT // 2, 28 * max(1, len(series.groups)))
        spec["mark"] = {"type": "bar"}
        spec["encoding"] = {
            "y": {"field": "group", "type": "nominal", "title": None, "sort": "-x", "axis": {"labelLimit": 260}},
            "x": {"field": "value", "type": "quantitative", "title": series.label, "axis": {"format": fmt}},
            "color": {**color, "legend": None},
            "tooltip": tooltip,
        }
        return spec
    time_unit = {"day": "utcyearmonthdate", "week": "utcyearmonthdate", "month": "utcyearmonth"}[series.grain]
    spec["mark"] = {"type": "line", "point": len({r["period"] for r in series.rows}) < 40, "interpolate": "monotone"}
    spec["encoding"] = {
        "x": {"field": "period", "type": "temporal", "timeUnit": time_unit, "title": None},
        "y": {"field": "value", "type": "quantitative", "title": series.label, "axis": {"format": fmt}},
        "color": color,
        "tooltip": [{"field": "period", "type": "temporal", "timeUnit": time_unit, "title": series.grain}, *tooltip],
    }
    return spec
