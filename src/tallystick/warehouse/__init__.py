"""Warehouses (DuckDB embedded; ClickHouse for scale) and the loader that fills them."""

from tallystick.warehouse.base import (
    LoadedObject,
    QueryError,
    QueryResult,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)

__all__ = [
    "LoadedObject",
    "QueryError",
    "QueryResult",
    "Warehouse",
    "WarehouseError",
    "WarehouseUnavailable",
]
