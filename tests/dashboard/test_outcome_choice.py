"""The dashboard's first visit to an error analysis asks what ``tallystick report`` asks (``analysis.defaults``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from analysis.conftest import load
from analysis.test_defaults import APP, _argparse_tool
from tallystick.analysis import get
from tallystick.dashboard.analyses import analyse
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
