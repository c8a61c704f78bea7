"""Demo data with planted truths, generated once per test session and loaded into the warehouses."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tallystick import demo
from tallystick.schema import Session
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.memory import MemoryStore
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader

END = datetime(2025, 6, 30, tzinfo=UTC)
DAYS = 180
SESSIONS = 60_000
USERS = 1_200
SEED = 11


def load(warehouse: Warehouse, sessions: list[dict[str, Any]]) -> None:
    """Through storage and the real loader, skipping HTTP (which would overwrite the demo's ingestionTime)."""
    store = MemoryStore()
    decoder = msgspec.json.Decoder(Session)
    for s in sessions:
        session = decoder.decode(json.dumps(s))
        store.put_if_absent(session_key(session), encode_session(session))
    stats = Loader(store, warehouse).run()
    assert stats.loaded == len(sessions), stats


@pytest.fixture(scope="session")
def demo_sessions() -> list[dict[str, Any]]:
    return list(demo.generate(SESSIONS, users=USERS, days=DAYS, seed=SEED, end=END, arrivals=True))


def _duckdb(
    sessions: list[dict[str, Any]], factory: pytest.TempPathFactory, name: str, *, refresh: bool
) -> Iterator[Warehouse]:
    from tallystick.warehouse import rollup

    path: Path = factory.mktemp("analysis") / name
    warehouse = DuckDBWarehouse(path)
    load(warehouse, sessions)
    if refresh:
        rollup.refresh(warehouse)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="session")
def duckdb_warehouse(
    demo_sessions: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    yield from _duckdb(demo_sessions, tmp_path_factory, "demo.duckdb", refresh=False)


@pytest.fixture(scope="session")
def duckdb_rollup_warehouse(
    demo_sessions: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """The demo data on DuckDB with its derived tables refreshed (``warehouse/rollup.py``), as after a load."""
    yield from _duckdb(demo_sessions, tmp_path_factory, "demo-rollup.duckdb", refresh=True)


@pytest.fixture(scope="session")
def clickhouse_warehouse(demo_sessions: list[dict[str, Any]], clickhouse_server: Any) -> Iterator[Warehouse]:
    from tallystick.warehouse import open_warehouse

    warehouse = open_warehouse(clickhouse_server.spec(f"analysis_{os.getpid()}"))
    load(warehouse, demo_sessions)
    yield warehouse
    drop = getattr(warehouse, "drop_database", None)
    if drop:
        drop()
    warehouse.close()


@pytest.fixture(scope="session", params=["duckdb", "clickhouse"])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """The demo data on each engine: every planted-truth test runs on DuckDB and on ClickHouse 18.16."""
    return request.getfixturevalue(f"{request.param}_warehouse")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def auto_update_day() -> date:
    return demo.auto_update_date(END - timedelta(days=DAYS), DAYS).date()
