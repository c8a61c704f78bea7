"""Batect's own client sends to Tallystick unchanged: its sessions are accepted and stored as sent."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest

from batect_sessions import APPLICATION, SPEC_SHAPED, corpus
from fixtures.api import Api
from tallystick.schema import _rules
from tallystick.storage.layout import decode_session, session_key


def _stored(api: Api, tree: dict[str, Any]) -> dict[str, Any]:
    key = session_key(decode_session(_object(api, tree)))
    assert key.endswith(f"/{tree['sessionId']}.json.gz")
    return json.loads(gzip.decompress(_object(api, tree)))


def _object(api: Api, tree: dict[str, Any]) -> bytes:
    (key,) = [info.key for info in api.store.list("sessions/") if tree["sessionId"] in info.key]
    return api.store.get(key)


@pytest.fixture
def batect_api(api_with: Callable[..., Api]) -> Api:
    return api_with(applications=frozenset({APPLICATION}))


def test_every_batect_shaped_session_is_201(batect_api: Api) -> None:
    """The corpus (hyphenated types, nanosecond times with offsets, 5-36k-character stack traces) is accepted whole."""
    sessions = corpus()
    assert max(len(e["attributes"].get("exception", "")) for s in sessions for e in s["events"]) > 30_000
    for tree in sessions:
        answer = batect_api.put(json.dumps(tree).encode())
        assert answer.status == 201, answer.body
        assert batect_api.put(json.dumps(tree).encode()).status == 304


def test_stored_object_keeps_the_timestamps_as_sent(batect_api: Api) -> None:
    """Nanoseconds and offsets survive storage; only ingestionTime is added; nothing else changes."""
    for tree in corpus():
        assert batect_api.put(b" \n\t" + json.dumps(tree, indent=2).encode() + b"\n").status == 201
        stored = _stored(batect_api, tree)
        assert stored.pop("ingestionTime")
        assert stored == tree


def test_missing_collections_are_stored_as_empty(batect_api: Api) -> None:
    """A session without attributes, events or spans is stored with {} and [] (as Abacus stores them)."""
    tree = {k: v for k, v in SPEC_SHAPED.items() if k not in ("attributes", "events", "spans")}
    tree["sessionId"] = "1b2c3d4e-5f60-4718-a9b0-c1d2e3f40516"
    assert batect_api.put(json.dumps(tree).encode()).status == 201
    stored = _stored(batect_api, tree)
    assert (stored["attributes"], stored["events"], stored["spans"]) == ({}, [], [])
    assert stored["sessionStartTime"] == "2020-08-07T03:49:10.000000678Z"


def test_null_collections_and_a_sent_ingestion_time_take_the_full_validator_and_are_stored_the_same(
    batect_api: Api,
) -> None:
    """The slow path (null fields, a client's ingestionTime) stores the timestamps as sent, too."""
    tree = dict(SPEC_SHAPED, spans=None, ingestionTime="2020-01-01T00:00:00.000000001Z")
    tree["sessionId"] = "2b2c3d4e-5f60-4718-a9b0-c1d2e3f40516"
    assert batect_api.put(json.dumps(tree).encode()).status == 201
    stored = _stored(batect_api, tree)
    assert stored["spans"] == []
    assert stored["ingestionTime"] != tree["ingestionTime"]  # the server's clock decides
    assert stored["events"] == SPEC_SHAPED["events"]
    assert stored["sessionEndTime"] == "2020-08-07T03:51:11.000000678Z"


def test_attribute_length_limit_is_configurable(api_with: Callable[..., Api]) -> None:
    """max_attribute_chars lowers (or raises) the per-value limit; the error names the attribute."""
    api = api_with(applications=frozenset({APPLICATION}), max_attribute_chars=1000)
    long_one = next(s for s in corpus() if any("exception" in e["attributes"] for e in s["events"]))
    answer = api.put(json.dumps(long_one).encode())
    assert answer.status == 400
    errors = answer.json()["validationErrors"]
    assert {e["type"] for e in errors} == {"maxLength"}
    assert all(e["key"].endswith(".attributes.exception") for e in errors)
    assert errors[0]["message"].endswith("must be at most 1000 characters")
    limit = _rules.ATTRIBUTE_VALUE_MAX_LENGTH * 4
    roomy = api_with(applications=frozenset({APPLICATION}), max_body_bytes=limit * 2, max_attribute_chars=limit)
    huge = dict(SPEC_SHAPED, attributes={"exception": "\tat x.Y.z(Y.kt:1)\n" * 20_000})
    assert len(huge["attributes"]["exception"]) > _rules.ATTRIBUTE_VALUE_MAX_LENGTH
    assert roomy.put(json.dumps(huge).encode()).status == 201


def test_default_limit_refuses_a_value_over_it_with_a_clear_error(batect_api: Api) -> None:
    """Past the default limit (256 Ki code points) a value is refused as maxLength, naming the key."""
    over = dict(SPEC_SHAPED, attributes={"exception": "é" * (_rules.ATTRIBUTE_VALUE_MAX_LENGTH + 1)})
    answer = batect_api.put(json.dumps(over, ensure_ascii=False).encode())
    assert answer.status == 400
    assert [(e["key"], e["type"]) for e in answer.json()["validationErrors"]] == [("attributes.exception", "maxLength")]
    at_limit = dict(over, attributes={"exception": "é" * _rules.ATTRIBUTE_VALUE_MAX_LENGTH})
    assert batect_api.put(json.dumps(at_limit, ensure_ascii=False).encode()).status == 201


def test_batch_of_batect_sessions_is_201_each(batect_api: Api) -> None:
    """The batch endpoint takes the same sessions and stores them as sent."""
    sessions = corpus()
    answer = batect_api.request(
        "POST", "/v1/batches", json.dumps({"sessions": sessions}).encode(), {"Content-Type": "application/json"}
    )
    assert answer.status == 200
    assert [r["status"] for r in answer.json()["results"]] == [201] * len(sessions)
    stored = _stored(batect_api, sessions[4])
    assert stored["sessionStartTime"] == sessions[4]["sessionStartTime"]
