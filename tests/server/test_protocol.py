"""Request headers are bounded in time (slowloris: 408), bytes and count (431); the connection is then closed."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.api import Api, serve_in_thread
from sessions import body, session
from tallystick.storage.local import LocalStore


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


def test_later_request_trickling_on_a_kept_alive_connection_gets_408_on_its_own_clock(
    api_with: Callable[..., Api],
) -> None:
    """The clock of a later request starts at its first byte, not at the connection's start."""
    api = api_with(header_timeout_seconds=0.5)
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        raw = body(session())
        sock.sendall(
            b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 201")
        time.sleep(0.3)
        started = time.monotonic()
        sock.sendall(b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\n")
        answer = _read_all(sock, 3)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 0.45 <= waited < 2, waited


MiB = 1024 * 1024
PUT_HEAD = b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def _put(raw: bytes, extra: bytes = b"") -> bytes:
    return PUT_HEAD + extra + b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)


def _flood_header(port: int, size: int, seconds: float = 30) -> bytes:
    """Stream a PUT whose one header is ``size`` bytes; the server's whole answer (b"" if none)."""
    chunk = b"a" * MiB
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(PUT_HEAD + b"X-Big: ")
        sock.setblocking(False)
        sent, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
                if not data:
                    return answer
                answer += data
                continue
            except BlockingIOError:
                pass
            except ConnectionResetError:
                return answer
            try:
                if sent < size:
                    sent += sock.send(chunk[: size - sent])
                elif sent == size:
                    sent += sock.send(b"\r\nContent-Length: 2\r\n\r\n{}")
                else:
                    time.sleep(0.005)
            except BlockingIOError:
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError):
                sent = size + 1
    return answer + b"<still open>"


def test_headers_at_the_limit_are_accepted_one_byte_more_is_431(api_with: Callable[..., Api]) -> None:
    """Headers under max_header_bytes (request line included) pass; past it, in one read or many, 431."""
    api = api_with(max_header_bytes=4096)
    raw = body(session())
    fixed = len(_put(raw, b"X-Pad: \r\n")) - len(raw) - 4  # everything before the blank line ending the headers
    for pad, status in ((4096 - fixed - 64, b"201"), (4096 - fixed + 64, b"431"), (4096 - fixed + 300_000, b"431")):
        with socket.create_connection((api.host, api.port), timeout=5) as sock:
            sock.sendall(_put(body(session()), b"X-Pad: %s\r\n" % (b"p" * pad)))
            answer = _read_all(sock, 3)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]
    assert answer.endswith(b'{"message": "request headers too large: at most 4096 bytes and 100 header lines"}')


def test_too_many_header_lines_get_431(api_with: Callable[..., Api]) -> None:
    """More than max_headers header lines: 431, even when each is tiny."""
    api = api_with(max_headers=20)
    for count, status in ((17, b"201"), (21, b"431")):  # 3 more: Host, Content-Type, Content-Length
        extra = b"".join(b"X-H%d: 1\r\n" % i for i in range(count))
        with socket.create_connection((api.host, api.port), timeout=5) as sock:
            sock.sendall(_put(body(session()), extra))
            answer = _read_all(sock, 3)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:300]


def test_header_count_restarts_with_each_request_on_a_kept_alive_connection(api_with: Callable[..., Api]) -> None:
    """Many requests on one connection, each with headers near the limit, all pass."""
    api = api_with(max_header_bytes=2048)
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        for _ in range(5):
            sock.sendall(_put(body(session()), b"X-Pad: %s\r\n" % (b"p" * 1800)))
            assert sock.recv(65536).startswith(b"HTTP/1.1 201")


def test_huge_headers_get_431_with_flat_memory_while_others_are_served(server_process: Callable[..., Any]) -> None:
    """One 100 MiB header, then 20 x 40 MiB at once: each gets 431, RSS stays flat, a normal PUT is served."""
    server = server_process()
    before = server.rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], server.rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    latencies: list[float] = []
    try:
        assert _flood_header(server.port, 100 * MiB).startswith(b"HTTP/1.1 431")
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            floods = [pool.submit(_flood_header, server.port, 40 * MiB) for _ in range(20)]
            while len(latencies) < 3 or not all(f.done() for f in floods):
                started = time.monotonic()
                answer = urllib.request.urlopen(
                    urllib.request.Request(
                        f"{server.url}/v1/sessions",
                        data=body(session()),
                        method="PUT",
                        headers={"Content-Type": "application/json"},
                    ),
                    timeout=30,
                )
                assert answer.status == 201
                latencies.append(time.monotonic() - started)
            answers = [f.result() for f in floods]
    finally:
        done.set()
        sampler.join()
    assert all(a.startswith(b"HTTP/1.1 431") for a in answers), [a[:40] for a in answers]
    growth = peak[0] - before
    print(
        f"header flood: RSS {before / 1e6:.0f} MB -> peak {peak[0] / 1e6:.0f} MB; a normal PUT meanwhile took "
        f"max {max(latencies, default=0) * 1000:.0f} ms over {len(latencies)} PUTs"
    )
    assert growth < 50 * 1000 * 1000, growth
    assert max(latencies, default=0) < 5.0  # loose: it was 9.4 s; the bench-free sanity bound


def test_answers_the_protocol_writes_itself_carry_the_security_headers(api_with: Callable[..., Api]) -> None:
    """408, 431 and a malformed request's 400 are written below the app, with the same security headers."""
    api = api_with(header_timeout_seconds=0.3, max_header_bytes=2048)
    sends = {
        b"408": b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\n",
        b"431": b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 4096 + b"\r\n\r\n",
        b"400": b"NOT A REQUEST\r\n\r\n",
    }
    for status, raw in sends.items():
        with socket.create_connection((api.host, api.port), timeout=5) as sock:
            sock.sendall(raw)
            answer = _read_all(sock, 3)
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 " + status), answer[:200]
        for name in (b"content-security-policy", b"x-frame-options", b"x-content-type-options", b"referrer-policy"):
            assert name + b": " in head, (status, name)


@pytest.fixture
def short_keep_alive(tmp_path: Path) -> Iterator[Api]:
    """The API in a thread with a keep-alive timeout of 0.4 s (``make_server``'s is 15 s)."""
    yield from serve_in_thread(LocalStore(tmp_path / "sessions"), timeout_keep_alive=0.4)


def _put_on(sock: socket.socket) -> bytes:
    raw = body(session())
    sock.sendall(
        b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)
    )
    return sock.recv(65536)


def test_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(short_keep_alive: Api) -> None:
    """After an answer, a connection that sends nothing more is closed once the keep-alive timeout has passed
    since its last answer, not since an earlier one (one timer per connection, not one per answer)."""
    api = short_keep_alive
    with socket.create_connection((api.host, api.port), timeout=5) as sock:
        for _ in range(3):  # busy for longer than the timeout: each answer restarts the idle clock
            assert _put_on(sock).startswith(b"HTTP/1.1 201")
            time.sleep(0.25)
        assert _put_on(sock).startswith(b"HTTP/1.1 201")
        answered = time.monotonic()
        answer = _read_all(sock, 3)
        waited = time.monotonic() - answered
    assert answer == b"", answer  # closed by the server, with nothing more said
    assert 0.35 <= waited < 2, waited
