"""Retention and deletion hooks: storage and warehouse lose the same sessions, on every engine."""

from __future__ import annotations

from datetime import date

from sessions import body, session
from tallystick.schema import parse_session
from tallystick.storage.layout import encode_session
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Warehouse
from tallystick.warehouse.cycle import delete_older_than, delete_user
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put

USER = "6b1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"
OTHER = "7c1d2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"


def _ids(warehouse: Warehouse, table: str = "sessions") -> set[str]:
    return {r[0] for r in warehouse.query(f'SELECT "sessionId" FROM {table}').rows}


def test_delete_older_than_removes_old_sessions_everywhere(store: LocalStore, warehouse: Warehouse) -> None:
    """Sessions that started before the cutoff day go from storage and all three tables; newer ones stay."""
    old = session(sessionStartTime="2026-01-10T23:59:59Z", sessionEndTime="2026-01-11T00:00:01Z")
    new = session(sessionStartTime="2026-01-11T00:00:00Z", sessionEndTime="2026-01-11T00:00:01Z")
    old_key = put(store, old)
    new_key = put(store, new)
    Loader(store, warehouse).run()
    deleted = delete_older_than(store, warehouse, 30, today=date(2026, 2, 10))
    assert (deleted.objects, deleted.sessions) == (1, 1)
    assert [i.key for i in store.list("sessions/")] == [new_key]
    for table in ("sessions", "events", "spans"):
        assert _ids(warehouse, table) == {new["sessionId"]}
    assert old_key not in warehouse.loaded_keys(old_key.rsplit("/", 1)[0] + "/")
    assert Loader(store, warehouse).run().pending == 0
    assert delete_older_than(store, warehouse, 30, today=date(2026, 2, 10)).sessions == 0


def test_delete_user_removes_all_their_sessions(store: LocalStore, warehouse: Warehouse) -> None:
    """Every session of one user ID goes, including one not yet loaded and one stored under two keys."""
    mine = session(userId=USER)
    put(store, mine)
    put(store, {**mine, "sessionStartTime": "2026-04-01T00:00:00Z"})
    theirs = session(userId=OTHER)
    keep_key = put(store, theirs)
    Loader(store, warehouse).run()
    put(store, session(userId=USER))  # stored, not loaded yet
    deleted = delete_user(store, warehouse, USER)
    assert (deleted.objects, deleted.sessions) == (3, 2)
    assert [i.key for i in store.list("sessions/")] == [keep_key]
    for table in ("sessions", "events", "spans"):
        assert _ids(warehouse, table) == {theirs["sessionId"]}
    assert warehouse.query('SELECT count(*) FROM sessions WHERE "userId" = ?', [USER]).rows == [(0,)]


def test_a_session_dated_ahead_of_its_arrival_ages_from_its_arrival(store: LocalStore, warehouse: Warehouse) -> None:
    """A client clock years ahead (a start in 2099) does not keep a session forever: it goes N days after arriving."""
    ahead = session(
        sessionStartTime="2099-01-01T00:00:00Z",
        sessionEndTime="2099-01-01T00:00:01Z",
        ingestionTime="2026-01-05T00:00:00Z",
    )
    recent = dict(ahead, sessionId="1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6", ingestionTime="2026-02-01T00:00:00Z")
    put(store, ahead)
    put(store, recent)
    Loader(store, warehouse).run()
    deleted = delete_older_than(store, warehouse, 30, today=date(2026, 2, 10))
    assert (deleted.objects, deleted.sessions) == (1, 1)
    for table in ("sessions", "events", "spans"):
        assert _ids(warehouse, table) == {recent["sessionId"]}
    assert len(list(store.list("sessions/"))) == 1


def test_delete_user_removes_an_object_the_loader_set_aside(store: LocalStore, warehouse: Warehouse) -> None:
    """An object of the user the loader rejected (its key names another session) holds no row, yet goes too."""
    mine = session(userId=USER)
    key = put(store, session(userId=OTHER))
    misfiled = key.rsplit("/", 1)[0] + "/0f0e0d0c-0b0a-4908-8706-050403020100.json.gz"
    assert store.put_if_absent(misfiled, encode_session(parse_session(body(mine))))
    assert Loader(store, warehouse).run().rejected == 1
    deleted = delete_user(store, warehouse, USER)
    assert deleted.objects == 1
    assert sorted(i.key for i in store.list("sessions/")) == [key]
    assert misfiled not in warehouse.loaded_keys(key.rsplit("/", 1)[0] + "/")
    assert delete_user(store, warehouse, OTHER).objects == 1  # the other user's own object, found by its row


def test_delete_user_removes_a_truncated_object_of_theirs(store: LocalStore, warehouse: Warehouse) -> None:
    """A compressed object cut short (damaged: set aside by the loader) still names the user in what can be read."""
    mine = session(userId=USER, attributes={"note": "words " * 2000})  # compressed, not stored: above 4 KiB
    data = encode_session(parse_session(body(mine)))
    assert USER.encode() not in data
    key = put(store, session(userId=OTHER))
    cut = key.rsplit("/", 1)[0] + f"/{mine['sessionId']}.json.gz"
    assert store.put_if_absent(cut, data[: len(data) // 2])
    assert Loader(store, warehouse).run().rejected == 1
    assert delete_user(store, warehouse, USER).objects == 1
    assert sorted(i.key for i in store.list("sessions/")) == [key]
