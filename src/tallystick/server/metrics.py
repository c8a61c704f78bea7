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
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters the app updates; ``render()`` is the ``/metrics`` page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tallystick_http_requests", "HTTP requests answered, by route and status.", ["route", "status"], registry=r
        )
        self.duration = Histogram(
            "tallystick_http_request_duration_seconds",
            "Time from request start to the end of the answer, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("tallystick_http_requests_in_flight", "HTTP requests being handled now.", registry=r)
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
        self._children: dict[tuple[str, ...], MetricWrapperBase] = {}
        for outcome in ("stored", "duplicate", "invalid"):
            self.sessions.labels(outcome)
        for reason in ("busy", "rate_limited", "storage"):
            self.refused.labels(reason)

    def request_done(self, route: str, status: int, seconds: float) -> None:
        key = (route, str(status))
        counter = self._children.get(key)
        if counter is None:
            counter = self._children[key] = self.requests.labels(route, str(status))
        counter.inc()  # type: ignore[attr-defined]
        hist = self._children.get((route,))
        if hist is None:
            hist = self._children[(route,)] = self.duration.labels(route)
        hist.observe(seconds)  # type: ignore[attr-defined]

    def render(self) -> bytes:
        return generate_latest(self.registry)
