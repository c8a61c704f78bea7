"""The same site from every warehouse the analyses support: ClickHouse 18.16 and chDB write what DuckDB writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from publish.conftest import CONFIG, NOW, load
from tallystick.publish import parse_config, publish
from tallystick.warehouse import open_warehouse


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["clickhouse", "chdb"])
def test_every_engine_publishes_the_same_files(
    request: pytest.FixtureRequest,
    engine: str,
    planted_sessions: list[dict[str, Any]],
    planted_site: Path,
    tmp_path: Path,
) -> None:
    """Every file of the site (page, JSON, CSV) is byte for byte the DuckDB one."""
    warehouse = open_warehouse(request.getfixturevalue(f"{engine}_spec"))
    try:
        load(warehouse, planted_sessions)
        publish(warehouse, parse_config(CONFIG), tmp_path, now=NOW)
    finally:
        warehouse.close()
    expected = sorted(p.relative_to(planted_site) for p in planted_site.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()) == expected
    for name in expected:
        assert (tmp_path / name).read_text() == (planted_site / name).read_text(), name
