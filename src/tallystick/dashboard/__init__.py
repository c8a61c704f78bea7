"""The web dashboard: overview, explore, SQL and analysis pages, served by ``tallystick up``.

``mount(app, warehouse)`` serves the dashboard beside (never over) the ingest API:
the ingest app keeps its paths (``/v1/...``, ``/ping``, ``/metrics``, ...) with its own
headers and metrics, every other path is the dashboard's. ``create_dashboard(warehouse)``
is the dashboard alone. Charts are
Vega-Lite, drawn in the browser by libraries the package ships (``static/vendor/``):
nothing is fetched from the internet.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tallystick.dashboard.auth import TOKEN_ENV, SecurityHeaders, check_exposure, is_loopback
from tallystick.dashboard.errors import BadQuery, DashboardError, NoData, TokenRequired
from tallystick.dashboard.pages import Dashboard
from tallystick.dashboard.reader import Reader, lock_for


class Site:
    """One ASGI app: the ingest API's paths go to it, all others to the dashboard."""

    def __init__(self, ingest: Any, dashboard: Starlette) -> None:
        self.ingest = ingest
        self.dashboard = SecurityHeaders(dashboard)  # errors too: a 500 is sent outside Starlette's middleware
        self.ingest_paths = _route_paths(ingest)
        self.state = getattr(ingest, "state", None)  # what the CLI looks up (``app.state.ingest``)

    def is_ingest(self, path: str) -> bool:
        return path in self.ingest_paths or path.startswith("/v1/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.is_ingest(scope["path"]):
            await self.dashboard(scope, receive, send)
        else:
            await self.ingest(scope, receive, send)


def _route_paths(app: Any) -> frozenset[str]:
    """The paths of the Starlette app inside ``app`` (through any wrapping middleware)."""
    inner = app
    while not isinstance(inner, Starlette) and hasattr(inner, "app"):
        inner = inner.app
    if not isinstance(inner, Starlette):
        raise TypeError(f"{app!r} does not wrap a Starlette app; mount the dashboard on the ingest app")
    return frozenset(r.path for r in inner.routes if isinstance(r, Route))


def mount(
    app: Any,
    warehouse: str | Path,
    *,
    token: str | None = None,
    lock: threading.Lock | None = None,
) -> Site:
    """The ingest ``app`` with the dashboard beside it; the ingest paths keep precedence."""
    return Site(app, create_dashboard(warehouse, token=token, lock=lock))


def create_dashboard(
    warehouse: str | Path, *, token: str | None = None, lock: threading.Lock | None = None
) -> Starlette:
    """The dashboard as an ASGI app of its own."""
    return Starlette(
        routes=Dashboard(Reader(warehouse, lock=lock), token=token).routes(),
        middleware=[Middleware(SecurityHeaders)],  # what no route answers (404, 405) too
    )


__all__ = [  # noqa: RUF022 - plain sorted() order (tests/dashboard/test_init.py), as in every package
    "BadQuery",
    "DashboardError",
    "NoData",
    "Site",
    "TOKEN_ENV",
    "TokenRequired",
    "check_exposure",
    "create_dashboard",
    "is_loopback",
    "lock_for",
    "mount",
]
