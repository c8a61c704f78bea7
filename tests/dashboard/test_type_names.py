"""The dashboard's pages and APIs take event and span types with '-', '.' and ':' (as Batect sends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from batect_sessions import batect_session
from dashboard.conftest import serve
from tallystick import demo
from tallystick.storage.local import LocalStore

if TYPE_CHECKING:
    from dashboard.conftest import Served


@pytest.fixture(scope="module")
def punctuated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The dashboard over Batect-shaped sessions filed under the demo application, sent through ingest."""
    root = tmp_path_factory.mktemp("punctuated")
    store = LocalStore(root / "sessions", fsync=False)
    for s in serve(store, root / "warehouse.duckdb"):
        for i in range(40):
            tree = dict(batect_session(i, errors=i % 2, frames=15), applicationId=demo.APP)
            status, _, text = s.request(
                "PUT", "/v1/sessions", json.dumps(tree).encode(), {"Content-Type": "application/json"}
            )
            assert status == 201, text
        s.load()
        yield s


@pytest.mark.parametrize(
    "path",
    [
        "/api/explore?app={app}&metric=event.{event}",
        "/api/explore?app={app}&metric=span.{span}&view=compare",
        "/api/analyses/event-rate?app={app}&event={event}",
        "/api/analyses/timing?app={app}&span={span}",
        "/explore?app={app}&metric=event.{event}",
        "/analyses/event-rate?app={app}&event={event}",
    ],
)
def test_punctuated_types_are_answered(path: str, punctuated: Served) -> None:
    """Each page and API answers 200 for such a type and names it, escaped where it is HTML."""
    url = path.format(app=demo.APP, event=quote("docker:pull.retry"), span=quote("some-span"))
    status, headers, body = punctuated.request("GET", url)
    assert status == 200, body[:500]
    text = body.decode()
    if "event." in path or "event=" in path:
        assert "docker:pull.retry" in text
    else:
        assert "some-span" in text
    if headers["content-type"].startswith("application/json"):
        json.loads(body)
