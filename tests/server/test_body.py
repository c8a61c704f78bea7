"""Bodies that would cost memory or time are refused early: size after decompression, gzip bombs, slow senders."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from fixtures.api import Api
from sessions import body, session
from tallystick.server.body import BodyError, Deadlines

MiB = 1024 * 1024


def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * MiB
    parts = [compressor.compress(chunk) for _ in range(size // MiB)]
    return b"".join([*parts, compressor.flush()])


def _answer_of(sock: socket.socket, deadline: float, data: bytes = b"") -> bytes:
    """Read until the status line and headers of an answer arrived (or the peer closed)."""
    sock.setblocking(True)
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _send_until_answered(server: Any, head: bytes, chunks: Callable[[], bytes], seconds: float) -> bytes:
    """Send ``head`` then ``chunks()`` until the server answers; the answer's first bytes."""
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head)
        deadline = time.monotonic() + seconds
        sock.setblocking(False)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
                if data:
                    return _answer_of(sock, time.monotonic() + 1, data)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                return b""
            try:
                sock.send(chunks())
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                return _answer_of(sock, time.monotonic() + 1)
        return b""


def test_gzip_bomb_is_413_fast_with_flat_memory(server_process: Callable[..., Any]) -> None:
    """A 200 MiB gzip bomb gets 413 within 1 s, and the server's RSS grows by less than 50 MB."""
    server = server_process()
    bomb = _gzip_of_zeros(200 * MiB)
    head = (
        b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    )
    before = server.rss_bytes()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + bomb)
        answer = _answer_of(sock, time.monotonic() + 5)
    elapsed = time.monotonic() - started
    growth = server.rss_bytes() - before
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert elapsed < 1.0
    assert growth < 50 * 1000 * 1000, growth


def test_endless_chunked_body_is_413_fast_with_flat_memory(server_process: Callable[..., Any]) -> None:
    """A chunked body without a declared length is cut off at 1 MiB: 413 within 1 s, RSS growth under 50 MB."""
    server = server_process()
    head = (
        b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    before = server.rss_bytes()
    started = time.monotonic()
    answer = _send_until_answered(server, head + chunk * 17, lambda: chunk, seconds=5)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request body is larger than 1048576 bytes" in answer or b"content-length" in answer
    assert elapsed < 1.0
    assert server.rss_bytes() - before < 50 * 1000 * 1000


def test_declared_oversized_body_is_413_before_reading(api: Api) -> None:
    """A Content-Length over the limit is refused without waiting for the body."""
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(
            b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (2 * MiB)
        )
        answer = _answer_of(sock, time.monotonic() + 2)
    assert answer.startswith(b"HTTP/1.1 413")


def test_slow_body_is_408(api_with: Callable[..., Api]) -> None:
    """A body that does not arrive within body_timeout_seconds gets 408 naming the deadline."""
    api = api_with(body_timeout_seconds=0.3)
    raw = body(session())
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        sock.sendall(
            b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(raw)
            + raw[:10]
        )
        started = time.monotonic()
        answer = _answer_of(sock, started + 3)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 0.3 seconds" in answer
    assert time.monotonic() - started < 2
    assert list(api.store.list("")) == []


def _receiver(*messages: dict[str, Any]) -> Callable[[], Any]:
    """An ASGI ``receive`` giving ``messages`` in order, then waiting forever (as a quiet client)."""
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    return receive


def _chunks(data: bytes, size: int) -> list[dict[str, Any]]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1} for i, piece in enumerate(pieces)]


GZIPPED = gzip.compress(b'{"sessionId": "x"}' * 50)


@pytest.mark.parametrize(
    ("messages", "gzipped", "expected"),
    [
        pytest.param(_chunks(b"abc" * 100, 7), False, b"abc" * 100, id="plain-in-pieces"),
        pytest.param(_chunks(GZIPPED, 5), True, b'{"sessionId": "x"}' * 50, id="gzip-in-pieces"),
        pytest.param(_chunks(GZIPPED[:-9], 5), True, "request body is truncated gzip", id="gzip-truncated"),
        pytest.param(_chunks(GZIPPED + b"xx", 5), True, "data after the end of its gzip stream", id="gzip-trailer"),
        pytest.param(_chunks(b"not gzip at all", 4), True, "request body is not valid gzip", id="not-gzip"),
        pytest.param(_chunks(b"x" * 2000, 300), False, "larger than 1024 bytes", id="over-limit-in-pieces"),
        pytest.param(
            [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}],
            False,
            "cut short: the client disconnected",
            id="client-gone",
        ),
    ],
)
def test_body_reader_reassembles_or_refuses(messages: list[dict[str, Any]], gzipped: bool, expected: Any) -> None:
    """Bodies in several ASGI messages are joined (and gunzipped) within the limit; broken ones say why."""

    async def read() -> bytes:
        return await Deadlines(5.0).read(_receiver(*messages), 1024, gzipped)

    if isinstance(expected, bytes):
        assert asyncio.run(read()) == expected
    else:
        with pytest.raises(BodyError, match=expected):
            asyncio.run(read())


def test_deadline_sweep_cuts_off_only_the_overdue_read() -> None:
    """A read past its deadline gets 408 from the sweep; a read that finishes in time is untouched."""
    deadlines = Deadlines(0.2)

    async def both() -> tuple[bytes | BodyError, bytes]:
        slow = asyncio.ensure_future(deadlines.read(_receiver(*_chunks(b"abc", 2)[:1]), 1024, False))
        fast = await deadlines.read(_receiver(*_chunks(b"abc", 2)), 1024, False)
        try:
            outcome: bytes | BodyError = await asyncio.wait_for(slow, 3)  # no sweep: TimeoutError
        except BodyError as exc:
            outcome = exc
        return outcome, fast

    started = time.monotonic()
    slow, fast = asyncio.run(both())
    assert fast == b"abc"
    assert isinstance(slow, BodyError) and slow.status == 408, slow
    assert 0.2 <= time.monotonic() - started < 1.0
