"""Running the ingest service under uvicorn, with start-up errors as one line."""

from __future__ import annotations

import errno
import socket
from typing import Any

import uvicorn

from tallystick.server.config import ServerConfig
from tallystick.server.logs import logging_config
from tallystick.server.protocol import protocol_class


class BindError(Exception):
    """The listening address cannot be used; the message says what to do."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before uvicorn starts so that errors are ours to word."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(f"port {port} on {host} is already in use: stop the other server or pick --port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise BindError(f"no permission to listen on {host}:{port}: use a port above 1024") from None
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, sock: socket.socket, *, lifecycle_logs: bool = True) -> uvicorn.Server:
    """A uvicorn server for ``app`` on ``sock``: JSON logs, no access log (it would hold client IPs).

    Settings come from the app's ServerConfig: the header deadline, size and count
    (``protocol.py``, which holds them for every server the project starts, whatever the
    app) and how long a SIGTERM waits for requests in flight before they are cut off. An
    app's ``raw_route`` (the ingest app's ``PUT /v1/sessions``) is answered by the protocol.
    ``lifecycle_logs=False`` leaves out uvicorn's info lines (``logs.logging_config``) for
    callers that tell the user themselves when the server starts and stops.
    """
    ingest = getattr(getattr(app, "state", None), "ingest", None)
    settings: ServerConfig | None = ingest.config if ingest is not None else None
    defaults = ServerConfig(storage_url="memory://")
    bounds = settings or defaults
    config = uvicorn.Config(
        app,
        http=protocol_class(
            bounds.header_timeout_seconds,
            bounds.max_header_bytes,
            bounds.max_headers,
            raw_route=getattr(app, "raw_route", None),
        ),
        access_log=False,
        log_config=logging_config(settings.log_level if settings else "info", lifecycle=lifecycle_logs),
        log_level=None,
        server_header=False,
        date_header=True,
        timeout_keep_alive=15,
        timeout_graceful_shutdown=int(bounds.shutdown_timeout_seconds),
        lifespan="off",
    )
    return uvicorn.Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
