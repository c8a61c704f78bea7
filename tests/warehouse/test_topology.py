"""Scale-out topology: three ingest replicas sharing one S3 bucket, one loader into ClickHouse."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest

from fixtures.ingest import IngestServer
from fixtures.objectstores import S3Server
from tallystick import demo
from tallystick.storage import open_store
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader


def _put(url: str, value: dict[str, Any]) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("PUT", "/v1/sessions", json.dumps(value).encode(), {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.slow
def test_replicas_sharing_a_bucket_load_each_session_once(
    s3_server: S3Server,
    s3_store_url: Callable[..., str],
    ingest_server: Callable[..., IngestServer],
    clickhouse_spec: str,
) -> None:
    """Sessions sprayed over 3 replicas, duplicates raced to two replicas at once: each is stored and loaded once."""
    url = s3_store_url()
    replicas = [ingest_server(apps=["demo"], storage_url=url, env=s3_server.env) for _ in range(3)]
    sessions = list(demo.generate(300, seed=13))
    sends = [(replicas[i % 3].url, s) for i, s in enumerate(sessions)]
    # Every fourth session is also sent to another replica, concurrently with the first send.
    sends += [(replicas[(i + 1) % 3].url, s) for i, s in enumerate(sessions) if i % 4 == 0]
    sends.sort(key=lambda pair: str(pair[1]["sessionId"]))  # duplicates sit next to each other: they race
    with ThreadPoolExecutor(12) as pool:
        statuses = Counter(pool.map(lambda pair: _put(*pair), sends))
    # Two first uploads racing on two replicas may both be answered 201 (the wire contract allows it:
    # the store decides); the object is still written once, which the load below proves.
    assert set(statuses) <= {201, 304} and sum(statuses.values()) == 375
    assert statuses[201] >= 300, statuses

    store = open_store(url)
    warehouse = open_warehouse(clickhouse_spec)
    try:
        stats = Loader(store, warehouse, batch_size=100, workers=2).run()
        assert (stats.loaded, stats.duplicates, stats.rejected) == (300, 0, 0)
        rows = warehouse.query('SELECT "sessionId", count(*) FROM sessions GROUP BY "sessionId"').rows
        assert {r[0] for r in rows} == {s["sessionId"] for s in sessions}
        assert {r[1] for r in rows} == {1}
        events = sum(len(s["events"] or []) for s in sessions)
        assert warehouse.query("SELECT count(*) FROM events").rows == [(events,)]
        assert Loader(store, warehouse).run().pending == 0
    finally:
        warehouse.close()
        store.close()
