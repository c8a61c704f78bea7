"""Reading a request body within a size limit, decompressing gzip on the way.

The limit applies to the decompressed size and is enforced while reading, so an
oversized body or a gzip bomb is refused after at most ``limit`` bytes of output
and one network chunk of input, never buffered whole. A body must also arrive
within a deadline, so a client trickling bytes cannot hold a request open.
"""

from __future__ import annotations

import asyncio
import zlib

from starlette.requests import Request


class BodyError(Exception):
    """A body the service will not read; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_content_type(request: Request) -> None:
    """Only ``application/json`` (optionally with ``charset=utf-8``) is accepted."""
    raw = request.headers.get("content-type", "")
    media, _, params = raw.partition(";")
    if media.strip().lower() != "application/json":
        shown = raw or "none"
        raise BodyError(415, f"Content-Type must be application/json, not {shown}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyError(415, f"charset must be utf-8, not {value.strip()}")


async def read_body(request: Request, limit: int, timeout: float = 30.0) -> bytes:
    """The decompressed body; BodyError 413 past ``limit`` bytes, 415 for an unknown encoding, 408 when slow."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise BodyError(415, f"Content-Encoding {encoding} is not supported: send identity or gzip")
    declared = request.headers.get("content-length")
    if encoding == "identity" and declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"request body is larger than {limit} bytes")
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, limit, encoding == "gzip")
    except TimeoutError:
        raise BodyError(408, f"request body did not arrive within {timeout:g} seconds: send it in one go") from None


async def _read(request: Request, limit: int, gzipped: bool) -> bytes:
    too_big = BodyError(413, f"request body is larger than {limit} bytes")
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if decompressor is None:
            size += len(chunk)
            if size > limit:
                raise too_big
            parts.append(chunk)
            continue
        data = chunk
        while data:
            try:
                out = decompressor.decompress(data, limit + 1 - size)
            except zlib.error:
                raise BodyError(400, "request body is not valid gzip") from None
            size += len(out)
            if size > limit:
                raise too_big
            parts.append(out)
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                break
    if decompressor is not None:
        if not decompressor.eof:
            raise BodyError(400, "request body is truncated gzip")
        if decompressor.unused_data:
            raise BodyError(400, "request body has data after the end of its gzip stream")
    return parts[0] if len(parts) == 1 else b"".join(parts)
