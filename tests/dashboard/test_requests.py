"""What a dashboard request may carry: bounded bodies, no proxy without a token, nothing from other sites."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboard.conftest import Served
from fixtures.browser import WatchedPage
from tallystick.dashboard import create_dashboard

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sql_body(sql: str = "SELECT 42 AS answer") -> bytes:
    return json.dumps({"sql": sql}).encode()


def call_app(
    app: Any, method: str, path: str, headers: dict[str, str], *, chunks: int, chunk: bytes
) -> tuple[int, int]:
    """Run one request through the ASGI app in-process: (status, how many body chunks the app pulled)."""
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "scheme": "https",
        "server": ("127.0.0.1", 8780),
        "client": ("203.0.113.9", 5555),
        "http_version": "1.1",
    }
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result(timeout=30)
    return int(sent[0]["status"]), pulled


def test_streamed_login_body_stops_past_4_kib(tmp_path: Path) -> None:
    """A login form body streamed without Content-Length is cut off (413) after the first chunk past 4 KiB."""
    app = create_dashboard(tmp_path / "warehouse.duckdb", token="s3cret")
    headers = {"Host": "telemetry.example.org", **FORM}
    status, pulled = call_app(app, "POST", "/login", headers, chunks=300, chunk=b"x" * (1 << 20))
    assert (status, pulled) == (413, 1)
    status, pulled = call_app(app, "POST", "/login", headers, chunks=300, chunk=b"x" * 1024)
    assert (status, pulled) == (413, 5)


def test_oversized_content_length_is_refused_before_reading(tmp_path: Path) -> None:
    """A Content-Length over the limit gets 413 without a byte of the body being read."""
    app = create_dashboard(tmp_path / "warehouse.duckdb", token="s3cret")
    headers = {"Host": "telemetry.example.org", "Content-Length": str(300 << 20), **FORM}
    assert call_app(app, "POST", "/login", headers, chunks=300, chunk=b"x" * (1 << 20)) == (413, 0)


def test_login_and_sql_bodies_are_bounded_on_a_real_server(served_with_token: Served, served: Served) -> None:
    """POST /login takes at most 4 KiB and POST /api/sql at most 64 KiB; within the limits they work."""
    status, _, body = served_with_token.request("POST", "/login", b"token=" + b"x" * 5000, FORM)
    assert status == 413 and "at most 4,096 bytes" in json.loads(body)["message"]
    status, _, body = served.request("POST", "/api/sql", sql_body("SELECT 1 -- " + "x" * (64 << 10)), JSON)
    assert status == 413 and "at most 65,536 bytes" in json.loads(body)["message"]
    status, _, body = served.request("POST", "/api/sql", sql_body("SELECT 42 AS answer -- " + "x" * 60_000), JSON)
    assert status == 200 and json.loads(body)["rows"] == [[42]]
    assert served.request("GET", "/", b"x" * 5000)[0] == 413


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-For", "203.0.113.9"),
        ("X-Forwarded-Host", "telemetry.example.org"),
        ("Forwarded", "for=203.0.113.9;proto=https"),
        ("X-Real-IP", "203.0.113.9"),
    ],
    ids=["x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip"],
)
def test_proxied_request_needs_a_token_even_on_loopback(
    header: str, value: str, served: Served, served_with_token: Served
) -> None:
    """Behind a reverse proxy on 127.0.0.1, a tokenless dashboard refuses proxied requests, saying why."""
    for path in ("/", "/api/overview", "/static/dashboard.js"):
        status, _, body = served.request("GET", path, headers={header: value})
        assert status == 403
        message = json.loads(body)["message"]
        assert f"came through a proxy ({header})" in message and "--dashboard-token" in message
    assert served.request("GET", "/ping", headers={header: value})[0] == 200  # ingest stays open
    bearer = {header: value, "Authorization": f"Bearer {served_with_token.token}"}
    assert served_with_token.request("GET", "/api/overview", headers=bearer)[0] == 200


def test_sql_api_requires_json_content_type(served: Served) -> None:
    """POST /api/sql with any content type but application/json is refused with 415, before running SQL."""
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, _, body = served.request("POST", "/api/sql", sql_body(), {"Content-Type": content_type})
        assert status == 415 and "Content-Type: application/json" in json.loads(body)["message"]
    assert served.request("POST", "/api/sql", sql_body())[0] == 415
    assert served.request("POST", "/api/sql", sql_body(), {"Content-Type": "application/json; charset=utf-8"})[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/api/sql", {"Sec-Fetch-Site": "cross-site"}),
        ("POST", "/api/sql", {"Sec-Fetch-Site": "same-site"}),
        ("POST", "/api/sql", {"Origin": "http://evil.example"}),
        ("POST", "/api/sql", {"Origin": "null"}),
        ("GET", "/api/sql.csv?q=SELECT%201", {"Sec-Fetch-Site": "cross-site"}),
        ("GET", "/api/overview", {"Origin": "http://127.0.0.1:1"}),
        ("POST", "/login", {"Sec-Fetch-Site": "cross-site"}),
    ],
    ids=["sql-cross-site", "sql-same-site", "sql-foreign-origin", "sql-null-origin", "csv", "api-get", "login"],
)
def test_requests_from_other_sites_are_refused(method: str, path: str, headers: dict[str, str], served: Served) -> None:
    """A POST or data request that another site's page sent is refused with 403 and the header that says so."""
    status, _, body = served.request(method, path, sql_body() if method == "POST" else None, {**JSON, **headers})
    assert status == 403
    assert "does not answer requests from other sites" in json.loads(body)["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://127.0.0.1:{port}"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://telemetry.example.org"},
        {},
    ],
    ids=["same-origin", "typed-by-user", "own-origin", "behind-a-proxy-rewriting-host", "script"],
)
def test_same_site_and_script_requests_are_answered(headers: dict[str, str], served: Served) -> None:
    """The dashboard's own pages, a typed URL and scripts without browser headers get their answer."""
    headers = {k: v.format(port=served.port) for k, v in headers.items()}
    status, _, body = served.request("POST", "/api/sql", sql_body(), {**JSON, **headers})
    assert status == 200, body
    assert json.loads(body)["rows"] == [[42]]


