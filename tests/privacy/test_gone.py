"""Deleted means gone: after a user's own erasure, no byte of their sessions stays in any file Tallystick wrote.

``test_no_trace.py`` scans for the user ID after the maintainer's ``delete-user``. Here the
user erases from their machine (``POST /v1/erasures``) while one of their sessions is still
in the server's write-ahead log, one was rejected and sampled into quarantine, and late
retries of an erased session arrive (single, batch, gzip): then every file of the storage
directory (gzip objects decompressed), the server's log (debug level, request log on) and the
DuckDB file are searched for the user ID and for each of the user's session IDs.
"""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.scan import readable
from privacy.conftest import Server, declared, eventually, tallystick, tool_session
from sessions import body, session
from tallystick.cli import main
from tallystick.privacy.deletion import delete_user
from tallystick.privacy.erasure import SETTLE_SECONDS, process_pending
from tallystick.privacy.quarantine import SAMPLES
from tallystick.privacy.tombstones import PREFIX as TOMBSTONES
from tallystick.schema import parse_session
from tallystick.schema._rules import ERASURE_COMMITMENT_ATTRIBUTE, erasure_commitment
from tallystick.storage import open_store
from tallystick.storage.layout import session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put

USER = "4f0c2a1e-7d3b-4e5f-9a8b-1c2d3e4f5a6b"
OTHER = "5e1d3b2f-8c4a-4f6e-8b9c-2d3e4f5a6b7c"
SECRET = "3c" * 32


