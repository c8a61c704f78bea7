"""Prometheus metrics of one ingest app, in a registry of its own (tests create many apps).

| metric                                          | labels          |
|-------------------------------------------------|-----------------|
| tallystick_http_requests_total                  | route, status   |
| tallystick_http_request_duration_seconds        | route           |
| tallystick_http_requests_in_flight              |                 |
| tallystick_sessions_total                       | outcome: stored, duplicate, invalid |
| tallystick_validation_failures_total            | rule (``validationErrors[].type``) |
| tallystick_requests_refused_total               | reason: busy, rate_limited, storage |

Routes are the API's own paths or ``other``, so a scanner cannot grow the label set.

The three HTTP metrics are updated on every request, so they are plain numbers here (a dict
entry and a list slot per request, no lock: one event loop updates them) that a collector
turns into Prometheus families when ``/metrics`` is read; prometheus-client's own counter,
histogram and gauge cost a request several microseconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LE = (*map(floatToGoString, _BUCKETS), "+Inf")


class _Requests:
    """The requests counter and duration histogram, as plain numbers (see the module docstring)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}  # per route: requests per bucket (not cumulative), then +Inf
        self.sums: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tallystick_http_requests", "HTTP requests answered, by route and status.", labels=["route", "status"]
        )
        for (route, status), count in sorted(self.counts.items()):
            requests.add_metric([route, str(status)], count)
        duration = HistogramMetricFamily(
            "tallystick_http_request_duration_seconds",
            "Time from request start to the end of the answer, by route.",
            labels=["route"],
        )
        for route, counts in sorted(self.buckets.items()):
            cumulative, buckets = 0, []
            for le, count in zip(_LE, counts, strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            duration.add_metric([route], buckets, self.sums[route])
        return iter((requests, duration))

    def describe(self) -> Iterator[Metric]:
        return self.collect()


class Metrics:
    """The counters the app updates; ``render()`` is the ``/metrics`` page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = _Requests()
        r.register(self._requests)
        self.in_flight = 0  # HTTP requests being handled now (Edge counts them)
        Gauge("tallystick_http_requests_in_flight", "HTTP requests being handled now.", registry=r).set_function(
            lambda: self.in_flight
        )
        self.sessions = Counter("tallystick_sessions", "Sessions received, by outcome.", ["outcome"], registry=r)
        self.validation_failures = Counter(
            "tallystick_validation_failures", "Violations reported in 400 answers, by rule.", ["rule"], registry=r
        )
        self.refused = Counter(
            "tallystick_requests_refused",
            "Requests answered 503 or 429 without storing, by reason.",
            ["reason"],
            registry=r,
        )
        for outcome in ("stored", "duplicate", "invalid"):
            self.sessions.labels(outcome)
        for reason in ("busy", "rate_limited", "storage"):
            self.refused.labels(reason)

    def request_done(self, route: str, status: int, seconds: float) -> None:
        requests = self._requests
        key = (route, status)
        requests.counts[key] = requests.counts.get(key, 0) + 1
        buckets = requests.buckets.get(route)
        if buckets is None:
            buckets = requests.buckets[route] = [0] * len(_LE)
            requests.sums[route] = 0.0
        buckets[bisect_left(_BUCKETS, seconds)] += 1  # the first bucket whose bound is >= seconds (le)
        requests.sums[route] += seconds

    def render(self) -> bytes:
        return generate_latest(self.registry)
