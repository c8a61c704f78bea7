"""``PUT /v1/sessions`` answered by the protocol itself (``server/fastroute.py``) and through ASGI: same answers.

The protocol takes an ordinary request whose body came with its headers; anything else (a
chunked body, a body arriving in a later read) goes to the app. These tests count which way
each request went, so each checks what it means to.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.common import wait_until
from sessions import body, session
from tallystick.server.app import create_app
from tallystick.server.config import ServerConfig
from tallystick.server.run import bind, make_server
from tallystick.storage.local import LocalStore


class Server:
    """The ingest app under our protocol in a thread; ``raw`` counts requests the protocol answered itself."""

    def __init__(self, store: LocalStore, **settings: Any) -> None:
        settings.setdefault("applications", frozenset({"demo"}))
        self.store = store
        self.app = create_app(ServerConfig(storage_url=store.url, **settings), store)
        route = self.app.raw_route[2]
        self.raw = 0
        handle = route.handle

        def counted(*args: Any) -> None:
            self.raw += 1
            handle(*args)

        route.handle = counted
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.server = make_server(self.app, self.sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stored(self) -> list[str]:
        return [info.key for info in self.store.list("sessions/")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(LocalStore(tmp_path / "sessions"))
    running.thread.start()
    wait_until(lambda: running.server.started, timeout=10, what="uvicorn start")
    yield running
    running.server.should_exit = True
    running.thread.join(timeout=10)
    running.sock.close()


def _put(raw: bytes, *extra: bytes) -> bytes:
    head = b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + b"".join(extra)
    return head + b"Content-Length: %d\r\n\r\n" % len(raw) + raw


def _chunked(raw: bytes) -> bytes:
    head = b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(raw), raw)


def _answers(sock: socket.socket, count: int) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """``count`` answers read off ``sock``: status, headers (lower-case names), body."""
    data, answers = b"", []
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            lines = data[:end].split(b"\r\n")
            headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
            length = int(headers.get(b"content-length", b"0"))
            if len(data) >= end + 4 + length:
                answers.append((int(lines[0].split()[1]), headers, data[end + 4 : end + 4 + length]))
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(answers)} answers"
        data += chunk
    return answers


def _one_by_one(server: Server, requests: list[bytes]) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Each request's answer, sent on one connection after the previous one's answer."""
    answers = []
    with server.connect() as sock:
        for request in requests:
            sock.sendall(request)
            answers += _answers(sock, 1)
    return answers


def _shape(answer: tuple[int, dict[bytes, bytes], bytes]) -> tuple[int, list[bytes], bytes]:
    status, headers, content = answer
    assert headers[b"x-request-id"]
    return status, sorted(headers), content


def test_protocol_and_asgi_answers_agree(server: Server) -> None:
    """201, 304 and 400 (with its listed violations) are the same bytes whichever way the request goes."""
    first, second = session(), session()
    invalid = body(session(userId="nope", sessionEndTime="2020-01-01T00:00:00Z"))
    raw_created, raw_duplicate, raw_invalid = _one_by_one(server, [_put(body(first)), _put(body(first)), _put(invalid)])
    assert server.raw == 3
    app_created, app_duplicate, app_invalid = _one_by_one(server, [_chunked(body(second))] * 2 + [_chunked(invalid)])
    assert server.raw == 3
    assert [a[0] for a in (raw_created, raw_duplicate, raw_invalid)] == [201, 304, 400]
    assert _shape(raw_created) == _shape(app_created)
    assert _shape(raw_duplicate) == _shape(app_duplicate)
    assert _shape(raw_invalid) == _shape(app_invalid)
    assert {e["type"] for e in json.loads(raw_invalid[2])["validationErrors"]} >= {"pattern"}
    assert len(server.stored()) == 2


def test_a_body_in_a_later_read_goes_to_the_app(server: Server) -> None:
    """Headers first, the body a moment later: the app reads it (under its body deadline) and stores it."""
    value = session()
    request = _put(body(value))
    split = request.index(b"\r\n\r\n") + 4
    with server.connect() as sock:
        sock.sendall(request[:split])
        time.sleep(0.2)
        sock.sendall(request[split:])
        (answer,) = _answers(sock, 1)
    assert answer[0] == 201
    assert server.raw == 0
    (key,) = server.stored()
    assert json.loads(gzip.decompress(server.store.get(key)))["sessionId"] == value["sessionId"]


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    """Requests sent back to back on one connection, some answered by the protocol, some by the app, in order."""
    first, second = session(), session()
    requests = [
        _put(body(first)),
        b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
        _put(body(second)),
        _chunked(body(session())),
        _put(body(first)),
    ]
    with server.connect() as sock:
        sock.sendall(b"".join(requests))
        answers = _answers(sock, len(requests))
    assert [(status, content) for status, _, content in answers] == [
        (201, b""),
        (200, b"pong"),
        (201, b""),
        (201, b""),
        (304, b""),
    ]
    assert 1 <= server.raw <= 3  # the first for sure; those behind an answer still owed go to the app
    assert len(server.stored()) == 3


def test_connection_close_is_honoured(server: Server) -> None:
    """``Connection: close``: the answer says so and the server closes the connection."""
    with server.connect() as sock:
        sock.sendall(_put(body(session()), b"Connection: close\r\n"))
        (answer,) = _answers(sock, 1)
        assert sock.recv(100) == b""
    assert answer[0] == 201
    assert answer[1][b"connection"] == b"close"
    assert server.raw == 1


def test_metrics_count_requests_the_protocol_answered(server: Server) -> None:
    """The request counter and the sessions counter see the protocol's answers."""
    with server.connect() as sock:
        for raw in (body(session()), body(session(userId="nope"))):
            sock.sendall(_put(raw))
            _answers(sock, 1)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        ((_, _, page),) = _answers(sock, 1)
    assert server.raw == 2
    text = page.decode()
    assert 'tallystick_http_requests_total{route="/v1/sessions",status="201"} 1.0' in text
    assert 'tallystick_http_requests_total{route="/v1/sessions",status="400"} 1.0' in text
    assert 'tallystick_sessions_total{outcome="stored"} 1.0' in text
    assert "tallystick_http_requests_in_flight 1.0" in text  # the /metrics request itself
