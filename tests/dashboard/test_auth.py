"""Who may see the dashboard: loopback only without a token, token holders otherwise; ingest stays open."""

from __future__ import annotations

import json

import pytest

from dashboard.conftest import Served
from tallystick import cli
from tallystick.dashboard import TokenRequired, check_exposure, is_loopback
from tallystick.dashboard.auth import COOKIE, cookie_value, safe_next


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    """Listening on loopback serves the dashboard without a token."""
    assert is_loopback(host)
    check_exposure(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.org"])
def test_other_hosts_need_a_token(host: str) -> None:
    """Listening anywhere else without a token is refused, naming the flag and the variable."""
    with pytest.raises(TokenRequired, match=r"--dashboard-token or \$TALLYSTICK_DASHBOARD_TOKEN"):
        check_exposure(host, None)
    check_exposure(host, "a-token")


def test_up_refuses_to_start_exposed_without_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """`tallystick up --host 0.0.0.0` without a token exits with a one-line error before listening."""
    monkeypatch.delenv("TALLYSTICK_DASHBOARD_TOKEN", raising=False)
    code = cli.main(["up", "--host", "0.0.0.0", "--port", "0", "--app", "x", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("tallystick: error: listening on 0.0.0.0 exposes the dashboard")


def test_foreign_host_name_is_refused_without_a_token(served: Served) -> None:
    """Without a token the dashboard answers only to loopback names (no DNS rebinding); ingest answers all."""
    status, _, body = served.request("GET", "/", headers={"Host": "attacker.example"})
    assert status == 403
    assert "localhost" in json.loads(body)["message"]
    assert served.request("GET", "/", headers={"Host": f"localhost:{served.port}"})[0] == 200
    assert served.request("GET", "/ping", headers={"Host": "attacker.example"})[0] == 200


def test_token_is_required_for_pages_and_data_but_not_ingest(served_with_token: Served) -> None:
    """With a token: pages redirect to /login, data answers 401, bearer or cookie get in; ingest stays open."""
    s = served_with_token
    status, headers, _ = s.request("GET", "/explore?app=demo")
    assert status == 303 and headers["location"] == "/login?next=%2Fexplore%3Fapp%3Ddemo"
    status, headers, body = s.request("GET", "/api/overview")
    assert status == 401 and "Bearer" in headers["www-authenticate"]
    assert "log in first" in json.loads(body)["message"]
    assert s.request("GET", "/api/overview", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert s.request("GET", "/api/overview", headers={"Authorization": f"Bearer {s.token}"})[0] == 200
    assert s.request("GET", "/", headers={"Cookie": f"{COOKIE}={cookie_value(s.token or '')}"})[0] == 200
    assert s.request("GET", "/", headers={"Cookie": f"{COOKIE}={s.token}"})[0] == 303
    assert s.request("GET", "/ping")[0] == 200
    assert s.request("GET", "/metrics")[0] == 200
    status, _, _ = s.request("PUT", "/v1/sessions", b"{}", {"Content-Type": "application/json"})
    assert status == 400  # validated, not turned away


def test_login_sets_a_safe_cookie_and_goes_back(served_with_token: Served) -> None:
    """The login form sets an HttpOnly, SameSite=Strict cookie holding no token, and returns to the page."""
    s = served_with_token
    form = f"token={s.token}&next=%2Fsql".encode()
    status, headers, _ = s.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["location"] == "/sql"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and (s.token or "") not in cookie
    status, _, body = s.request("POST", "/login", b"token=nope", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401 and b"not right" in body


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", "", "javascript:x"])
def test_login_never_sends_you_to_another_site(target: str) -> None:
    """The page to return to after logging in is always a path on this site."""
    assert safe_next(target) == "/"


def test_pages_carry_a_strict_content_security_policy(served: Served) -> None:
    """Dashboard pages allow scripts only from the dashboard itself, never inline or eval."""
    for path in ("/", "/explore", "/sql", "/static/dashboard.js"):
        status, headers, _ = served.request("GET", path)
        assert status == 200
        csp = headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-eval" not in csp and "default-src 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"


INGEST_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/static/nope.js", 404),
        ("GET", "/api/nope", 404),
        ("GET", "/analyses/adoption/extra", 404),
        ("DELETE", "/sql", 405),
        ("GET", "/v1/nope", 404),
        ("GET", "/v1/sessions", 405),
    ],
    ids=str,
)
def test_every_answer_has_the_security_headers(served: Served, method: str, path: str, status: int) -> None:
    """Unknown paths and wrong methods answer with the same security headers as every page."""
    got, headers, _ = served.request(method, path)
    assert got == status
    for name in INGEST_HEADERS:
        assert name in headers, (name, headers)
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_an_error_inside_the_dashboard_has_the_security_headers(tmp_path: object) -> None:
    """A route that fails (500) answers with the security headers too: they are added outside Starlette."""
    import http.client
    import threading

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from fixtures.common import wait_until
    from tallystick.dashboard import Site
    from tallystick.server.app import create_app
    from tallystick.server.config import ServerConfig
    from tallystick.server.run import bind, make_server
    from tallystick.storage import open_store

    async def boom(request: Request) -> None:
        raise RuntimeError("boom")

    store = open_store("memory://")
    site = Site(create_app(ServerConfig(storage_url="memory://"), store), Starlette(routes=[Route("/boom", boom)]))
    sock = bind("127.0.0.1", 0)
    server = make_server(site, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, what="uvicorn start")
        conn = http.client.HTTPConnection("127.0.0.1", sock.getsockname()[1], timeout=10)
        conn.request("GET", "/boom")
        response = conn.getresponse()
        response.read()
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert response.status == 500
    assert all(response.getheader(name) for name in INGEST_HEADERS), response.getheaders()
