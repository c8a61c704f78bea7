"""A tool that records its exit status but no error events (docs/instrument-your-tool.md), in the dashboard:
its analyses ask what ``tallystick report`` asks, and the overview's error chart draws its failing exit codes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from analysis.conftest import load
from analysis.test_defaults import APP, _argparse_tool
from tallystick.analysis import get
from tallystick.dashboard.analyses import analyse
from tallystick.dashboard.overview import overview
from tallystick.dashboard.reader import Reader
from tallystick.warehouse.duckdb import DuckDBWarehouse


@pytest.mark.parametrize("name", ["event-rate", "common-factor"])
def test_a_tool_without_error_events_is_asked_about_its_failing_exit_code(tmp_path: Path, name: str) -> None:
    """No error-like event: the page shows exitCode=2, not UpdateNudgeShown; a chosen event is kept."""
    path = tmp_path / "w.duckdb"
    warehouse = DuckDBWarehouse(path)
    load(warehouse, _argparse_tool())
    warehouse.close()
    with Reader(path).connect() as con:
        first = analyse(con, get(name), APP, QueryParams(""))
        chosen = analyse(con, get(name), APP, QueryParams("event=UnknownCommand"))
    assert first.problem == "" and first.params.get("exit_code") == "2" and not first.params.get("event")
    assert first.report is not None and "exitCode=2" in first.report.headline
    assert chosen.params["event"] == "UnknownCommand" and not chosen.params.get("exit_code")


def test_the_overview_draws_the_failing_exit_codes_of_a_tool_without_error_events(tmp_path: Path) -> None:
    """No error-like event: the errors chart has a line per failing exit code, each week's share of sessions."""
    sessions = _argparse_tool()
    path = tmp_path / "w.duckdb"
    warehouse = DuckDBWarehouse(path)
    load(warehouse, sessions)
    warehouse.close()
    with Reader(path).connect() as con:
        ov = overview(con, APP)
    assert {row["type"] for row in ov.errors} == {"exitCode=1", "exitCode=2"}
    weeks: dict[str, list[int]] = {}  # Monday of the week: [sessions, sessions with exitCode 2]
    for s in sessions:
        day = date.fromisoformat(s["sessionStartTime"][:10])
        counts = weeks.setdefault((day - timedelta(days=day.weekday())).isoformat(), [0, 0])
        counts[0] += 1
        counts[1] += s["attributes"]["exitCode"] == 2
    drawn = {row["week"][:10]: row["share"] for row in ov.errors if row["type"] == "exitCode=2"}
    assert drawn == {week: round(twos / n, 5) for week, (n, twos) in weeks.items()}
