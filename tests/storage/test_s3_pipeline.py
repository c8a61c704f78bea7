"""The pipeline end to end on S3 (moto): sessions in over HTTP to two ingest replicas, out in DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fixtures.ingest import IngestServer
from tallystick import demo
from tallystick.storage import open_store
from tallystick.storage.layout import PREFIX, parse_key
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader


def test_sessions_flow_from_http_through_s3_to_duckdb(
    ingest_server: Callable[..., IngestServer], s3_store_url: Callable[..., str], tmp_path: Path
) -> None:
    """Two replicas share one bucket: every session is stored once (201 once, 304 after) and loads once."""
    url = s3_store_url("tallystick")
    first = ingest_server(apps=["demo"], storage_url=url)
    second = ingest_server(apps=["demo"], storage_url=url)
    sessions = list(demo.generate(200, seed=5))
    assert demo.send(first.url, sessions[:120]) == {201: 120}
    assert demo.send(second.url, sessions[80:]) == {304: 40, 201: 80}
    assert demo.send(first.url, sessions[190:]) == {304: 10}

    store = open_store(url)
    keys = [info.key for info in store.list(PREFIX)]
    assert sorted(parsed[2] for key in keys if (parsed := parse_key(key))) == sorted(s["sessionId"] for s in sessions)

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        stats = Loader(store, warehouse).run()
        assert (stats.loaded, stats.rejected) == (200, 0)
        ids = {row[0] for row in warehouse.query('SELECT "sessionId" FROM sessions').rows}
        assert ids == {s["sessionId"] for s in sessions}
        n_events = sum(len(s["events"]) for s in sessions)
        assert warehouse.query("SELECT count(*) FROM events").rows == [(n_events,)]
        again = Loader(open_store(url), warehouse).run()
        assert (again.pending, again.loaded) == (0, 0)
    finally:
        warehouse.close()
        store.close()
