"""Who may see the dashboard, and the headers every dashboard response carries.

- Bound to loopback without a token: anyone on this machine, but only under a loopback
  ``Host`` name, so a web page cannot reach it by pointing its own domain at 127.0.0.1
  (DNS rebinding).
- With a token (required when bound elsewhere): an ``Authorization: Bearer <token>``
  header, or the cookie the login form sets. The cookie holds an HMAC of the token,
  never the token; it is ``HttpOnly`` and ``SameSite=Strict``.

The ingest routes are not behind this guard: clients must reach them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tallystick.dashboard.errors import TokenRequired

COOKIE = "tallystick_dashboard"
TOKEN_ENV = "TALLYSTICK_DASHBOARD_TOKEN"  # noqa: S105 - the variable's name, not a secret
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
OPEN_PATHS = ("/login", "/logout", "/static/")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve the dashboard beyond this machine without a token."""
    if not token and not is_loopback(host):
        raise TokenRequired(
            f"listening on {host} exposes the dashboard to other machines: set --dashboard-token "
            f"or ${TOKEN_ENV} (or listen on 127.0.0.1)"
        )


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"tallystick dashboard session", hashlib.sha256).hexdigest()


def _host_name(headers: Headers) -> str:
    host = headers.get("host", "")
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware in front of each dashboard route: access check, then security headers."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def allowed(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        if not self.token:
            return is_loopback(_host_name(headers))
        if scope["path"].startswith(OPEN_PATHS):
            return True
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        cookie = Request(scope).cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), cookie_value(self.token).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                if scope["path"].startswith("/static/"):
                    # Static URLs carry the package version (?v=), so they may be kept for a day.
                    extra = [h for h in extra if h[0] != b"cache-control"]
                    extra.append((b"cache-control", b"public, max-age=86400"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if self.allowed(scope):
            await self.app(scope, receive, send_with_headers)
            return
        response = self.refusal(scope)
        await response(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> Response:
        if not self.token:
            return JSONResponse(
                {"message": "the dashboard answers only to localhost, 127.0.0.1 or [::1] when it has no token"},
                status_code=403,
            )
        path = scope["path"]
        if path.startswith("/api/") or scope["method"] != "GET":
            return JSONResponse(
                {"message": "log in first: send Authorization: Bearer <token> or use the login page at /login"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="tallystick dashboard"'},
            )
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after logging in; never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_token(request: Request) -> tuple[str, str]:
    """(token, next) from the login form's urlencoded body."""
    body = (await request.body())[:4096].decode("utf-8", "replace")
    form = parse_qs(body)
    return (form.get("token") or [""])[0], safe_next((form.get("next") or ["/"])[0])


def token_matches(given: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), (token or "").encode())


def set_login_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, cookie_value(token), httponly=True, samesite="strict", secure=secure, path="/")
