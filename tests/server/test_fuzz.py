"""A bounded fuzz run over the ingest API: hostile bodies and headers never get a 5xx.

Beside schemathesis' run from the OpenAPI document (``test_openapi.py``), which generates
requests the document describes, this sends what it does not: random bytes, JSON of any
shape, real sessions with one field replaced by anything, gzip that lies, odd content types
and encodings, to every ingest endpoint. Every answer must be below 500 and carry the
security headers.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.api import Api, serve_in_thread
from sessions import session
from tallystick.storage.local import LocalStore

# In CI the examples are the same on every run (a red run must be reproducible, not a draw); elsewhere each
# run draws new ones, to find what CI's never try.
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=os.environ.get("CI") == "true"
)
SECURITY = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_sessions(draw: st.DrawFn, values: st.SearchStrategy[Any] = json_values) -> dict[str, Any]:
    """A valid session with one field, at any depth, replaced by one of ``values`` (or removed)."""
    value = session()
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(value, [])
    path = draw(st.sampled_from(paths[1:]))
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(values)
    return value


def _encode(body: bytes, encoding: str | None, lie: bool) -> bytes:
    if encoding == "gzip":
        packed = gzip.compress(body)
        return packed[: len(packed) // 2] if lie else packed
    if encoding == "deflate":
        return zlib.compress(body)
    return body


bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_sessions().map(lambda v: json.dumps(v).encode()),
    mutated_sessions().map(lambda v: json.dumps(v).encode()[:-3]),  # cut short
    mutated_sessions().map(lambda v: json.dumps({"sessions": [v, v]}).encode()),
    st.just(b'{"sessionId": "a", "sessionId": "b"}'),
    st.just(b"[" * 5000 + b"]" * 5000),
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/json; charset=latin-1", "text/plain", ""]
) | st.text(max_size=30).filter(lambda t: t.isprintable() and t.isascii())
encodings = st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, gzip", "x-unknown"])
targets = st.sampled_from([("PUT", "/v1/sessions"), ("POST", "/v1/batches"), ("POST", "/v1/erasures")])


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    yield from serve_in_thread(LocalStore(root / "sessions", fsync=False))


@FUZZ
@given(target=targets, body=bodies, content_type=content_types, encoding=st.tuples(encodings, st.booleans()))
def test_ingest_never_answers_5xx(
    fuzzed_api: Api, target: tuple[str, str], body: bytes, content_type: str, encoding: tuple[str | None, bool]
) -> None:
    """Whatever the body, content type and encoding (true or not), the answer is below 500 with the security headers."""
    headers = {"Content-Type": content_type} if content_type else {}
    name, lie = encoding
    if name is not None:
        headers["Content-Encoding"] = name
    method, path = target
    answer = fuzzed_api.request(method, path, _encode(body, name, lie), headers)
    assert answer.status < 500, (answer.status, answer.body[:300])
    assert all(h in answer.headers for h in SECURITY)
