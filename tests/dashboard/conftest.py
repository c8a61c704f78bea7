"""A real ``tallystick up``-shaped app (ingest + dashboard) on 127.0.0.1 over demo data.

The demo sessions go straight into storage (no HTTP, for speed); the hostile session of
the XSS test goes through the real ingest API; the loader then fills the DuckDB file
under the same lock the dashboard reads with, as in ``tallystick up``.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures.common import wait_until
from tallystick import dashboard, demo
from tallystick.schema import session_from_tree
from tallystick.server.app import create_app
from tallystick.server.config import ServerConfig
from tallystick.server.run import bind, make_server, url_of
from tallystick.storage import Store
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader

DEMO_SESSIONS = 3000
PAYLOADS = (
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '"><svg onload="window.__pwned=3">',
    "javascript:window.__pwned=4",
    "{{7*7}} ${7*7} &amp; &lt;b&gt;",
)
RENDER_TIMES: dict[str, float] = {}


@dataclass
class Served:
    """A running app: its URL, storage, warehouse file, and a way to load new sessions."""

    url: str
    host: str
    port: int
    store: Store
    warehouse: Path
    token: str | None = None
    server: Any = field(default=None, repr=False)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def load(self) -> None:
        """One loader cycle, holding the warehouse lock as ``tallystick up`` does."""
        with dashboard.lock_for(self.warehouse):
            warehouse = open_warehouse(self.warehouse)
            try:
                Loader(self.store, warehouse).run()
            finally:
                warehouse.close()


def fill_demo(store: Store, sessions: int, seed: int = 7) -> None:
    for tree in demo.generate(sessions, seed=seed, arrivals=True):
        session = session_from_tree(tree)
        store.put_if_absent(session_key(session), encode_session(session))


def hostile_session(payload: str) -> dict[str, Any]:
    """A valid session whose attribute values are markup and script."""
    tree = next(demo.generate(1, seed=99))
    tree["sessionId"] = str(uuid.uuid4())
    tree["attributes"] = {**tree.get("attributes", {}), "probe": payload}
    for event in tree.get("events", []):
        event["attributes"] = {"detail": payload}
    return tree


def serve(store: Store, warehouse: Path, token: str | None = None) -> Iterator[Served]:
    app = create_app(ServerConfig(storage_url=store.url, applications=frozenset({demo.APP})), store)
    site = dashboard.mount(app, warehouse, token=token)
    sock = bind("127.0.0.1", 0)
    server = make_server(site, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn start")
    host, port = sock.getsockname()[:2]
    try:
        yield Served(url_of(sock), host, port, store, warehouse, token, server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    root = tmp_path_factory.mktemp("dashboard")
    store = LocalStore(root / "sessions", fsync=False)
    fill_demo(store, DEMO_SESSIONS)
    return store, root / "warehouse.duckdb"


@pytest.fixture(scope="session")
def served(demo_data: tuple[Store, Path]) -> Iterator[Served]:
    """The app over demo data plus the hostile sessions, sent through the ingest API."""
    store, warehouse = demo_data
    for s in serve(store, warehouse):
        for payload in PAYLOADS:
            body = json.dumps(hostile_session(payload)).encode()
            status, _, text = s.request("PUT", "/v1/sessions", body, {"Content-Type": "application/json"})
            assert status == 201, text
        s.load()
        yield s


@pytest.fixture(scope="session")
def served_with_token(demo_data: tuple[Store, Path], served: Served) -> Iterator[Served]:
    """A second app on the same data that requires a token for the dashboard."""
    store, warehouse = demo_data
    yield from serve(store, warehouse, token="s3cret-token")


@pytest.fixture(scope="session")
def render_times() -> dict[str, float]:
    """Page render times the browser tests measured, shown in the terminal summary."""
    return RENDER_TIMES


@pytest.fixture(scope="session")
def payloads() -> tuple[str, ...]:
    """The hostile attribute values the ``served`` app holds."""
    return PAYLOADS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RENDER_TIMES:
        shown = ", ".join(f"{page} {ms:.0f} ms" for page, ms in RENDER_TIMES.items())
        terminalreporter.write_line(f"dashboard render times in Chromium (navigation start to charts drawn): {shown}")
