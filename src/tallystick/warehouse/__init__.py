"""Warehouses (DuckDB embedded; ClickHouse for scale) and the loader that fills them."""

from __future__ import annotations

from pathlib import Path

from tallystick.warehouse.base import (
    Batch,
    LoadedObject,
    Queryable,
    QueryError,
    QueryResult,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)
from tallystick.warehouse.sandbox import Limits, Refused


def open_warehouse(spec: str | Path, *, read_only: bool = False, sandbox: Limits | None = None) -> Warehouse:
    """The warehouse ``spec`` names: a DuckDB file path (or ``duckdb:///path``), ``clickhouse://host:8123/db``
    (``clickhouses://`` over TLS) or ``chdb:///dir`` (embedded ClickHouse).

    With ``sandbox``, every query runs inside the SQL sandbox (``tallystick.warehouse.sandbox``):
    one read-only statement, no file or network access, within the limits given."""
    text = str(spec)
    if text.startswith(("clickhouse://", "clickhouses://", "chdb://")):
        from tallystick.warehouse.clickhouse import open_clickhouse

        return open_clickhouse(text, sandbox)
    if text.startswith("duckdb://"):
        text = text.removeprefix("duckdb://")
    elif "://" in text:
        raise WarehouseUnavailable(
            f"unsupported warehouse {text!r}: give a DuckDB file path, clickhouse://host:8123/database or chdb:///dir"
        )
    from tallystick.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(Path(text).expanduser(), read_only=read_only, limits=sandbox)


__all__ = [
    "Batch",
    "Limits",
    "LoadedObject",
    "QueryError",
    "QueryResult",
    "Queryable",
    "Refused",
    "Warehouse",
    "WarehouseError",
    "WarehouseUnavailable",
    "open_warehouse",
]
