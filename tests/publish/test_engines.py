"""The same site from every warehouse the analyses support: ClickHouse 18.16, chDB and DuckDB with its derived
tables fresh (the analyses' faster paths) write what DuckDB writes from its base tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from publish.conftest import CONFIG, NOW, load
from tallystick.publish import parse_config, publish
from tallystick.warehouse import open_warehouse, rollup


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["duckdb-rollup", "clickhouse", "chdb"])
def test_every_engine_publishes_the_same_files(
    request: pytest.FixtureRequest,
    engine: str,
    planted_sessions: list[dict[str, Any]],
    planted_site: Path,
    tmp_path: Path,
) -> None:
    """Every file of the site (page, JSON, CSV) is byte for byte the DuckDB one."""
    if engine == "duckdb-rollup":  # the derived tables fresh, as after `tallystick load`: analyses read those
        warehouse = open_warehouse(tmp_path / "warehouse.duckdb")
    else:
        warehouse = open_warehouse(request.getfixturevalue(f"{engine}_spec"))
    site = tmp_path / "site"
    try:
        load(warehouse, planted_sessions)
        if engine == "duckdb-rollup":
            rollup.refresh(warehouse)
        publish(warehouse, parse_config(CONFIG), site, now=NOW)
    finally:
        warehouse.close()
    expected = sorted(p.relative_to(planted_site) for p in planted_site.rglob("*") if p.is_file())
    assert sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file()) == expected
    for name in expected:
        assert (site / name).read_text() == (planted_site / name).read_text(), name
