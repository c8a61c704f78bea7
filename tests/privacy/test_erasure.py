"""``POST /v1/erasures``: a user's own erasure, proven by a secret, with no oracle, against real processes."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from privacy.conftest import Server, declared, eventually, tallystick, tool_session
from tallystick.privacy.erasure import PREFIX as PENDING
from tallystick.privacy.tombstones import PREFIX as TOMBSTONES
from tallystick.schema._rules import ERASURE_COMMITMENT_ATTRIBUTE, erasure_commitment
from tallystick.storage import open_store
from tallystick.warehouse import open_warehouse

USER = "6b1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"
OTHER = "7c1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"
UNKNOWN = "8d1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"
SECRET = "5e" * 32
WRONG = "a7" * 32


def _session(user: str, secret: str | None, start: datetime | None = None) -> dict[str, Any]:
    """A session of ``user``, committed to ``secret`` (None: an old client's session, without commitment)."""
    start = start or datetime.now(UTC) - timedelta(minutes=5)
    attributes: dict[str, Any] = {"projectSize": 3, "osName": "Linux"}
    if secret is not None:
        attributes[ERASURE_COMMITMENT_ATTRIBUTE] = erasure_commitment(user, secret)
    return tool_session(
        userId=user,
        sessionStartTime=start.isoformat(),
        sessionEndTime=(start + timedelta(seconds=2)).isoformat(),
        attributes=attributes,
        events=[{"type": "UpdateNudgeShown", "time": start.isoformat(), "attributes": {"latestVersion": "2"}}],
        spans=[{"type": "LoadConfig", "startTime": start.isoformat(), "endTime": start.isoformat()}],
    )


def _erase(server: Server, user: str, secret: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """POST /v1/erasures; (status, headers but Date and X-Request-ID, raw body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        data = json.dumps({"userId": user, "secret": secret} if body is None else body).encode()
        connection.request("POST", "/v1/erasures", body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        varying = ("date", "x-request-id")  # differ between any two answers
        return response.status, {k: v for k, v in response.getheaders() if k.lower() not in varying}, response.read()
    finally:
        connection.close()


def _stored_users(url: str) -> list[str]:
    store = open_store(url)
    try:
        return sorted(json.loads(gzip.decompress(store.get(i.key)))["userId"] for i in store.list("sessions/"))
    finally:
        store.close()


def _rows(spec: str, user: str) -> dict[str, int]:
    """Rows of ``user`` in every table of the warehouse that has a userId column, derived tables included."""
    warehouse = open_warehouse(spec)
    try:
        if warehouse.dialect == "duckdb":
            tables = [
                r[0]
                for r in warehouse.query(
                    "SELECT table_name FROM information_schema.columns WHERE column_name = 'userId'"
                ).rows
            ]
        else:
            tables = ["sessions", "events", "spans"]
        counts = {}
        for table in sorted(tables):
            counts[table] = int(
                warehouse.query(f'SELECT count(*) FROM "{table}" WHERE "userId" = ?', [user]).rows[0][0]
            )
        if warehouse.dialect == "duckdb":  # sessions_daily keys users by a 64-bit hash of the ID
            key = warehouse.query("SELECT hash(?::VARCHAR)", [user]).rows[0][0]
            counts["sessions_daily"] = int(
                warehouse.query('SELECT count(*) FROM sessions_daily WHERE "userKey" = ?', [key]).rows[0][0]
            )
        return counts
    finally:
        warehouse.close()


def _load(url: str, spec: str) -> str:
    result = tallystick("load", "--storage", url, "--warehouse", spec)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_erasure_deletes_only_what_the_secret_proves_and_answers_alike(
    request: pytest.FixtureRequest, privacy_server: Callable[..., Server], tmp_path: Path, engine: str
) -> None:
    """Unknown user, wrong secret, right secret, already erased: one answer; only the right secret deletes."""
    spec = str(tmp_path / "w.duckdb") if engine == "duckdb" else request.getfixturevalue("clickhouse_spec")
    server = privacy_server(declared("strict", "erasure_burst = 20\n"))
    mine = [_session(USER, SECRET), _session(USER, SECRET, datetime.now(UTC) - timedelta(days=2))]
    legacy = _session(USER, None)  # sent by a client without commitments: not erasable this way
    theirs = _session(OTHER, SECRET)
    for s in (*mine, legacy, theirs):
        assert server.put(s)[0] == 201
    _load(server.storage, spec)
    before = _rows(spec, USER)
    assert before["sessions"] == 3 and before["events"] == 3 and before["spans"] == 3
    if engine == "duckdb":
        assert before["sessions_typed"] == 3 and before["sessions_daily"] >= 1

    answers = [_erase(server, UNKNOWN, SECRET), _erase(server, USER, WRONG), _erase(server, OTHER, WRONG)]
    _load(server.storage, spec)
    assert _rows(spec, USER) == before, "a wrong secret deleted something"
    assert _stored_users(server.storage) == [USER, USER, USER, OTHER]
    store = open_store(server.storage)
    try:
        assert list(store.list(TOMBSTONES)) == [], "an unproven erasure leaves no tombstone"
        assert len(list(store.list(PENDING))) == 3, "only pending requests, gone after they settle"
    finally:
        store.close()

    answers.append(_erase(server, USER, SECRET))
    out = _load(server.storage, spec)
    assert "erasure: 2 sessions" in out or "2 sessions and 2 objects" in out, out
    answers.append(_erase(server, USER, SECRET))  # already erased
    assert all(a == answers[0] for a in answers), answers
    status, _, body = answers[0]
    assert status == 202
    assert "deleted at the server's next load" in json.loads(body)["message"]

    after = _rows(spec, USER)
    assert after["sessions"] == after["events"] == after["spans"] == 1  # only the legacy session
    if engine == "duckdb":
        assert after["sessions_typed"] == 1
    assert _stored_users(server.storage) == [USER, OTHER]
    warehouse = open_warehouse(spec)
    try:
        kept = sorted(r[0] for r in warehouse.query('SELECT "sessionId" FROM sessions').rows)
    finally:
        warehouse.close()
    assert kept == sorted([legacy["sessionId"], theirs["sessionId"]])

    store = open_store(server.storage)
    try:
        kept_objects = [i.key for i in store.list(TOMBSTONES)] + [i.key for i in store.list(PENDING)]
        for key in kept_objects:
            assert SECRET not in store.get(key).decode() and WRONG not in store.get(key).decode()
    finally:
        store.close()


def test_a_session_queued_elsewhere_is_refused_after_the_erasure(
    privacy_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A session of the erased user and secret that started before the erasure is refused; later ones are not."""
    server = privacy_server(declared("open"))
    assert server.put(_session(USER, SECRET))[0] == 201  # sent before: the server can check the proof
    queued = _session(USER, SECRET)  # recorded on a second machine of the user, uploaded after the erasure
    assert _erase(server, USER, SECRET)[0] == 202
    _load(server.storage, str(tmp_path / "w.duckdb"))  # proven by the deletion: the tombstone is written

    def refused() -> bool:
        status, answer = server.put(queued)
        return status == 400 and answer["validationErrors"][0]["type"] == "deletedUser"

    eventually(refused, "ingest to see the erasure")
    assert server.put(_session(USER, WRONG))[0] == 201  # another commitment: not covered
    assert server.put(_session(USER, None))[0] == 201  # no commitment: not covered
    later = _session(USER, SECRET, datetime.now(UTC) + timedelta(seconds=5))
    assert server.put(later)[0] == 201


def test_replicas_sharing_a_bucket_agree_on_an_erasure(
    privacy_server: Callable[..., Server], s3_store_url: Callable[..., str], tmp_path: Path
) -> None:
    """An erasure sent to one replica makes the other refuse the user's old sessions too (S3, moto server)."""
    url = s3_store_url("erasure")
    first, second = privacy_server(declared("open"), storage=url), privacy_server(declared("open"), storage=url)
    assert second.put(_session(USER, SECRET))[0] == 201
    queued = _session(USER, SECRET)
    assert _erase(first, USER, SECRET)[0] == 202
    _load(url, str(tmp_path / "w.duckdb"))
    assert _stored_users(url) == []

    def refused() -> bool:
        status, answer = second.put(queued)
        return status == 400 and answer["validationErrors"][0]["type"] == "deletedUser"

    eventually(refused, "the second replica to read the tombstone")
    assert first.put(queued)[0] == 400


def test_malformed_erasure_requests_say_what_is_wrong_without_echoing_the_secret(
    privacy_server: Callable[..., Server],
) -> None:
    """A malformed request gets 400 naming each problem; a mistyped secret is never echoed back."""
    server = privacy_server(declared("open"))
    status, _, body = _erase(server, "", "", body={"userId": "jdoe", "secret": SECRET[:-1] + "G", "x": 1})
    assert status == 400
    errors = {e["key"]: e for e in json.loads(body)["validationErrors"]}
    assert errors["userId"]["type"] == "pattern"
    assert errors["secret"]["type"] == "pattern" and errors["secret"]["invalidValue"] is None
    assert errors["x"]["type"] == "unknownField"
    assert SECRET[:-1].encode() not in body
    status, _, body = _erase(server, "", "", body=[1])
    assert status == 400
    store = open_store(server.storage)
    try:
        assert list(store.list(TOMBSTONES)) == [] and list(store.list(PENDING)) == []
    finally:
        store.close()


def test_erasure_requests_are_rate_limited_per_client(privacy_server: Callable[..., Server]) -> None:
    """Past erasure_burst requests a client gets 429 with Retry-After, whatever the request."""
    server = privacy_server(declared("open", "erasure_burst = 2\nerasure_interval_seconds = 600\n"))
    assert [_erase(server, UNKNOWN, SECRET)[0] for _ in range(2)] == [202, 202]
    status, headers, _ = _erase(server, USER, SECRET)
    assert status == 429 and int(headers["retry-after"]) > 0


def test_an_unproven_request_leaves_nothing_once_settled(tmp_path: Path) -> None:
    """A request matching no stored session writes no tombstone, and its pending object goes after settling."""
    import asyncio

    from tallystick.privacy import erasure
    from tallystick.privacy.tombstones import Tombstones

    store = open_store((tmp_path / "sessions").as_uri())
    warehouse = open_warehouse(str(tmp_path / "w.duckdb"))
    try:
        wanted = erasure.request_for(UNKNOWN, SECRET, datetime.now(UTC))
        asyncio.run(erasure.record(store, Tombstones(store), wanted))
        assert [key for key, _ in erasure.pending(store)] == [wanted.key]
        first = erasure.process_pending(store, warehouse)
        assert (first.requests, first.sessions, first.settled) == (1, 0, 0)
        later = wanted.requested_at + timedelta(seconds=erasure.SETTLE_SECONDS + 1)
        assert erasure.process_pending(store, warehouse, now=later).settled == 1
        assert erasure.pending(store) == [] and list(store.list(TOMBSTONES)) == []
    finally:
        warehouse.close()
        store.close()
