"""Wire contract v1 over real HTTP: every row of the contract with its exact status and body."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.api import Api, serve_in_thread
from sessions import body, session
from tallystick.storage import StorageUnavailable
from tallystick.storage.layout import decode_session, session_key
from tallystick.storage.local import LocalStore


def _stored(api: Api) -> list[str]:
    return [info.key for info in api.store.list("")]


def test_put_stores_session(api: Api) -> None:
    """201 with an empty body; the object is stored under its key with the server's ingestionTime."""
    value = session(ingestionTime="2000-01-01T00:00:00Z")
    answer = api.put(body(value))
    assert (answer.status, answer.body) == (201, b"")
    (key,) = _stored(api)
    stored = decode_session(api.store.get(key))
    assert stored.session_id == value["sessionId"]
    assert stored.ingestion_time is not None and stored.ingestion_time.year >= 2026
    assert key == session_key(stored)


def test_second_put_of_same_session_is_304(api: Api) -> None:
    """A duplicate upload answers 304 with an empty body and stores nothing new."""
    raw = body(session())
    assert api.put(raw).status == 201
    answer = api.put(raw)
    assert (answer.status, answer.body) == (304, b"")
    assert len(_stored(api)) == 1


def test_invalid_session_is_400_with_every_error(api: Api) -> None:
    """400 lists each violation with key, type, invalidValue and message; nothing is stored."""
    answer = api.put(body(session(sessionId="nope", events=[{"type": "A"}])))
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    payload = answer.json()
    assert payload["message"] == "The session is not valid."
    assert {
        "key": "events[0].time",
        "type": "required",
        "invalidValue": None,
        "message": "events[0].time is required",
    } in payload["validationErrors"]
    assert any(e["key"] == "sessionId" and e["invalidValue"] == "nope" for e in payload["validationErrors"])
    assert _stored(api) == []


def test_unregistered_application_is_400(api: Api) -> None:
    """An application the server does not know is rejected naming applicationId."""
    answer = api.put(body(session(applicationId="other")))
    assert answer.status == 400
    assert answer.json()["validationErrors"] == [
        {
            "key": "applicationId",
            "type": "registered",
            "invalidValue": "other",
            "message": "applicationId 'other' is not registered with this server",
        }
    ]
    assert _stored(api) == []


def test_malformed_json_is_400(api: Api) -> None:
    """A body that is not JSON gets 400 naming the body."""
    answer = api.put(b'{"sessionId": NaN}')
    assert answer.status == 400
    (error,) = answer.json()["validationErrors"]
    assert (error["key"], error["type"]) == ("", "json")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_allow(api: Api, method: str) -> None:
    """Other methods on /v1/sessions get 405, an Allow header and a JSON message."""
    answer = api.request(method, "/v1/sessions", b"{}", {"Content-Type": "application/json"})
    assert answer.status == 405
    assert answer.headers["allow"] == "PUT"
    assert answer.json() == {"message": f"{method} is not allowed on /v1/sessions: use PUT"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_is_415(api: Api, content_type: str) -> None:
    """Anything but application/json gets 415 with a message naming what was sent."""
    answer = api.put(body(session()), content_type=content_type)
    assert answer.status == 415
    assert answer.json() == {"message": f"Content-Type must be application/json, not {content_type or 'none'}"}


def test_json_with_charset_is_accepted(api: Api) -> None:
    """application/json; charset=utf-8 is JSON."""
    assert api.put(body(session()), content_type="application/json; charset=utf-8").status == 201


def test_unsupported_encoding_is_415(api: Api) -> None:
    """A Content-Encoding other than gzip is 415."""
    answer = api.put(body(session()), **{"Content-Encoding": "br"})
    assert answer.status == 415
    assert answer.json() == {"message": "Content-Encoding br is not supported: send identity or gzip"}


def test_gzip_body_is_accepted(api: Api) -> None:
    """A gzip-compressed session is decompressed and stored."""
    assert api.put(gzip.compress(body(session())), **{"Content-Encoding": "gzip"}).status == 201


def _padded(size: int) -> bytes:
    """A valid session of exactly ``size`` bytes, padded with events carrying long attributes."""
    event = {"type": "Pad", "time": "2026-05-01T10:00:00.500Z", "attributes": {"p": "x" * 4000}}
    value = session(events=[])
    while len(body(value)) + len(body(event)) + 2 < size - 200:
        value["events"].append(event)
    filler = size - len(body(value)) - len(body({"type": "Pad", "time": event["time"], "attributes": {"p": ""}})) - 2
    value["events"].append({**event, "attributes": {"p": "y" * filler}})
    raw = body(value)
    assert len(raw) == size, len(raw)
    return raw


def test_body_of_exactly_1_mib_is_accepted(api: Api) -> None:
    """The limit is inclusive: a 1 MiB session is stored."""
    assert api.put(_padded(1024 * 1024)).status == 201


def test_body_over_1_mib_is_413(api: Api) -> None:
    """One byte over the limit gets 413 and nothing is stored."""
    answer = api.put(_padded(1024 * 1024 + 1))
    assert answer.status == 413
    assert answer.json() == {"message": "request body is larger than 1048576 bytes"}
    assert _stored(api) == []


def test_gzip_bomb_is_413(api: Api) -> None:
    """The limit applies after decompression: a small gzip of a huge body is refused."""
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))
    answer = api.put(bomb, **{"Content-Encoding": "gzip"})
    assert answer.status == 413


