"""POST /v1/batches: one result per session, limits per session, and all-or-503 on storage failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.api import Api, serve_in_thread
from sessions import body, session
from tallystick.storage import StorageUnavailable
from tallystick.storage.local import LocalStore


def _post(api: Api, raw: bytes) -> Any:
    answer = api.request("POST", "/v1/batches", raw, {"Content-Type": "application/json"})
    return answer.status, answer.json()


def test_bad_session_does_not_cost_the_others(api: Api) -> None:
    """An invalid session gets its own 400 with validationErrors; the valid ones are stored."""
    good, bad, other = session(), session(userId="nope"), session()
    status, answer = _post(api, body({"sessions": [good, bad, other]}))
    assert status == 200
    results = answer["results"]
    assert [r["status"] for r in results] == [201, 400, 201]
    assert [r["sessionId"] for r in results] == [good["sessionId"], bad["sessionId"], other["sessionId"]]
    assert results[1]["validationErrors"][0]["key"] == "userId"
    assert "validationErrors" not in results[0]
    assert len(list(api.store.list(""))) == 2


def test_session_with_duplicate_key_in_a_batch_is_400_alone(api: Api) -> None:
    """A duplicate key inside one session fails that session only (the fast path does not vouch for it)."""
    dup = body(session()).replace(b'"shell": "fish"', b'"shell": "fish", "shell": "zsh"')
    raw = b'{"sessions": [' + dup + b", " + body(session()) + b"]}"
    status, answer = _post(api, raw)
    assert status == 200
    assert [r["status"] for r in answer["results"]] == [400, 201]
    assert answer["results"][0]["validationErrors"][0]["type"] == "duplicateKey"


def test_sessions_key_given_twice_is_400(api: Api) -> None:
    """A batch with two "sessions" keys is rejected whole, naming the duplicate."""
    raw = b'{"sessions": [], "sessions": [' + body(session()) + b"]}"
    status, answer = _post(api, raw)
    assert status == 400
    assert answer["validationErrors"][0]["type"] == "duplicateKey"
    assert list(api.store.list("")) == []


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        pytest.param(b"[]", "type", id="not-an-object"),
        pytest.param(b'{"sessions": {}}', "required", id="sessions-not-array"),
        pytest.param(b'{"sessions": [], "extra": 1}', "unknownField", id="unknown-field"),
        pytest.param(b'{"sessions": [', "json", id="truncated"),
    ],
)
def test_malformed_batches_are_400(api: Api, raw: bytes, rule: str) -> None:
    """A batch that is not {"sessions": [...]} is rejected whole, naming the rule."""
    status, answer = _post(api, raw)
    assert status == 400
    assert answer["validationErrors"][0]["type"] == rule


def test_session_over_the_size_limit_in_a_batch_is_400_alone(api_with: Callable[..., Api]) -> None:
    """Each session of a batch is held to max_body_bytes on its own."""
    api = api_with(max_body_bytes=2048)
    big = session(attributes={"pad": "x" * 3000})
    status, answer = _post(api, body({"sessions": [session(), big]}))
    assert status == 200
    assert [r["status"] for r in answer["results"]] == [201, 400]
    error = answer["results"][1]["validationErrors"][0]
    assert (error["type"], error["message"]) == (
        "maxBytes",
        "this session is larger than 2048 bytes, the limit for one",
    )


def test_numbers_beyond_64_bits_take_the_full_path(api: Api) -> None:
    """A session the fast path cannot read (1e400) still gets its precise error at its path."""
    raw = body(session()).replace(b'"projectSize": 12', b'"projectSize": 1e400')
    status, answer = _post(api, b'{"sessions": [' + raw + b", " + body(session()) + b"]}")
    assert status == 200
    assert [r["status"] for r in answer["results"]] == [400, 201]
    assert answer["results"][0]["validationErrors"][0]["key"] == "attributes.projectSize"


class BrokenStore(LocalStore):
    """Writes fail, as with an unreachable bucket."""

    async def put_if_absent_async(self, key: str, data: bytes) -> bool:
        raise StorageUnavailable("bucket unreachable")


@pytest.fixture
def broken_api(tmp_path: Path) -> Iterator[Api]:
    yield from serve_in_thread(BrokenStore(tmp_path / "s"))


def test_storage_failure_fails_the_whole_batch_with_503(broken_api: Api) -> None:
    """If storage fails, the batch answer is 503 with Retry-After: the client retries it all (duplicates are 304)."""
    answer = broken_api.request(
        "POST", "/v1/batches", body({"sessions": [session(), session()]}), {"Content-Type": "application/json"}
    )
    assert answer.status == 503
    assert json.loads(answer.body) == {"message": "Could not process request"}
    assert int(answer.headers["retry-after"]) > 0


def test_retried_batch_answers_304_for_stored_sessions(api: Api) -> None:
    """Sending the same batch again answers 304 for each session."""
    raw = body({"sessions": [session(), session()]})
    assert [r["status"] for r in _post(api, raw)[1]["results"]] == [201, 201]
    assert [r["status"] for r in _post(api, raw)[1]["results"]] == [304, 304]
