"""The same sessions in DuckDB, on the ClickHouse server and in chDB: every dashboard page shows the same numbers.

One store of demo sessions is loaded by the load cycle into a DuckDB file and into a
database on the real ClickHouse 18.16 server; the dashboard alone (``create_dashboard``,
what ``tallystick dashboard`` serves) runs over each. Every page is opened in Chromium on
both and its visible text compared; the data behind every chart (``/api/...``) is compared
too, numbers to four significant digits, on chDB (ClickHouse 26.x in this process) as well.
"""

from __future__ import annotations

import json
import math
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.conftest import fill_demo
from fixtures.browser import WatchedPage
from fixtures.clickhouse import ClickHouseServer
from fixtures.common import wait_until
from tallystick import dashboard
from tallystick.analysis import ANALYSES
from tallystick.server.run import bind, make_server, url_of
from tallystick.storage.local import LocalStore
from tallystick.warehouse import cycle, open_warehouse

SESSIONS = 1200
PAGES = [
    "/",
    "/sql",
    "/explore?app=demo&by=attr.shell",
    "/explore?app=demo&by=version&metric=users&view=compare",
    "/analyses",
    *(f"/analyses/{a.name}?app=demo" for a in ANALYSES),
]
APIS = [
    "/api/overview?app=demo",
    "/api/explore?app=demo&by=attr.shell",
    "/api/explore?app=demo&by=version&metric=durationP50",
    "/api/explore?app=demo&metric=users&view=compare&by=attr.operatingSystem",
    *(f"/api/analyses/{a.name}?app=demo" for a in ANALYSES),
]


def _serve(spec: str) -> Iterator[str]:
    app = dashboard.create_dashboard(spec)
    sock = bind("127.0.0.1", 0)
    server = make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn start")
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def urls(
    tmp_path_factory: pytest.TempPathFactory, clickhouse_server: ClickHouseServer, chdb_dir: Path
) -> Iterator[dict[str, str]]:
    """The dashboard over the same sessions on each engine: engine → base URL."""
    root = tmp_path_factory.mktemp("engines")
    store = LocalStore(root / "sessions", fsync=False)
    fill_demo(store, SESSIONS, seed=11)
    specs = {
        "duckdb": str(root / "warehouse.duckdb"),
        "clickhouse": clickhouse_server.spec("dashboard_engines"),
        "chdb": f"chdb://{chdb_dir}?database=dashboard_engines",
    }
    for spec in specs.values():
        warehouse = open_warehouse(spec)
        try:
            cycle.load(store, warehouse)
        finally:
            warehouse.close()
    servers = {name: _serve(spec) for name, spec in specs.items()}
    try:
        yield {name: next(server) for name, server in servers.items()}
    finally:
        for server in servers.values():
            next(server, None)
        for name in ("clickhouse", "chdb"):
            warehouse = open_warehouse(specs[name])
            warehouse.drop_database()  # type: ignore[attr-defined]
            warehouse.close()


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return 0.0 if value == 0 or not math.isfinite(value) else float(f"{value:.4g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items() if k not in ("ms", "seconds", "elapsed")}
    return value


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{url}: {exc.code} {exc.read().decode()[:2000]}") from None


@pytest.mark.parametrize("path", APIS)
def test_chart_data_is_the_same_on_every_engine(urls: dict[str, str], path: str) -> None:
    """The numbers behind each chart agree between DuckDB and ClickHouse."""
    answers = {name: _rounded(_get(url + path)) for name, url in urls.items()}
    assert answers["clickhouse"] == answers["duckdb"]
    assert answers["chdb"] == answers["duckdb"]


def _numbers(text: str) -> list[str]:
    """The numbers a page shows, in order (timings aside), to compare across engines."""
    text = re.sub(r"\d[\d,.]*\s*ms\b", "", text)
    return re.findall(r"-?\d[\d,]*(?:\.\d+)?%?", text)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_shows_the_same_numbers(urls: dict[str, str], browser_page: WatchedPage, path: str) -> None:
    """Opened in Chromium, each page shows the same numbers on DuckDB and ClickHouse, without errors."""
    shown = {}
    for name in ("duckdb", "clickhouse"):  # chDB's numbers: the chart data test above
        url = urls[name]
        page = browser_page.page
        page.goto(url + path)
        page.wait_for_selector("body[data-ready=true]")
        text = page.inner_text("main")
        shown[name] = _numbers(text) if path != "/analyses" else text  # the list: names and questions only
        assert browser_page.problems() == [], name
    assert shown["duckdb"], "the page should show something"
    assert shown["clickhouse"] == shown["duckdb"]


def test_sql_page_answers_alike_on_every_engine(urls: dict[str, str]) -> None:
    """The SQL page's API runs a query both engines understand and gives the same rows."""
    sql = 'SELECT "applicationVersion" AS v, count(*) AS n FROM sessions GROUP BY v ORDER BY n DESC, v'
    answers = {}
    for name, url in urls.items():
        request = urllib.request.Request(
            url + "/api/sql", json.dumps({"sql": sql}).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        answers[name] = (answer["columns"], answer["rows"])
    assert answers["duckdb"][1], "the query should give rows"
    assert answers["clickhouse"] == answers["duckdb"] == answers["chdb"]
