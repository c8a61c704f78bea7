"""What every answer gets on its way out: security headers, a request ID, metrics, a log line.

One plain ASGI wrapper does all four because each extra layer costs every request a
few microseconds. It also dispatches the hot route (``direct``: ``fastroute.py``) itself,
handing it the headers to add instead of wrapping its ``send``. Security headers follow
Abacus: the API's answers are never to be framed, run or referred from
(``default-src 'none'``), and never sniffed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol

from tallystick.server.logs import new_request_id, request_id
from tallystick.server.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class DirectRoute(Protocol):
    """A route Edge calls itself: it answers with ``headers`` added and returns the status it sent."""

    method: str

    def __call__(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> Awaitable[int]: ...


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)

log = logging.getLogger("tallystick.server.requests")


class Edge:
    """Wraps the app: headers, ``X-Request-ID``, metrics by route, optional per-request log line."""

    state: Any  # the wrapped app's state, where the CLI and tests find ``ingest``
    raw_route: Any = None  # (method, path, route) that ``server/protocol.py`` answers without ASGI

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        routes: frozenset[str],
        *,
        log_requests: bool,
        direct: Mapping[str, DirectRoute] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.log_requests = log_requests
        self.direct = dict(direct or {})  # path -> route, for its method only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope["path"]
        route = path if path in self.routes else "other"
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
                break
        rid = new_request_id(given)
        token = request_id.set(rid)
        extra_headers = [*SECURITY_HEADERS, (b"x-request-id", rid.encode())]
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        self.metrics.in_flight += 1
        try:
            direct = self.direct.get(path)
            if direct is not None and scope["method"] == direct.method:
                status = await direct(scope, receive, send, extra_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight -= 1
            seconds = time.perf_counter() - start
            self.metrics.request_done(route, status, seconds)
            if self.log_requests:
                log.info(
                    "%s %s %d",
                    scope["method"],
                    route,
                    status,
                    extra={"method": scope["method"], "route": route, "status": status, "ms": round(seconds * 1000, 2)},
                )
            request_id.reset(token)
