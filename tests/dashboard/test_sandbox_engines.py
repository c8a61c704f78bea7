"""The SQL page's sandbox on DuckDB, the ClickHouse 18.16 server and chDB: one read-only query, no
files, no network, no writes; each refusal a 400 with one line, and the data as it was.

The dashboard alone (``create_dashboard``) serves each engine's warehouse in this process
(chDB allows one session per process), on a real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.common import wait_until
from sessions import session
from tallystick import dashboard
from tallystick.server.run import bind, make_server, url_of
from tallystick.storage.local import LocalStore
from warehouse.conftest import load_all, put


@pytest.fixture
def site(warehouse_spec: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(engine, URL) of the dashboard over a warehouse holding one session."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    put(store, session())
    load_all(store, warehouse_spec)
    sock = bind("127.0.0.1", 0)
    server = make_server(dashboard.create_dashboard(warehouse_spec), sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn start")
    engine = warehouse_spec.split("://", maxsplit=1)[0] if "://" in warehouse_spec else "duckdb"
    try:
        yield engine, url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_sql(url: str, sql: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url + "/api/sql", json.dumps({"sql": sql}).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def refused(url: str, sql: str) -> str:
    status, body = run_sql(url, sql)
    assert status == 400, (sql, status, body)
    message = str(body["message"])
    assert "\n" not in message.strip() or message.startswith(("Parser Error", "Binder Error")), message
    return message


def test_sql_page_sandbox_on_every_engine(
    site: tuple[str, str], tmp_path: Path, counting_http_server: tuple[str, list[str]]
) -> None:
    """Writes, a second statement, files and URLs are refused on each engine; a query answers; nothing changed."""
    engine, url = site
    count = "SELECT count(*) AS n FROM sessions"
    status, answer = run_sql(url, count)
    assert (status, answer["rows"]) == (200, [[1]])
    files = tmp_path / "files"
    files.mkdir()
    secret = files / "secret.csv"
    secret.write_text("a\nTOPSECRET42\n")
    web, hits = counting_http_server
    writes = [
        "INSERT INTO sessions SELECT * FROM sessions",
        "DROP TABLE events",
        "SELECT 1; DROP TABLE events",
        "SELECT 1 -- x\n; INSERT INTO sessions SELECT * FROM sessions",
    ]
    if engine == "duckdb":
        reads = [
            f"SELECT * FROM read_csv('{secret}')",
            f"COPY sessions TO '{files}/out.csv'",
            f"SELECT * FROM read_csv('{web}/x.csv')",
            "INSTALL httpfs",
        ]
    else:
        reads = [
            f"SELECT * FROM file('{secret}', 'TSV', 'a String')",
            f"SELECT * FROM (SELECT * FROM file('{secret}', 'TSV', 'a String'))",
            f"SELECT * FROM url('{web}/x.csv', 'CSV', 'a String')",
            f"INSERT INTO FUNCTION file('{files}/out.tsv', 'TSV', 'a String') VALUES ('x')",
            "SET readonly = 0",
        ]
    for sql in writes + reads:
        assert "TOPSECRET42" not in refused(url, sql), sql
    assert run_sql(url, count)[1]["rows"] == [[1]]
    assert run_sql(url, "SELECT count(*) AS n FROM events")[0] == 200
    assert sorted(p.name for p in files.iterdir()) == ["secret.csv"]
    assert hits == []
