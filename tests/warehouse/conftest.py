"""Warehouse tests: a local store and a warehouse of each engine per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessions import body
from tallystick.schema import parse_session
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Warehouse, open_warehouse


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "sessions", fsync=False)


@pytest.fixture
def warehouse(warehouse_spec: str) -> Iterator[Warehouse]:
    """The same tests on DuckDB, ClickHouse 18.16 and chDB (ClickHouse 26.x)."""
    w = open_warehouse(warehouse_spec)
    yield w
    w.close()


def put(store: LocalStore, value: dict[str, object]) -> str:
    """Store one session the way the ingest service does; its key."""
    parsed = parse_session(body(value))
    key = session_key(parsed)
    assert store.put_if_absent(key, encode_session(parsed))
    return key


def load_all(store: LocalStore, spec: str | Path) -> None:
    """Create the warehouse ``spec`` names (if new) and load everything in ``store`` into it."""
    from tallystick.warehouse.loader import Loader

    warehouse = open_warehouse(spec)
    try:
        warehouse.ensure_schema()
        Loader(store, warehouse).run()
    finally:
        warehouse.close()