def _session(user: str, **overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(minutes=5)
    attributes = {"projectSize": 3, ERASURE_COMMITMENT_ATTRIBUTE: erasure_commitment(user, SECRET)}
    return tool_session(
        userId=user,
        sessionStartTime=start.isoformat(),
        sessionEndTime=(start + timedelta(seconds=1)).isoformat(),
        events=[],
        spans=[],
        attributes={**attributes, **overrides.pop("attributes", {})},
        **overrides,
    )


def _send(server: Server, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _naming(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """File (relative to ``root``) -> the needles its name or bytes hold, as written or gzip-decompressed."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = readable(path)
        name = path.relative_to(root).as_posix()
        if hits := [n for n in needles if n in name or n.encode() in data]:
            found[name] = hits
    return found


def test_a_users_erasure_leaves_no_byte_of_their_sessions(
    privacy_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Stored, logged, sampled and late-retried sessions of an erased user: no file holds their user or session IDs."""
    server = privacy_server(declared("strict", 'log_level = "debug"\nlog_requests = true\n'))
    spec = str(tmp_path / "w.duckdb")
    mine = [_session(USER) for _ in range(3)]
    for s in mine[:2]:
        assert server.put(s)[0] == 201
    refused = _session(USER, attributes={"homeDirectory": "x"})  # strict: undeclared, rejected and sampled
    assert server.put(refused)[0] == 400
    # A sample is cut to 16 KiB: here the cut leaves out the user ID, the session ID and the commitment.
    long = _session(USER, attributes={"homeDirectory": "x" * 20_000})
    long = {"attributes": {"homeDirectory": "x" * 20_000, **long.pop("attributes")}, **long}
    assert server.put(long)[0] == 400
    assert server.put(theirs := _session(OTHER))[0] == 201
    storage = Path(server.storage)
    eventually(lambda: len(LocalStore(storage, fsync=False).keys_in(SAMPLES)) == 2, "two quarantine samples")
    assert tallystick("load", "--storage", server.storage, "--warehouse", spec).returncode == 0
    assert server.put(mine[2])[0] == 201  # acknowledged, maybe still in the write-ahead log
    needles = [USER] + [s["sessionId"] for s in (*mine, refused, long)]
    assert {n for hits in _naming(storage, needles).values() for n in hits} == set(needles), "found before"

    status, _ = server.request("POST", "/v1/erasures", {"userId": USER, "secret": SECRET})
    assert status == 202
    loaded = tallystick("load", "--storage", server.storage, "--warehouse", spec)
    assert loaded.returncode == 0, loaded.stderr
    # Late retries of an erased session (a lost answer): refused, whichever way they come.
    status, answer = server.put(mine[0])
    assert status == 400 and answer["validationErrors"][0]["type"] == "deletedUser", answer
    status, answer = server.request("POST", "/v1/batches", {"sessions": [mine[1]]})
    assert status == 200 and answer["results"][0]["status"] == 400, answer
    packed = gzip.compress(json.dumps(mine[2]).encode())
    status, answer = _send(server, "PUT", "/v1/sessions", packed, {"Content-Encoding": "gzip"})
    assert status == 400 and b"deletedUser" in answer, answer
    server.stop()  # a clean stop checkpoints the write-ahead log

    store, warehouse = open_store(server.storage), open_warehouse(spec)
    try:  # the request settles (its pending object names the user for SETTLE_SECONDS)
        later = datetime.now(UTC) + timedelta(seconds=SETTLE_SECONDS + 1)
        process_pending(store, warehouse, now=later)
        assert warehouse.query('SELECT count(*) FROM sessions WHERE "userId" = ?', [OTHER]).rows[0][0] == 1
    finally:
        warehouse.close()
        store.close()
    assert _naming(storage, needles) == {}
    assert _naming(tmp_path, needles) == {}  # the DuckDB file and anything beside it
    assert theirs["sessionId"] in str(_naming(storage, [theirs["sessionId"]])), "another user's session is kept"
    assert list(LocalStore(storage, fsync=False).list(TOMBSTONES)), "the proven erasure left a tombstone (a digest)"


def test_a_delete_user_during_a_clickhouse_load_waits_for_it_and_leaves_nothing(
    tmp_path: Path, clickhouse_spec: str
) -> None:
    """delete-user started between a load's read and its write (ClickHouse: no file lock) waits, then deletes it all.

    The timing is made certain, not hoped for: the loading warehouse's ``write_batch`` starts
    the deletion (in a thread, through its own connection, as the CLI would) and writes only
    once the deletion says it waits for the load. Without the loader's lock the load wrote the
    user's rows back after the deletion, until the next retention run swept them.
    """
    store = LocalStore(tmp_path / "sessions", fsync=False)
    start = datetime.now(UTC) - timedelta(hours=1)
    times = {"sessionStartTime": start.isoformat(), "sessionEndTime": (start + timedelta(seconds=1)).isoformat()}
    mine = [session(userId=USER, **times) for _ in range(3)]
    theirs = session(userId=OTHER, **times)
    for s in (*mine, theirs):
        put(store, s)
    loading, deleting = open_warehouse(clickhouse_spec), open_warehouse(clickhouse_spec)
    try:
        write = loading.write_batch
        waits = threading.Event()
        done: list[Any] = []
        deletion = threading.Thread(
            target=lambda: done.append(delete_user(store, deleting, USER, report=lambda _: waits.set())), daemon=True
        )

        def racing(batch: Any) -> Any:
            if not deletion.is_alive() and not done:
                deletion.start()
                assert waits.wait(30), "the deletion did not wait for the load"
            return write(batch)

        loading.write_batch = racing  # type: ignore[method-assign]
        Loader(store, loading, workers=0).run()
        loading.write_batch = write  # type: ignore[method-assign]
        deletion.join(60)
        assert done and done[0].sessions == len(mine), done
        assert _user_rows(loading) == {"sessions": 0, "events": 0, "spans": 0}
        loaded = {str(r[0]) for r in loading.query('SELECT "sessionId" FROM _tallystick_loaded').rows}
        assert loaded == {theirs["sessionId"]}
        assert [i.key for i in store.list("sessions/")] == [session_key(parse_session(body(theirs)))]
    finally:
        loading.close()
        deleting.close()


def _user_rows(warehouse: Any) -> dict[str, int]:
    sql = 'SELECT count() FROM "{}" WHERE "userId" = ?'
    return {t: int(warehouse.query(sql.format(t), [USER]).rows[0][0]) for t in ("sessions", "events", "spans")}


def test_delete_user_after_a_crash_leaves_nothing_for_the_restart_to_replay(
    privacy_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Acknowledged sessions still in a killed server's log, delete-user, restart: nothing of the user comes back."""
    server = privacy_server('applications = ["demo"]\ntombstone_refresh_seconds = 0.1\n')
    start = datetime.now(UTC) - timedelta(hours=1)
    times = {"sessionStartTime": start.isoformat(), "sessionEndTime": (start + timedelta(seconds=1)).isoformat()}
    mine = [session(userId=USER, **times) for _ in range(3)]
    for s in mine:
        assert server.put(s)[0] == 201
    server.kill()  # its writer exits too, leaving the log's segments as they are
    storage = Path(server.storage)
    needles = [USER] + [s["sessionId"] for s in mine]
    # Usually (3 runs of 3) the killed writer's segment still holds them; a checkpoint may beat the kill.
    assert _naming(storage, needles), "the scan finds the sessions before"
    spec = str(tmp_path / "w.duckdb")
    deleted = tallystick("delete-user", USER, "--storage", server.storage, "--warehouse", spec)
    assert deleted.returncode == 0 and "3 sessions from the warehouse" in deleted.stdout, deleted
    assert _naming(storage, needles) == {}
    server.start()  # recovery replays whatever the log still holds
    assert server.put(mine[0])[0] == 400, "a late retry is refused"
    server.stop()
    assert _naming(storage, needles) == {}
    assert tallystick("load", "--storage", server.storage, "--warehouse", spec).returncode == 0
    assert _naming(tmp_path, needles) == {}


def _days_old(days: int, user_id: str) -> dict[str, Any]:
    """A session of ``user_id`` that started ``days`` ago."""
    start = datetime.now(UTC) - timedelta(days=days)
    return session(
        userId=user_id, sessionStartTime=start.isoformat(), sessionEndTime=(start + timedelta(seconds=1)).isoformat()
    )


def test_importing_an_abacus_bucket_again_does_not_bring_a_deleted_user_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """delete-user, then `tallystick import --restart` of the Abacus bucket that still holds them: skipped, counted."""
    source = LocalStore(tmp_path / "abacus", fsync=False)
    mine, theirs = _days_old(3, USER), _days_old(3, OTHER)
    for tree in (mine, theirs):
        key = f"v1/{tree['applicationId']}/{tree['applicationVersion']}/{tree['sessionId']}.json"
        source.put_if_absent(key, json.dumps(tree).encode())
    common = ["--storage", str(tmp_path / "sessions"), "--data-dir", str(tmp_path), "--quiet"]
    assert main(["import", str(tmp_path / "abacus"), *common]) == 0
    assert main(["delete-user", USER, *common[:4]]) == 0
    capsys.readouterr()
    assert main(["import", str(tmp_path / "abacus"), "--restart", *common]) == 0
    out = capsys.readouterr().out
    assert "1 of a user deleted since" in out, out
    assert _naming(tmp_path / "sessions", [USER, mine["sessionId"]]) == {}
    assert _naming(tmp_path / "sessions", [theirs["sessionId"]])


def test_moving_a_store_does_not_bring_back_a_user_deleted_at_the_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user erased at the new store before the old one is copied (scale-out.md's order): their sessions stay out."""
    old = LocalStore(tmp_path / "old", fsync=False)
    mine, theirs = _days_old(3, USER), _days_old(3, OTHER)
    for tree in (mine, theirs):
        put(old, tree)
    new = ["--storage", str(tmp_path / "new"), "--data-dir", str(tmp_path)]
    assert main(["delete-user", USER, *new]) == 0  # an erasure that reached the new replicas first
    capsys.readouterr()
    assert main(["import", str(tmp_path / "old"), *new, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 of a user deleted since" in out, out
    assert _naming(tmp_path / "new", [USER, mine["sessionId"]]) == {}
    assert _naming(tmp_path / "new", [theirs["sessionId"]])
