"""The daily rollup: refreshed by the loader, idempotent, never used stale, and the same answers as ``sessions``."""

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
    return warehouse


def test_loader_refreshes_and_refresh_is_idempotent(tmp_path: Path) -> None:
    """After a load the rollup is fresh, a second refresh redoes no day, and it counts every session."""
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


def test_adoption_answers_alike_with_and_without_the_rollup(tmp_path: Path) -> None:
    """Adoption from the rollup equals adoption from ``sessions`` (rollup dropped), filters included."""
    warehouse = _loaded(tmp_path, 1500)
    scopes = [Scope("demo"), Scope("demo", where=(Filter("shell", "fish"),))]
    with_rollup = [run(warehouse, "adoption", s).tables for s in scopes]
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    without = [run(warehouse, "adoption", s).tables for s in scopes]
    assert with_rollup == without
    warehouse.close()
