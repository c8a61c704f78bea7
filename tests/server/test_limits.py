"""Backpressure: a bound on requests in flight (503) and an optional per-client rate limit (429)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from fixtures.api import Api
from sessions import body, session
from tallystick.server.limits import RateLimiter


def test_requests_beyond_max_in_flight_get_503_with_retry_after(api_with: Callable[..., Api]) -> None:
    """With max_in_flight=1, a second request while one is being received is answered 503 at once."""
    api = api_with(max_in_flight=1, busy_retry_after_seconds=2)
    raw = body(session())
    with socket.create_connection((api.host, api.port), timeout=5) as slow:
        slow.sendall(
            b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(raw)
            + raw[:20]
        )
        time.sleep(0.2)  # the slow request is now admitted and waits for its body
        answer = api.put(body(session()))
        assert answer.status == 503
        assert answer.headers["retry-after"] == "2"
        assert answer.json() == {"message": "The service is busy: retry after the number of seconds in Retry-After"}
        slow.sendall(raw[20:])
        assert slow.recv(65536).startswith(b"HTTP/1.1 201")
    assert api.put(body(session())).status == 201


def test_rate_limit_per_client_is_429_with_retry_after(api_with: Callable[..., Api]) -> None:
    """Past its burst, a client gets 429 with Retry-After; nothing is stored for it."""
    api = api_with(rate_limit_per_second=0.5, rate_limit_burst=2)
    statuses = [api.put(body(session())).status for _ in range(3)]
    assert statuses == [201, 201, 429]
    answer = api.put(body(session()))
    assert answer.status == 429
    assert int(answer.headers["retry-after"]) >= 1
    assert "Too many requests" in answer.json()["message"]
    assert len(list(api.store.list(""))) == 2


def test_rate_limiter_refills_and_forgets_quiet_clients() -> None:
    """Tokens refill with time; past max_clients, clients with full buckets are dropped from memory."""
    now = [0.0]
    limiter = RateLimiter(2.0, 2, max_clients=3, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 1]
    now[0] += 0.5
    assert limiter.retry_after("a") == 0
    for client in ("b", "c", "d"):
        limiter.retry_after(client)
    now[0] += 10
    limiter.retry_after("e")
    assert len(limiter) <= 3
