"""DuckDB and ClickHouse give the same answers to every analysis."""

from __future__ import annotations

from typing import Any

import pytest

from tallystick.analysis import Scope, run
from tallystick.warehouse import rollup
from tallystick.warehouse.base import Warehouse

CASES = [
    pytest.param("adoption", {}, id="adoption"),
    pytest.param("nudges", {}, id="nudges"),
    pytest.param("spans", {"span": "BuildImage", "attribute": "buildKit"}, id="spans"),
    pytest.param("spans", {"span": "BuildImage", "attribute": "shell"}, id="spans-session-attribute"),
    pytest.param("event-rate", {"event": "UnknownCommand"}, id="event-rate"),
    pytest.param("breakdown", {"attribute": "shell", "every": "week"}, id="breakdown"),
    pytest.param("feature-impact", {"feature": "tabCompletion", "outcome": "UnknownCommand"}, id="feature-impact"),
    pytest.param("feature-impact", {"feature": "tabCompletion", "exit_code": 1}, id="feature-impact-exit-code"),
    pytest.param("common-factor", {"event": "ContainerStartFailed"}, id="common-factor"),
    pytest.param("common-factor", {"exit_code": 3}, id="common-factor-exit-code"),
    pytest.param("distribution", {"attribute": "projectTasks"}, id="distribution"),
    pytest.param("timing", {}, id="timing"),
    pytest.param("completeness", {}, id="completeness"),
]


@pytest.mark.parametrize("duckdb", ["duckdb_warehouse", "duckdb_rollup_warehouse"], ids=["sessions", "rollup"])
@pytest.mark.parametrize(("name", "params"), CASES)
def test_engines_agree(
    name: str, params: dict[str, Any], duckdb: str, clickhouse_warehouse: Warehouse, request: pytest.FixtureRequest
) -> None:
    """Summary and tables are identical on DuckDB (from ``sessions``, and from its derived tables) and on
    ClickHouse 18.16."""
    duckdb_warehouse: Warehouse = request.getfixturevalue(duckdb)
    if duckdb == "duckdb_rollup_warehouse":
        assert rollup.is_fresh(duckdb_warehouse, "'demo'")
    on_duckdb = run(duckdb_warehouse, name, Scope("demo"), **params).to_dict()
    on_clickhouse = run(clickhouse_warehouse, name, Scope("demo"), **params).to_dict()
    assert on_clickhouse["summary"] == on_duckdb["summary"]
    assert on_clickhouse["tables"] == on_duckdb["tables"]
