"""Event and span types with '-', '_', '.' and ':' (as Batect sends) work in every analysis and chart."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.conftest import load
from batect_sessions import batect_session
from tallystick.analysis import ANALYSES, Scope, run
from tallystick.analysis.render import write_json, write_text
from tallystick.warehouse import Warehouse, open_warehouse, rollup
from tallystick.warehouse.duckdb import DuckDBWarehouse

PARAMS: dict[str, dict[str, Any]] = {
    "nudges": {"event": "some-event"},
    "spans": {"span": "some-span", "attribute": "isCI"},
    "event-rate": {"event": "docker:pull.retry"},
    "breakdown": {"attribute": "operatingSystem"},
    "feature-impact": {"feature": "isCI", "outcome": "docker:pull.retry"},
    "common-factor": {"event": "some-event"},
    "distribution": {"attribute": "consoleWidth"},
    "timing": {"span": "some-span"},
}
NAMES = {
    "nudges": "some-event",
    "spans": "some-span",
    "event-rate": "docker:pull.retry",
    "feature-impact": "docker:pull.retry",
    "common-factor": "some-event",
    "timing": "some-span",
}


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def batect_warehouse(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """Batect-shaped sessions on DuckDB (derived tables refreshed) and on ClickHouse 18.16."""
    sessions = [batect_session(i, errors=i % 2, frames=20) for i in range(120)]
    if request.param == "duckdb":
        warehouse: Warehouse = DuckDBWarehouse(tmp_path_factory.mktemp("batect") / "w.duckdb")
        load(warehouse, sessions)
        rollup.refresh(warehouse)
    else:
        server = request.getfixturevalue("clickhouse_server")
        warehouse = open_warehouse(server.spec(f"typenames_{os.getpid()}"))
        load(warehouse, sessions)
    yield warehouse
    drop = getattr(warehouse, "drop_database", None)
    if drop:
        drop()
    warehouse.close()


def test_every_analysis_covers_the_parameters_here() -> None:
    """A new analysis that takes a type must be added to this test."""
    takes_type = {a.name for a in ANALYSES if {p.name for p in a.params} & {"event", "span", "outcome"}}
    assert takes_type <= set(NAMES)


@pytest.mark.parametrize("name", [a.name for a in ANALYSES])
def test_analysis_runs_and_reports_on_punctuated_type_names(name: str, batect_warehouse: Warehouse) -> None:
    """Each analysis answers for hyphenated, dotted and colon'd types; the name shows in text and JSON."""
    report = run(batect_warehouse, name, Scope(app="batect"), **PARAMS.get(name, {}))
    text, data = io.StringIO(), io.StringIO()
    write_text(report, text)
    write_json(report, data)
    if name in NAMES:
        assert NAMES[name] in text.getvalue()
        assert NAMES[name] in data.getvalue()


@pytest.mark.parametrize("name", ["timing", "event-rate", "nudges"])
def test_charts_draw_punctuated_type_names(name: str, batect_warehouse: Warehouse, tmp_path: Path) -> None:
    """The Vega-Lite chart renders (no field lookup breaks on '.' or ':'), showing the type's name."""
    from tallystick.analysis.render import write_chart

    report = run(batect_warehouse, name, Scope(app="batect"), **PARAMS[name])
    if report.chart is None:
        pytest.fail(f"{name} has no chart")
    svg = write_chart(report, tmp_path / "chart.svg").read_text()
    assert "<svg" in svg
    if name == "timing":
        assert "some-span" in svg
