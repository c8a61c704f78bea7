"""Hostile requests to ``PUT /v1/sessions``: the protocol's own answers (``fastroute.py``) byte for byte as the app's.

Two real servers on 127.0.0.1, started once for the module: one whose protocol answers the route
itself, one with the raw route switched off (``raw_route = None``), so every request goes through
ASGI. Each case sends the same bytes to both and compares what comes back (the date and generated
request IDs masked) and whether the connection was closed. A check that the raw server really
took the plain requests itself keeps the comparison from passing by accident.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fixtures.common import wait_until
from sessions import body, session
from tallystick.server.app import create_app
from tallystick.server.config import ServerConfig
from tallystick.server.run import bind, make_server
from tallystick.storage.local import LocalStore

LIMIT = 4096


@dataclass
class Running:
    port: int
    store: LocalStore
    raw: list[int] = field(default_factory=lambda: [0])


def _start(root: Path, *, raw: bool) -> Iterator[Running]:
    store = LocalStore(root)
    app = create_app(ServerConfig(storage_url=store.url, applications=frozenset({"demo"}), max_body_bytes=LIMIT), store)
    running = Running(0, store)
    if raw:
        route = app.raw_route[2]
        handle = route.handle

        def counted(*args: Any) -> None:
            running.raw[0] += 1
            handle(*args)

        route.handle = counted
    else:
        app.raw_route = None
    sock = bind("127.0.0.1", 0)
    running.port = sock.getsockname()[1]
    server = make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="uvicorn start")
    yield running
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Running]]:
    raw = _start(tmp_path_factory.mktemp("raw"), raw=True)
    app = _start(tmp_path_factory.mktemp("app"), raw=False)
    yield next(raw), next(app)
    next(raw, None)
    next(app, None)


_MASKS = (
    (re.compile(rb"date: [^\r]*"), b"date: -"),
    (re.compile(rb"x-request-id: [0-9a-f]{8}-[0-9a-f]+"), b"x-request-id: -"),
)


def _exchange(port: int, parts: list[bytes], answers: int) -> tuple[bytes, bool]:
    """Send ``parts`` (one write each), read ``answers`` answers or up to a close: the masked bytes, closed."""
    head = parts[0].startswith(b"HEAD ")  # its answer's Content-Length has no body behind it
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for part in parts:
            sock.sendall(part)
            if len(parts) > 1:
                time.sleep(0.01)
        data, seen, closed = b"", 0, False
        while seen < answers:
            end = data.find(b"\r\n\r\n", _offset(data, seen))
            if end >= 0:
                length = re.search(rb"content-length: (\d+)", data[_offset(data, seen) : end])
                if head or len(data) >= end + 4 + (int(length.group(1)) if length else 0):
                    seen += 1
                    continue
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
        if not closed:
            sock.settimeout(0.05)
            with contextlib.suppress(TimeoutError):
                closed = sock.recv(1) == b""
    for pattern, mask in _MASKS:
        data = pattern.sub(mask, data)
    return data, closed


def _offset(data: bytes, seen: int) -> int:
    """Where the answer after the first ``seen`` ones starts (answers here have a Content-Length)."""
    at = 0
    for _ in range(seen):
        end = data.index(b"\r\n\r\n", at)
        length = re.search(rb"content-length: (\d+)", data[at:end])
        at = end + 4 + (int(length.group(1)) if length else 0)
    return at


def _put(raw: bytes, *extra: bytes, first: bytes = b"PUT /v1/sessions HTTP/1.1", length: bytes | None = None) -> bytes:
    head = first + b"\r\nHost: x\r\nContent-Type: application/json\r\n" + b"".join(extra)
    return head + b"Content-Length: %s\r\n\r\n" % (length or str(len(raw)).encode()) + raw


def _fresh(*extra: bytes, **kwargs: Any) -> bytes:
    return _put(body(session()), *extra, **kwargs)


_PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
_INVALID = body(session(userId="nope"))

# name -> (request bytes, answers expected before a close). Fresh sessions are made per call.
CASES: dict[str, Any] = {
    "plain": lambda: (_fresh(), 1),
    "content-length 0": lambda: (_put(b""), 1),
    "content-length with leading zeros": lambda: (_fresh(length=b"%05d" % len(body(session()))), 1),
    "content-length with a plus sign": lambda: (_fresh(length=b"+%d" % len(body(session()))), 1),
    "two content-lengths": lambda: (_fresh(b"Content-Length: 3\r\n"), 1),
    "content-length and chunked": lambda: (_fresh(b"Transfer-Encoding: chunked\r\n"), 1),
    "transfer-encoding chunked, identity": lambda: (_fresh(b"Transfer-Encoding: chunked, identity\r\n"), 1),
    "HTTP/1.0": lambda: (_fresh(first=b"PUT /v1/sessions HTTP/1.0"), 1),
    "HTTP/1.0 keep-alive": lambda: (_fresh(b"Connection: keep-alive\r\n", first=b"PUT /v1/sessions HTTP/1.0"), 1),
    "connection close": lambda: (_fresh(b"Connection: Close\r\n"), 1),
    "connection close, then more": lambda: (_fresh(b"Connection: close\r\n") + _PING, 2),
    "body longer than declared": lambda: (_fresh() + b"GARBAGE\r\n\r\n", 2),
    "put, app, put in one write": lambda: (_fresh() + _PING + _fresh(), 3),
    "invalid twice in one write": lambda: (_put(_INVALID) * 2, 2),
    "body at the limit": lambda: (_put(b"x" * LIMIT), 1),
    "body one over the limit": lambda: (_put(b"x" * (LIMIT + 1)), 1),
    "absolute-form target": lambda: (_fresh(first=b"PUT http://x/v1/sessions HTTP/1.1"), 1),
    "query string": lambda: (_fresh(first=b"PUT /v1/sessions?a=1 HTTP/1.1"), 1),
    "encoded slash": lambda: (_fresh(first=b"PUT /v1%2Fsessions HTTP/1.1"), 1),
    "lower-case method": lambda: (_fresh(first=b"put /v1/sessions HTTP/1.1"), 1),
    "expect 100-continue": lambda: (_fresh(b"Expect: 100-continue\r\n"), 2),
    "websocket upgrade (left unanswered either way)": lambda: (
        _fresh(b"Connection: upgrade\r\nUpgrade: websocket\r\n"),
        0,
    ),
    "HEAD": lambda: (_put(b"", first=b"HEAD /v1/sessions HTTP/1.1"), 1),
    "OPTIONS": lambda: (_put(b"", first=b"OPTIONS /v1/sessions HTTP/1.1"), 1),
    "two content-types, the first wrong": lambda: (
        _fresh().replace(b"Host: x\r\n", b"Host: x\r\nContent-Type: text/plain\r\n"),
        1,
    ),
    "charset utf-8": lambda: (_fresh().replace(b"application/json", b"Application/JSON; charset=UTF-8"), 1),
    "charset latin-1": lambda: (_fresh().replace(b"application/json", b"application/json; charset=latin-1"), 1),
    "no content-type": lambda: (_fresh().replace(b"Content-Type: application/json\r\n", b""), 1),
    "request id given": lambda: (_fresh(b"X-Request-ID: abc-123\r\n"), 1),
    "request id too long": lambda: (_fresh(b"X-Request-ID: " + b"a" * 80 + b"\r\n"), 1),
    "request id with a space": lambda: (_fresh(b"X-Request-ID: a b\r\n"), 1),
    "content-encoding identity": lambda: (_fresh(b"Content-Encoding: identity\r\n"), 1),
    "invalid session": lambda: (_put(_INVALID), 1),
    "not JSON": lambda: (_put(b"{nope"), 1),
    "not UTF-8": lambda: (_put(b'{"a":"\xff"}'), 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_answer_either_way(servers: tuple[Running, Running], name: str) -> None:
    """The same bytes to both servers: the same answers, in the same order, and the same close."""
    raw, app = servers
    request, answers = CASES[name]()
    assert _exchange(raw.port, [request], answers) == _exchange(app.port, [request], answers)


def test_the_raw_server_answers_plain_requests_itself(servers: tuple[Running, Running]) -> None:
    """Else the comparisons above compare the app with itself."""
    raw, _ = servers
    before = raw.raw[0]
    _exchange(raw.port, [_put(_INVALID) + _fresh()], 2)  # the 400 is answered at once: the next one is taken too
    assert raw.raw[0] - before == 2


def test_a_request_split_anywhere_gets_the_same_answer(servers: tuple[Running, Running]) -> None:
    """Two reads, split at every byte around the end of the headers and at a stride elsewhere."""
    raw, app = servers
    sample = _fresh()
    edge = sample.index(b"\r\n\r\n")
    for at in sorted({*range(1, len(sample), 37), *range(edge - 3, min(edge + 8, len(sample)))}):
        request = _fresh()
        parts = [request[:at], request[at:]]
        assert _exchange(raw.port, parts, 1) == _exchange(app.port, parts, 1), at


def test_a_client_gone_before_its_answer_still_has_its_session_stored(servers: tuple[Running, Running]) -> None:
    """Reset right after sending: the session is stored all the same, and the server goes on answering."""
    raw, _ = servers
    sent = [session() for _ in range(5)]
    before = raw.raw[0]
    for value in sent:
        sock = socket.create_connection(("127.0.0.1", raw.port), timeout=10)
        sock.sendall(_put(body(value)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    wait_until(lambda: raw.raw[0] - before == len(sent), timeout=10, what="the protocol to take them")
    ids = {value["sessionId"] for value in sent}
    wait_until(
        lambda: len(ids & {key for info in raw.store.list("sessions/") for key in ids if key in info.key}) == len(ids),
        timeout=10,
        what="the sessions stored",
    )
    assert _exchange(raw.port, [_fresh()], 1)[0].startswith(b"HTTP/1.1 201 ")