class FailingStore(LocalStore):
    """A store whose writes fail: stands in for an unreachable bucket (no such outage can be made here on demand)."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        raise StorageUnavailable("bucket unreachable")

    async def put_if_absent_async(self, key: str, data: bytes) -> bool:
        raise StorageUnavailable("bucket unreachable")


@pytest.fixture
def failing_api(tmp_path: Path) -> Iterator[Api]:
    yield from serve_in_thread(FailingStore(tmp_path / "s"))


def test_storage_unavailable_is_503_with_retry_after(failing_api: Api) -> None:
    """When storage fails the answer is 503, the contract's message and a Retry-After."""
    answer = failing_api.put(body(session()))
    assert answer.status == 503
    assert answer.json() == {"message": "Could not process request"}
    assert int(answer.headers["retry-after"]) > 0


def test_ping(api: Api) -> None:
    """GET /ping answers pong."""
    answer = api.request("GET", "/ping")
    assert (answer.status, answer.body) == (200, b"pong")


def test_batch_answers_each_session_in_order(api: Api) -> None:
    """POST /v1/batches stores the good, flags the duplicate and the bad, in order."""
    good = session()
    bad = session(applicationVersion="?")
    answer = api.request(
        "POST", "/v1/batches", body({"sessions": [good, bad, good]}), {"Content-Type": "application/json"}
    )
    assert answer.status == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 400, 304] or [r["status"] for r in results] == [304, 400, 201]
    assert results[1]["sessionId"] == bad["sessionId"]
    assert results[1]["validationErrors"][0]["key"] == "applicationVersion"
    assert len(_stored(api)) == 1


def test_batch_over_100_sessions_is_400(api: Api) -> None:
    """A batch of 101 sessions is rejected whole."""
    answer = api.request(
        "POST", "/v1/batches", body({"sessions": [session() for _ in range(101)]}), {"Content-Type": "application/json"}
    )
    assert answer.status == 400
    assert answer.json()["validationErrors"][0]["type"] == "maxItems"
    assert _stored(api) == []


def test_concurrent_puts_of_one_session(api: Api) -> None:
    """50 concurrent PUTs of one session give exactly one 201 and 49 × 304."""
    raw = body(session())
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def put() -> None:
        barrier.wait(timeout=10)
        status = api.put(raw).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=put) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(statuses) == [201] + [304] * 49
    assert len(_stored(api)) == 1
    assert json.loads(gzip.decompress(api.store.get(_stored(api)[0])))["sessionId"] == json.loads(raw)["sessionId"]


def test_surrogate_key_is_400_not_500(api: Api) -> None:
    """A key holding an escaped unpaired surrogate gets a 400 naming it, with a UTF-8 error body."""
    answer = api.put(body(session()).replace(b'"shell"', b'"\\udfff"'))
    assert answer.status == 400
    keys = [e["key"] for e in answer.json()["validationErrors"]]
    assert "attributes.\\udfff" in keys
