"""The daily rollup: refreshed after each load, idempotent, never used stale, and the same answers as ``sessions``."""

from __future__ import annotations

from pathlib import Path

from tallystick import demo
from tallystick.analysis import Filter, Scope, run
from tallystick.storage.local import LocalStore
from tallystick.warehouse import rollup
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put


def _loaded(tmp_path: Path, n: int = 400) -> DuckDBWarehouse:
    store = LocalStore(tmp_path / "store")
    for s in demo.generate(n, users=40, seed=5):
        put(store, s)
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb")
    Loader(store, warehouse, workers=0).run()
    assert not rollup.is_fresh(warehouse, "'demo'")  # loading alone leaves derived tables to their step
    rollup.refresh(warehouse)
    return warehouse


def test_refresh_after_a_load_is_fresh_and_idempotent(tmp_path: Path) -> None:
    """After a load and a refresh the rollup is fresh, a second refresh redoes no day, and it counts every session."""
    warehouse = _loaded(tmp_path)
    assert rollup.is_fresh(warehouse, "'demo'")
    assert rollup.refresh(warehouse) == 0
    total = warehouse.query(f"SELECT sum(sessions) FROM {rollup.TABLE}").rows[0][0]
    assert total == warehouse.query("SELECT count(*) FROM sessions").rows[0][0]
    warehouse.close()


def test_stale_after_a_delete_until_refreshed(tmp_path: Path) -> None:
    """Deleting sessions makes the rollup stale (analyses stop using it); a refresh redoes only that day."""
    warehouse = _loaded(tmp_path)
    day = warehouse.query('SELECT min(CAST("sessionStartTime" AS DATE)) FROM sessions').rows[0][0]
    warehouse.delete_sessions(f"CAST(\"sessionStartTime\" AS DATE) = DATE '{day}'")
    assert not rollup.is_fresh(warehouse, "'demo'")
    assert rollup.refresh(warehouse) == 1
    assert rollup.is_fresh(warehouse, "'demo'")
    warehouse.close()


CASES = [
    ("adoption", {}),
    ("nudges", {}),
    ("breakdown", {"attribute": "shell"}),
    ("breakdown", {"attribute": "shell", "every": "week"}),
    ("breakdown", {"attribute": "pythonVersion", "every": "month"}),
    ("breakdown", {"attribute": "ciSystem"}),
    ("feature-impact", {"feature": "tabCompletion", "outcome": "UnknownCommand"}),
    ("distribution", {"attribute": "projectTasks"}),
    ("distribution", {"attribute": "projectTasks", "per": "user"}),
]


def test_analyses_answer_alike_with_and_without_the_rollup(tmp_path: Path) -> None:
    """Analyses that read the rollup give what they give from ``sessions`` (rollup dropped), filters included."""
    warehouse = _loaded(tmp_path, 1500)
    scopes = [
        Scope("demo"),
        Scope("demo", where=(Filter("shell", "fish"),)),
        Scope("demo", where=(Filter("command", "build"),)),
    ]
    assert rollup.is_fresh(warehouse, "'demo'")
    assert {"shell", "tabCompletion", "projectTasks", "command"} <= rollup.typed_attributes(warehouse)
    with_rollup = [run(warehouse, name, s, **p) for name, p in CASES for s in scopes]
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    without = [run(warehouse, name, s, **p) for name, p in CASES for s in scopes]
    assert [(r.summary, r.tables) for r in with_rollup] == [(r.summary, r.tables) for r in without]
    warehouse.close()


def test_a_new_attribute_gets_a_column_on_every_day(tmp_path: Path) -> None:
    """An attribute first seen in a later load gets its own column, and every day is redone to fill it."""
    warehouse = _loaded(tmp_path)
    days = warehouse.query(f"SELECT count(*) FROM {rollup.DAYS_TABLE}").rows[0][0]
    warehouse.query(
        """INSERT INTO sessions SELECT * REPLACE ('new-' || "sessionId" AS "sessionId",
        json_merge_patch(attributes, '{"newThing": 7}') AS attributes) FROM sessions LIMIT 1"""
    )
    assert rollup.refresh(warehouse) == days
    assert "newThing" in rollup.typed_attributes(warehouse)
    assert rollup.is_fresh(warehouse, "'demo'")
    filled = warehouse.query(f'SELECT count("{rollup.TYPED_PREFIX}newThing") FROM {rollup.TYPED_TABLE}').rows[0][0]
    assert filled == 1
    warehouse.close()
