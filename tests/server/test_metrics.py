"""GET /metrics: Prometheus text with requests, outcomes, rules, latency and in-flight."""

from __future__ import annotations

import re

from fixtures.api import Api
from sessions import body, session
from tallystick.server.metrics import Metrics


def _value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} not in metrics"
    return float(match.group(1))


def test_metrics_count_what_happened(api: Api) -> None:
    """A 201, a 304 and a 400 show up by route and status, by outcome and by broken rule."""
    raw = body(session())
    api.put(raw)
    api.put(raw)
    api.put(body(session(applicationVersion="banana")))
    answer = api.request("GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.body.decode()
    for status in ("201", "304", "400"):
        assert _value(text, f'tallystick_http_requests_total{{route="/v1/sessions",status="{status}"}}') == 1
    assert _value(text, 'tallystick_sessions_total{outcome="stored"}') == 1
    assert _value(text, 'tallystick_sessions_total{outcome="duplicate"}') == 1
    assert _value(text, 'tallystick_sessions_total{outcome="invalid"}') == 1
    assert _value(text, 'tallystick_validation_failures_total{rule="pattern"}') == 1
    assert _value(text, 'tallystick_http_request_duration_seconds_count{route="/v1/sessions"}') == 3
    assert _value(text, "tallystick_http_requests_in_flight") == 1  # this very request


def test_unknown_paths_share_one_label(api: Api) -> None:
    """Scanning random paths cannot grow the label set: they all count as route="other"."""
    for i in range(5):
        api.request("GET", f"/probe/{i}")
    text = api.request("GET", "/metrics").body.decode()
    assert _value(text, 'tallystick_http_requests_total{route="other",status="404"}') == 5
    assert "/probe/" not in text


def test_each_app_has_its_own_registry() -> None:
    """Two Metrics objects do not share counters (tests and embedders create many apps)."""
    first, second = Metrics(), Metrics()
    first.request_done("/ping", 200, 0.001)
    assert b'route="/ping"' in first.render()
    assert b'route="/ping"' not in second.render()
