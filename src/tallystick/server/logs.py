"""Structured logs of the ingest service: one JSON object per line on stderr.

Every record made while a request is handled carries that request's ID (from a
valid ``X-Request-ID`` header, else generated here), so the lines of one request
can be found together. Records never hold a client address: uvicorn's access log
stays off and nothing here reads the peer. Session content is logged only at
debug level.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import secrets
import time
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("tallystick_request_id", default=None)

_PREFIX = secrets.token_hex(4)
_counter = itertools.count(1)
_ALLOWED_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
# uvicorn adds ``color_message``, a copy of the message with terminal colours.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


def new_request_id(given: bytes | None) -> str:
    """The client's ``X-Request-ID`` when it is short and plain, else a fresh one (unique per process)."""
    if given and len(given) <= 64:
        text = given.decode("latin-1")
        if _ALLOWED_ID.issuperset(text):
            return text
    return f"{_PREFIX}-{next(_counter):x}"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "requestId"?, ...extra}`` as one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["requestId"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(level: str, *, lifecycle: bool = True) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn's and our loggers: JSON lines on stderr.

    ``lifecycle=False`` holds uvicorn's loggers to warnings and above: its info lines only
    say that the process started, is shutting down, has finished. ``tallystick serve``
    keeps them for log collectors; ``tallystick up`` shows a banner of its own instead.
    Tallystick's own records keep ``level`` either way.
    """
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    ours = level.upper()
    theirs = ours if lifecycle or ours in ("WARNING", "ERROR") else "WARNING"
    loggers = {
        name: {"handlers": ["json"], "level": named, "propagate": False}
        for name, named in (("tallystick", ours), ("uvicorn", theirs), ("uvicorn.error", theirs))
    }
    # The access log would hold client addresses: it gets no handler and is off in uvicorn.
    loggers["uvicorn.access"] = {"handlers": [], "level": "CRITICAL", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": loggers,
    }
