"""Reading a request body within a size limit, decompressing gzip on the way.

The limit applies to the decompressed size and is enforced while reading, so an
oversized body or a gzip bomb is refused after at most ``limit`` bytes of output
and one network chunk of input, never buffered whole. A body must also arrive
within a deadline, so a client trickling bytes cannot hold a request open.

Everything here works on plain ASGI (``receive`` and the raw header values), so the
hot route (``server/fastroute.py``) and the Starlette routes share one implementation.

Deadlines without a timer per request: most bodies are already buffered when their
request starts, so arming and cancelling a timer for each (``asyncio.timeout``) would
be pure cost. ``Deadlines`` instead notes when each read started, and one periodic
sweep cancels the reads that are overdue (at most a quarter of the deadline late).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class BodyError(Exception):
    """A body the service will not read; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# The client went away mid-body: the answer goes nowhere (uvicorn drops it) but is counted like any 400.
_CUT_SHORT_MESSAGE = "request body was cut short: the client disconnected"


def check_media_type(raw: str) -> None:
    """Only ``application/json`` (optionally with ``charset=utf-8``) is accepted; ``raw``: the Content-Type."""
    if raw == "application/json":
        return
    media, _, params = raw.partition(";")
    if media.strip().lower() != "application/json":
        shown = raw or "none"
        raise BodyError(415, f"Content-Type must be application/json, not {shown}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyError(415, f"charset must be utf-8, not {value.strip()}")


def check_content_type(request: Request) -> None:
    """``check_media_type`` of a Starlette request."""
    check_media_type(request.headers.get("content-type", ""))


def check_framing(encoding: str | None, declared: str | None, limit: int) -> bool:
    """Whether the body is gzipped; BodyError 415 for another encoding, 413 for a declared length past ``limit``."""
    if encoding is None or encoding == "identity":
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyError(413, f"request body is larger than {limit} bytes")
        return False
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return True
    if encoding != "identity":
        raise BodyError(415, f"Content-Encoding {encoding} is not supported: send identity or gzip")
    return check_framing(None, declared, limit)


class Deadlines:
    """Body reads that must finish within ``seconds``: an overdue one gets BodyError 408 (see the module note)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._started: dict[asyncio.Task[Any], float] = {}
        self._overdue: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.TimerHandle | None = None

    async def read(self, receive: Receive, limit: int, gzipped: bool) -> bytes:
        """The body (``receive_body``), cut off with 408 once the deadline passed."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        self._started[task] = loop.time()
        if self._sweeping is None:
            self._sweeping = loop.call_later(self._period, self._sweep, loop)
        try:
            return await receive_body(receive, limit, gzipped)
        except asyncio.CancelledError:
            if task not in self._overdue:
                raise
            self._overdue.discard(task)
            task.uncancel()
            raise BodyError(
                408, f"request body did not arrive within {self.seconds:g} seconds: send it in one go"
            ) from None
        finally:
            del self._started[task]

    @property
    def _period(self) -> float:
        return min(1.0, self.seconds / 4)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeping = None
        if not self._started:
            return  # the next read starts the sweep again
        cutoff = loop.time() - self.seconds
        for task, started in self._started.items():
            if started <= cutoff and task not in self._overdue:
                self._overdue.add(task)
                task.cancel()
        self._sweeping = loop.call_later(self._period, self._sweep, loop)


async def read_body(request: Request, limit: int, deadlines: Deadlines) -> bytes:
    """The decompressed body of a Starlette request; BodyError 413, 415, 408 (see ``check_framing``, ``Deadlines``)."""
    headers = request.headers
    gzipped = check_framing(headers.get("content-encoding"), headers.get("content-length"), limit)
    return await deadlines.read(request.receive, limit, gzipped)


async def receive_body(receive: Receive, limit: int, gzipped: bool) -> bytes:
    """The body from ASGI ``receive``: BodyError 413 past ``limit`` bytes (after gunzip), 400 for bad gzip."""
    message = await receive()
    if message["type"] != "http.request":
        raise BodyError(400, _CUT_SHORT_MESSAGE)
    chunk: bytes = message.get("body", b"")
    more: bool = message.get("more_body", False)
    if not more and not gzipped:  # the usual case: one message with the whole body
        if len(chunk) > limit:
            raise BodyError(413, f"request body is larger than {limit} bytes")
        return chunk
    too_big = BodyError(413, f"request body is larger than {limit} bytes")
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    parts: list[bytes] = []
    size = 0
    while True:
        if decompressor is None:
            size += len(chunk)
            if size > limit:
                raise too_big
            parts.append(chunk)
        else:
            data = chunk
            while data and not decompressor.eof:
                try:
                    out = decompressor.decompress(data, limit + 1 - size)
                except zlib.error:
                    raise BodyError(400, "request body is not valid gzip") from None
                size += len(out)
                if size > limit:
                    raise too_big
                parts.append(out)
                data = decompressor.unconsumed_tail
            if decompressor.eof and (data or decompressor.unused_data):
                raise BodyError(400, "request body has data after the end of its gzip stream")
        if not more:
            break
        message = await receive()
        if message["type"] != "http.request":
            raise BodyError(400, _CUT_SHORT_MESSAGE)
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
    if decompressor is not None and not decompressor.eof:
        raise BodyError(400, "request body is truncated gzip")
    return parts[0] if len(parts) == 1 else b"".join(parts)
