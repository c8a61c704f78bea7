"""Who may see the dashboard, what a request may carry, and the headers every response carries.

- Bound to loopback without a token: anyone on this machine, but only under a loopback
  ``Host`` name, so a web page cannot reach it by pointing its own domain at 127.0.0.1
  (DNS rebinding), and only directly: a request carrying a reverse proxy's headers
  (``X-Forwarded-For``, ``X-Forwarded-Host``, ``Forwarded``, ``X-Real-IP``) came from
  wherever the proxy's clients are, so it needs the token like any remote request.
- With a token (required when bound elsewhere, and strong: ``signin.token_problem``): an
  ``Authorization: Bearer <token>`` header, or the cookie the login form sets. The cookie
  holds a random session ID that expires and that signing out revokes on the server
  (``signin.py``), never the token; it is ``HttpOnly`` and ``SameSite=Strict``. Wrong
  tokens are throttled per client address.
- Never from another site: a POST or an ``/api/`` request whose ``Sec-Fetch-Site`` is not
  ``same-origin`` or ``none``, or whose ``Origin`` is not the dashboard's own, is refused
  (403). Without a token on loopback, nothing else would stop any web page the user
  visits from sending ``fetch("http://127.0.0.1:8780/api/sql", {mode: "no-cors"})``.
- Bodies are small: at most ``BODY_LIMITS`` bytes (4 KiB, 64 KiB for ``/api/sql``),
  refused by ``Content-Length`` before reading, or as soon as a streamed body passes the
  limit (413); nothing ever holds more than the limit in memory.

The ingest routes are not behind this guard: clients must reach them.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qs, quote, urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tallystick.dashboard.errors import BodyTooLarge, TokenRequired
from tallystick.dashboard.signin import MAKE_TOKEN, SignIns, token_problem

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
PROXY_HEADERS = {  # lower-case name: as messages show it
    "x-forwarded-for": "X-Forwarded-For",
    "x-forwarded-host": "X-Forwarded-Host",
    "forwarded": "Forwarded",
    "x-real-ip": "X-Real-IP",
}
DEFAULT_BODY_LIMIT = 4096
BODY_LIMITS = {"/api/sql": 64 * 1024}  # every other path: DEFAULT_BODY_LIMIT (the login form's is 4 KiB)
SAFE_FETCH_SITES = ("same-origin", "none")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve the dashboard beyond this machine without a token, or with a weak one."""
    if not token and not is_loopback(host):
        raise TokenRequired(
            f"listening on {host} exposes the dashboard to other machines: set --dashboard-token "
            f"or ${TOKEN_ENV} (or listen on 127.0.0.1); make one with: {MAKE_TOKEN}"
        )
    problem = token_problem(token) if token else None
    if problem is not None:
        raise TokenRequired(problem)


def _host_name(headers: Headers) -> str:
    host = headers.get("host", "")
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    return BODY_LIMITS.get(path, DEFAULT_BODY_LIMIT)


def proxy_header(headers: Headers) -> str | None:
    """The first reverse-proxy header the request carries, if any."""
    return next((name for name in PROXY_HEADERS if name in headers), None)


def _origin_key(scheme: str, netloc: str) -> tuple[str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or ""), port or {"http": 80, "https": 443}.get(scheme)


def cross_site(headers: Headers) -> str | None:
    """Why the request comes from another site, or None if it does not (or says nothing, as scripts do).

    ``Sec-Fetch-Site`` is set by the browser and cannot be set by a page, so when present
    it decides (it stays right behind a proxy that rewrites ``Host``). Browsers that do not
    send it (plain-HTTP sites other than localhost) still send ``Origin`` on a POST, which
    must then name the ``Host`` (or ``X-Forwarded-Host``) the request was sent to.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site.lower() in SAFE_FETCH_SITES else f"Sec-Fetch-Site: {site}"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"Origin: {origin}"
    own = [headers.get("host", "")] + [h.split(",")[0].strip() for h in headers.getlist("x-forwarded-host")]
    wanted = _origin_key(parts.scheme, parts.netloc)
    if wanted[0] and any(_origin_key(parts.scheme, h) == wanted for h in own if h):
        return None
    return f"Origin: {origin}"


class SecurityHeaders:
    """ASGI wrapper: every answer gets the security headers it lacks, errors and unknown paths included
    (the Guard adds them for the routes; this is for what no route answers: 404, 405, 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Guard:
    """ASGI middleware in front of each dashboard route: body bound, site and access checks, security headers."""

    def __init__(self, app: ASGIApp, token: str | None, sessions: SignIns | None = None) -> None:
        self.app = app
        self.token = token
        self.sessions = sessions or SignIns()

    def allowed(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        if not self.token:
            return is_loopback(_host_name(headers)) and proxy_header(headers) is None
        if scope["path"].startswith(OPEN_PATHS):
            return True
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        return self.sessions.valid(Request(scope).cookies.get(COOKIE, ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present]
                if scope["path"].startswith("/static/"):
                    # Static URLs carry the package version (?v=), so they may be kept for a day.
                    extra = [h for h in extra if h[0] != b"cache-control"]
                    extra.append((b"cache-control", b"public, max-age=86400"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        limit = body_limit(scope["path"])
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        response = self.refusal(scope, limit)
        if response is None:
            try:
                await self.app(scope, bounded_receive, send_with_headers)
            except BodyTooLarge:
                if started:
                    raise
                response = self.too_large(limit)
            else:
                return
        await response(scope, receive, send_with_headers)

    def refusal(self, scope: Scope, limit: int) -> Response | None:
        """The answer to a request that may not reach the route, or None if it may."""
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            return self.too_large(limit)
        unsafe = scope["method"] not in ("GET", "HEAD", "OPTIONS")
        if unsafe or scope["path"].startswith("/api/"):
            why = cross_site(headers)
            if why is not None:
                return JSONResponse(
                    {"message": f"the dashboard does not answer requests from other sites ({why})"}, status_code=403
                )
        if self.allowed(scope):
            return None
        if not self.token:
            proxy = proxy_header(headers)
            if proxy is not None and is_loopback(_host_name(headers)):
                return JSONResponse(
                    {
                        "message": f"this request came through a proxy ({PROXY_HEADERS[proxy]}), so it may come from "
                        f"anywhere: serving the dashboard through a proxy needs a token (--dashboard-token or "
                        f"${TOKEN_ENV})"
                    },
                    status_code=403,
                )
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

    @staticmethod
    def too_large(limit: int) -> Response:
        return JSONResponse(
            {"message": f"request body too large: the dashboard accepts at most {limit:,} bytes here"},
            status_code=413,
        )


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after logging in; never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_token(request: Request) -> tuple[str, str]:
    """(token, next) from the login form's urlencoded body (at most ``body_limit("/login")`` bytes: the Guard)."""
    body = (await request.body()).decode("utf-8", "replace")
    form = parse_qs(body)
    return (form.get("token") or [""])[0], safe_next((form.get("next") or ["/"])[0])


def token_matches(given: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), (token or "").encode())


def set_login_cookie(response: Response, session_id: str, secure: bool, max_age: int) -> None:
    """The signed-in session's cookie: its random ID (never the token), expiring with the session."""
    response.set_cookie(COOKIE, session_id, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/")
