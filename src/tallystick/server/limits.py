"""Backpressure: a bound on ingest requests in flight, and an optional per-client rate limit.

Both answer at once instead of queueing: past ``max_in_flight`` a request gets 503
with a short Retry-After, past its client's token bucket it gets 429. The client
addresses of the rate limit live only in this process's memory, are never logged,
and are forgotten once their bucket is full again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Admission:
    """At most ``limit`` requests at once (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


class RateLimiter:
    """Token buckets per client: ``rate`` requests per second on average, bursts of ``burst``.

    At most ``max_clients`` buckets are kept: past that, full buckets (clients quiet
    long enough) are dropped, and if that is not enough, all are, so memory stays
    bounded even under a flood of distinct addresses.
    """

    def __init__(
        self, rate: float, burst: int, *, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, client: str) -> int:
        """0 and one token taken if ``client`` may go on, else whole seconds until it may."""
        now = self.clock()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_clients:
            self._forget_quiet(now)
        return 0

    def _forget_quiet(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < full_after}
        if len(self._buckets) > self.max_clients:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
