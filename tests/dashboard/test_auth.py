"""Who may see the dashboard: loopback only without a token, token holders otherwise; ingest stays open."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.conftest import Served, serve
from tallystick import cli
from tallystick.dashboard import TokenRequired, check_exposure, is_loopback
from tallystick.dashboard.auth import COOKIE, safe_next
from tallystick.dashboard.signin import SignIns, Throttle, token_problem
from tallystick.storage import Store

STRONG = "Zq4-rT9x_LmW2pK7vN3bYc"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sign_in(s: Served) -> str:
    """Log in with the form; the session cookie's value."""
    status, headers, _ = s.request("POST", "/login", f"token={s.token}".encode(), FORM)
    assert status == 303, status
    return headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]


@pytest.fixture
def own_site(demo_data: tuple[Store, Path], served: Served) -> Iterator[Served]:
    """A token-guarded app of this test's own (its sign-ins and throttle start empty)."""
    store, warehouse = demo_data
    yield from serve(store, warehouse, token=STRONG)


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
    check_exposure(host, STRONG)


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
    assert s.request("GET", "/", headers={"Cookie": f"{COOKIE}={sign_in(s)}"})[0] == 200
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
    assert "Max-Age=43200" in cookie  # the session ends after 12 h
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


@pytest.mark.parametrize("token", ["s3cret", "a" * 40, "abcdefghijklmnopqrs", "abababababababababababab"])
def test_weak_tokens_are_refused(token: str) -> None:
    """A dashboard token must be at least 20 characters and not mostly one or two: the refusal says how to make one."""
    with pytest.raises(TokenRequired, match=r"too weak.*secrets\.token_urlsafe"):
        check_exposure("0.0.0.0", token)
    assert token_problem(STRONG) is None


def test_up_refuses_a_weak_token(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    """`tallystick up --dashboard-token s3cret` exits with one line before listening."""
    code = cli.main(["up", "--port", "0", "--app", "x", "--data-dir", str(tmp_path), "--dashboard-token", "s3cret"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "the dashboard token is too weak" in err[0]


def _login_from(s: Served, token: str, source: str = "127.0.0.1") -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection(s.host, s.port, timeout=15, source_address=(source, 0))
    try:
        conn.request("POST", "/login", f"token={token}".encode(), FORM)
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def test_wrong_tokens_are_throttled_per_address(own_site: Served) -> None:
    """300 wrong tokens in a row: only the first 10 are checked, the rest get 429 with Retry-After, and so
    does the right token from that address; another address still signs in."""
    statuses = [_login_from(own_site, f"wrong-{i}")[0] for i in range(300)]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    status, headers = _login_from(own_site, STRONG)
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60
    assert _login_from(own_site, STRONG, source="127.0.0.2")[0] == 303


def test_throttle_lets_an_address_try_again_after_the_window() -> None:
    """Failures age out: after the window an address may try again."""
    now = [1000.0]
    throttle = Throttle(max_failures=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") is None
        throttle.failed("a")
    assert throttle.retry_after("a") == 60
    assert throttle.retry_after("b") is None
    now[0] += 30
    assert throttle.retry_after("a") == 30
    now[0] += 30.5
    assert throttle.retry_after("a") is None


def test_sessions_expire_and_sign_out_ends_them() -> None:
    """A session is valid for its lifetime only, and not at all once ended."""
    now = [0.0]
    sessions = SignIns(lifetime_seconds=100, clock=lambda: now[0])
    first, second = sessions.start(), sessions.start()
    assert first != second and sessions.valid(first) and not sessions.valid("forged")
    sessions.end(first)
    assert not sessions.valid(first) and sessions.valid(second)
    now[0] = 100
    assert not sessions.valid(second)


def test_signing_out_revokes_the_cookie_on_the_server(own_site: Served) -> None:
    """After POST /logout a copy of the cookie (say, a stolen one) no longer gets in."""
    cookie = {"Cookie": f"{COOKIE}={sign_in(own_site)}"}
    assert own_site.request("GET", "/sql", headers=cookie)[0] == 200
    status, headers, _ = own_site.request("POST", "/logout", headers=cookie)
    assert status == 303 and headers["location"] == "/login"
    assert f"{COOKIE}=" in headers["set-cookie"] and "Max-Age=0" in headers["set-cookie"]
    status, headers, _ = own_site.request("GET", "/sql", headers=cookie)
    assert status == 303 and headers["location"].startswith("/login")


def test_sign_out_is_a_post_from_this_site_only(own_site: Served) -> None:
    """GET /logout does nothing (405); a POST from another site is refused and the session stays."""
    cookie = {"Cookie": f"{COOKIE}={sign_in(own_site)}"}
    assert own_site.request("GET", "/logout", headers=cookie)[0] == 405
    for foreign in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        assert own_site.request("POST", "/logout", headers={**cookie, **foreign})[0] == 403
    assert own_site.request("GET", "/sql", headers=cookie)[0] == 200
