"""DuckDB and ClickHouse give the same answers to every analysis, with and without filters."""

from __future__ import annotations

from typing import Any

import pytest

from tallystick.analysis import AnalysisError, Filter, Scope, run
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


# Filters as a maintainer writes them: an environment attribute (kept in the daily rollup too), one that
# only ``sessions_typed`` keeps, a number compared as text, and versions with an attribute.
SCOPES = [
    pytest.param(Scope("demo"), id="all"),
    pytest.param(Scope("demo", where=(Filter("shell", "fish"),)), id="shell=fish"),
    pytest.param(Scope("demo", where=(Filter("command", "build"),)), id="command=build"),
    pytest.param(Scope("demo", where=(Filter("exitCode", "0"),)), id="exitCode=0"),
    pytest.param(
        Scope("demo", versions=("2.0.0", "2.1.0"), where=(Filter("isCI", "false"),)), id="versions,isCI=false"
    ),
]


def _answer(warehouse: Warehouse, name: str, scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    """Summary and tables, or the refusal (a filter can leave nothing to compare: sessions with exitCode=0
    have no UnknownCommand), which must then be the same on every engine."""
    try:
        report = run(warehouse, name, scope, **params).to_dict()
    except AnalysisError as exc:
        return {"refused": type(exc).__name__, "message": str(exc)}
    return {"summary": report["summary"], "tables": report["tables"]}


@pytest.mark.parametrize("duckdb", ["duckdb_warehouse", "duckdb_rollup_warehouse"], ids=["sessions", "rollup"])
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("name", "params"), CASES)
def test_engines_agree(  # noqa: PLR0917 - the columns of one parametrized case
    name: str,
    params: dict[str, Any],
    scope: Scope,
    duckdb: str,
    clickhouse_warehouse: Warehouse,
    request: pytest.FixtureRequest,
) -> None:
    """Summary and tables are identical on DuckDB (from ``sessions``, and from its derived tables) and on
    ClickHouse 18.16, for every analysis, filtered or not."""
    duckdb_warehouse: Warehouse = request.getfixturevalue(duckdb)
    if duckdb == "duckdb_rollup_warehouse":
        assert rollup.is_fresh(duckdb_warehouse, "'demo'")
    on_duckdb = _answer(duckdb_warehouse, name, scope, params)
    assert _answer(clickhouse_warehouse, name, scope, params) == on_duckdb
    if all(f.attribute != "exitCode" for f in scope.where):  # sessions that ended well have no error outcome
        assert "refused" not in on_duckdb, on_duckdb
