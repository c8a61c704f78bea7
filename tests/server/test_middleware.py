"""Every answer carries the security headers and a request ID."""

from __future__ import annotations

import pytest

from fixtures.api import Api
from sessions import body, session


@pytest.mark.parametrize(
    ("method", "path", "data", "status"),
    [
        pytest.param("PUT", "/v1/sessions", body(session()), 201, id="created"),
        pytest.param("PUT", "/v1/sessions", b"{}", 400, id="invalid"),
        pytest.param("GET", "/v1/sessions", None, 405, id="wrong-method"),
        pytest.param("GET", "/nowhere", None, 404, id="not-found"),
        pytest.param("GET", "/metrics", None, 200, id="metrics"),
    ],
)
def test_security_headers_on_every_answer(api: Api, method: str, path: str, data: bytes | None, status: int) -> None:
    """No framing, CSP default-src 'none', no referrer, no sniffing, not cached."""
    answer = api.request(method, path, data, {"Content-Type": "application/json"})
    assert answer.status == status
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_request_id_is_echoed_or_made(api: Api) -> None:
    """A plain X-Request-ID is echoed; a missing or odd one is replaced by a fresh, distinct ID."""
    assert api.request("GET", "/ping", None, {"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = {api.request("GET", "/ping", None, {"X-Request-ID": "bad id!"}).headers["x-request-id"] for _ in range(3)}
    assert len(made) == 3 and "bad id!" not in made


def test_unknown_path_is_404_with_a_hint(api: Api) -> None:
    """A path the API does not have says where to look."""
    answer = api.request("GET", "/v2/sessions")
    assert answer.json() == {"message": "/v2/sessions is not a path of this API: see /openapi.json"}
