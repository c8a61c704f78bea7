"""Slow request headers (slowloris) get 408 and the connection is closed."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from fixtures.api import Api
from sessions import body, session


def _read_all(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data + b"<still open>"
    return data


def test_headers_trickling_in_get_408_and_close(api_with: Callable[..., Api]) -> None:
    """Headers not complete within header_timeout_seconds: 408 with a JSON message, then the connection closes."""
    api = api_with(header_timeout_seconds=0.3)
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\n")
        answer = _read_all(sock, 3)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert answer.endswith(b'{"message": "request headers took too long: send them in one go"}')
    assert time.monotonic() - started < 2


def test_silent_connection_is_closed(api_with: Callable[..., Api]) -> None:
    """A connection that never sends a byte is closed after the header deadline."""
    api = api_with(header_timeout_seconds=0.3)
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        answer = _read_all(sock, 3)
    assert b"<still open>" not in answer


def test_kept_alive_connection_serves_requests_after_the_header_deadline(api_with: Callable[..., Api]) -> None:
    """The header deadline restarts with each request: a keep-alive connection used slowly keeps working."""
    api = api_with(header_timeout_seconds=0.3)
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        for _ in range(2):
            raw = body(session())
            sock.sendall(
                b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)
            )
            assert sock.recv(65536).startswith(b"HTTP/1.1 201")
            time.sleep(0.5)
