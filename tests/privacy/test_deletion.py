"""`tallystick delete-user`: no row or object of the user remains, others are untouched, re-running deletes nothing."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privacy.conftest import Server, declared, eventually, tallystick, tool_session
from sessions import session
from tallystick.privacy.tombstones import PREFIX as TOMBSTONES
from tallystick.privacy.tombstones import user_digest
from tallystick.storage import Store, open_store
from tallystick.warehouse import Warehouse, open_warehouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put

USER = "6b1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"
OTHER = "7c1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"


def _users_in_store(store: Store) -> list[str]:
    return sorted(json.loads(gzip.decompress(store.get(i.key)))["userId"] for i in store.list("sessions/"))


def _rows_of(warehouse: Warehouse, session_ids: list[str], loaded: bool = True) -> int:
    marks = ", ".join("?" for _ in session_ids)
    total = 0
    for table in ("sessions", "events", "spans", *(("_tallystick_loaded",) if loaded else ())):
        sql = f'SELECT count(*) FROM {table} WHERE "sessionId" IN ({marks})'
        total += int(warehouse.query(sql, list(session_ids)).rows[0][0])
    return total


@pytest.mark.parametrize("storage", ["local", "s3"])
@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_delete_user_everywhere(request: pytest.FixtureRequest, tmp_path: Path, storage: str, engine: str) -> None:
    """After delete-user no object or row of the user remains on this storage and engine; a re-run deletes nothing."""
    url = (tmp_path / "sessions").as_uri() if storage == "local" else request.getfixturevalue("s3_store_url")("t")
    spec = str(tmp_path / "w.duckdb") if engine == "duckdb" else request.getfixturevalue("clickhouse_spec")
    store = open_store(url)
    mine = [session(userId=USER), session(userId=USER, sessionStartTime="2026-04-01T00:00:00Z")]
    theirs = [session(userId=OTHER), session(userId=OTHER)]
    for s in (mine[0], *theirs):
        put(store, s)  # type: ignore[arg-type]
    warehouse = open_warehouse(spec)
    Loader(store, warehouse).run()
    warehouse.close()
    put(store, mine[1])  # type: ignore[arg-type]  # stored, not loaded yet
    args = ["delete-user", USER, "--storage", url, "--warehouse", spec, "--data-dir", str(tmp_path)]
    first = tallystick(*args)
    assert first.returncode == 0, first.stderr
    assert f"deleted user {USER}: 2 sessions from the warehouse, 2 objects from storage" in first.stdout
    assert _users_in_store(store) == [OTHER, OTHER]
    warehouse = open_warehouse(spec)
    try:
        assert _rows_of(warehouse, [s["sessionId"] for s in mine]) == 0
        assert warehouse.query('SELECT count(*) FROM sessions WHERE "userId" = ?', [USER]).rows == [(0,)]
        kept = sorted(r[0] for r in warehouse.query('SELECT "sessionId" FROM sessions').rows)
        assert kept == sorted(s["sessionId"] for s in theirs)
        assert _rows_of(warehouse, kept, loaded=False) == 2 + 2 + 2  # one event and one span each
    finally:
        warehouse.close()
    again = tallystick(*args)
    assert again.returncode == 0, again.stderr
    assert "0 sessions from the warehouse, 0 objects from storage" in again.stdout
    assert _users_in_store(store) == [OTHER, OTHER]
    assert [i.key.split("/")[3] for i in store.list(TOMBSTONES)] == [user_digest(USER)] * 2  # never the ID itself


def test_a_deleted_users_old_session_is_refused_but_new_ones_are_accepted(
    privacy_server: Callable[..., Server], tmp_path: Path
) -> None:
    """After delete-user, ingest answers 400 deletedUser to the user's sessions that started before the deletion."""
    server = privacy_server(declared("open"))
    old = tool_session(userId=USER)
    assert server.put(old)[0] == 201
    args = ["delete-user", USER, "--storage", server.storage, "--warehouse", str(tmp_path / "w.duckdb")]
    assert "1 sessions from the warehouse, 1 objects from storage" in tallystick(*args).stdout
    queued = tool_session(userId=USER)  # recorded before the deletion, uploaded after it

    def refused() -> bool:
        status, answer = server.put(queued)
        return status == 400 and answer["validationErrors"][0]["type"] == "deletedUser"

    eventually(refused, "ingest to refresh its tombstones")
    _, answer = server.put(queued)
    assert answer["validationErrors"][0]["key"] == "userId"
    assert "do not send them again" in answer["validationErrors"][0]["message"]
    start = datetime.now(UTC) + timedelta(seconds=5)
    later = tool_session(
        userId=USER,
        sessionStartTime=start.isoformat(),
        sessionEndTime=(start + timedelta(seconds=1)).isoformat(),
        events=[],
        spans=[],
    )
    assert server.put(later)[0] == 201
    assert server.put(tool_session(userId=OTHER))[0] == 201
    store = open_store(server.storage)
    assert sorted(_users_in_store(store)) == [USER, OTHER]  # only the later session of USER
    eventually(lambda: "deletedUser" in tallystick("rejects", "--storage", server.storage).stdout, "counts")
    assert USER not in tallystick("rejects", "--storage", server.storage, "--bodies").stdout  # never sampled


def test_invalid_user_id_is_one_line() -> None:
    """A user ID that is not a UUIDv4 is refused before anything is touched."""
    result = tallystick("delete-user", "jdoe", "--storage", "memory://")
    assert result.returncode == 1
    assert result.stderr.startswith("tallystick: error: 'jdoe' is not a user ID")
