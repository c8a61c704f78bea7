"""The overview's charts for a new application: a few sessions still draw something to see."""

from __future__ import annotations

import pytest

from tallystick.dashboard import charts
from tallystick.dashboard.overview import Overview


def _new_app() -> Overview:
    """Three sessions of one user on one day, no error events."""
    ov = Overview(apps=[("newtool", 3)], app="newtool")
    ov.daily = [{"day": "2026-12-03", "sessions": 3, "users": 1, "complete": 1.0}]
    ov.versions = [{"week": "2026-11-30", "version": "0.1.0", "sessions": 3}]
    ov.version_order = ["0.1.0"]
    return ov


def test_few_days_are_drawn_as_points() -> None:
    """With fewer than two weeks of days, the activity lines carry a point per day (one day is no line)."""
    lines = [layer for layer in charts.activity(_new_app())["layer"] if layer["mark"]["type"] == "line"]
    assert lines and all(layer["mark"]["point"] for layer in lines)


def test_one_week_of_versions_is_a_bar() -> None:
    """An area over one week has no width: the first weeks are stacked bars."""
    assert charts.versions(_new_app())["mark"]["type"] == "bar"


def test_no_errors_says_so() -> None:
    """Without error events the chart says so in words, not with a lone 0.0 % tick and an empty legend."""
    spec = charts.errors(_new_app())
    assert spec["mark"]["type"] == "text"
    assert spec["data"]["values"] == [{"message": "No error events in this period"}]


@pytest.mark.parametrize(("series", "scheme"), [(10, None), (12, "tableau20")], ids=["ten", "twelve"])
def test_an_analysis_line_chart_gives_each_series_its_own_colour(series: int, scheme: str | None) -> None:
    """Past ten series (adoption's twelve versions) the palette has twenty colours, so no two lines share one."""
    from tallystick.analysis.report import Table, line_chart

    table = Table("t", ["day", "share", "version"], [["2026-01-01", 0.1, f"1.{i}.0"] for i in range(series)])
    spec = line_chart(table, "day", "share", "version", title="t")
    layer = spec.get("encoding") or spec["layer"][0]["encoding"]
    assert layer["color"].get("scale", {}).get("scheme") == scheme


def test_error_types_are_lines_not_stacked_bars() -> None:
    """Each error type is its own line: stacked shares would add a session with two types twice."""
    from datetime import date

    ov = _new_app()
    ov.errors = [
        {"week": date(2026, 1, 5 + 7 * w).isoformat(), "type": t, "share": 0.02} for w in range(3) for t in ("A", "B")
    ]
    spec = charts.errors(ov)
    assert spec["mark"]["type"] == "line"
    assert "stack" not in spec["encoding"]["y"]