class _AttackerPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>some other site</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_site() -> Iterator[str]:
    """A plain page on another origin (``localhost`` and another port: a different site from 127.0.0.1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AttackerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_web_page_elsewhere_cannot_run_sql_in_chromium(
    served: Served, other_site: str, browser_page: WatchedPage
) -> None:
    """In Chromium, a no-cors text/plain POST from another site's page reaches /api/sql only to be refused (403)."""
    page = browser_page.page
    page.goto(other_site)
    script = """url => fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                   body: JSON.stringify({sql: "SELECT 42"})}).then(() => "sent")"""
    for content_type in ("text/plain", "application/json"):
        with page.expect_response(lambda r: r.url.endswith("/api/sql")) as answer:
            page.evaluate(script.replace("text/plain", content_type), served.url + "/api/sql")
        assert answer.value.status == 403
    with page.expect_response(lambda r: "/api/sql.csv" in r.url) as answer:
        page.evaluate("url => fetch(url, {mode: 'no-cors'}).then(() => 'sent')", served.url + "/api/sql.csv?q=SELECT+1")
    assert answer.value.status == 403


def test_an_analysis_problem_points_at_the_sql_page_not_the_command_line(served: Served) -> None:
    """An unknown attribute's notice says to look on the SQL page; a browser user may have no shell."""
    status, _, body = served.request("GET", "/analyses/breakdown?app=demo&attribute=nope")
    assert status == 200
    text = body.decode()
    assert "has the attribute &#39;nope&#39;" in text
    assert "the SQL page (SELECT attributes FROM sessions LIMIT 5)" in text
    assert "tallystick query" not in text
