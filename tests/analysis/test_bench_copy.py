"""``bench/analysis.py`` times ClickHouse on the rows the loader would have written there."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from tallystick.warehouse import open_warehouse
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.tables import Table, tables

BENCH = Path(__file__).resolve().parents[2] / "bench" / "analysis.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_analysis", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(warehouse: Warehouse, table: Table) -> tuple[Any, ...]:
    """Rows and an order-independent sum of row hashes over every column's text (NULL as \\N)."""
    values = ", ".join(f"ifNull(toString(\"{c}\"), '\\\\N')" for c in table.names)
    return warehouse.query(f'SELECT count(), sum(cityHash64({values})) FROM "{table.name}"').rows[0]


def test_bench_copy_holds_what_the_loader_wrote(
    duckdb_warehouse: Warehouse, clickhouse_warehouse: Warehouse, clickhouse_server: Any, tmp_path: Path
) -> None:
    """The bench's copy of the demo's DuckDB tables (in several slices) has, row for row and column for
    column, what the loader wrote into ClickHouse 18.16 from the same sessions."""
    target = open_warehouse(clickhouse_server.spec(f"bench_copy_{os.getpid()}"))
    try:
        _bench().copy_to_clickhouse(duckdb_warehouse, target, tmp_path, chunk_rows=25_000, progress=False)
        digests = [(_digest(target, t), _digest(clickhouse_warehouse, t)) for t in tables()]
        assert digests[0][0][0] > 2 * 25_000  # sessions came in several slices
        for table, (copied, loaded) in zip(tables(), digests, strict=True):
            assert copied == loaded, table.name
    finally:
        target.drop_database()  # type: ignore[attr-defined]
        target.close()
