"""Retention and deletion: remove sessions from storage and warehouse together.

Hooks for the privacy commands (which add the CLI); nothing here asks for confirmation.

Order, and why: objects are deleted from storage first, then their rows from the
warehouse, then the loader's records of them. A crash after the first step leaves
rows whose objects are gone: running the same call again deletes them (both
calls are idempotent). Deleting the loader's records last means an object can
never be loaded again after its rows were deleted, because by then the object
is gone. A loader running at the same time may load an object just before it is
deleted and write it after the rows were deleted: run these between loads (or
run them twice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tallystick.storage import Store
from tallystick.storage.layout import PREFIX, parse_key
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.loader import Loader, partitions


@dataclass
class Deleted:
    """What a deletion removed: objects from storage, sessions from the warehouse."""

    objects: int = 0
    sessions: int = 0


def _count(warehouse: Warehouse, where_sql: str, parameters: list[object]) -> int:
    return int(warehouse.query(f"SELECT count(*) FROM sessions WHERE {where_sql}", list(parameters)).rows[0][0])


def delete_older_than(store: Store, warehouse: Warehouse, days: int, *, today: date | None = None) -> Deleted:
    """Delete every session that started more than ``days`` whole UTC days before ``today``."""
    if days < 0:
        raise ValueError("days must be zero or more")
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=days)
    deleted = Deleted()
    keys: list[str] = []
    for partition in partitions(store):
        parsed = parse_key(f"{partition}x.json.gz")
        if parsed is None or parsed[1] >= cutoff:
            continue
        for info in list(store.list(partition)):
            if store.delete(info.key):
                deleted.objects += 1
            keys.append(info.key)
    warehouse.ensure_schema()
    start = warehouse.sql.timestamp(cutoff.isoformat())
    where = f'"sessionStartTime" < {start}'
    deleted.sessions = _count(warehouse, where, [])
    if deleted.sessions:
        warehouse.delete_sessions(where)
    if keys:
        warehouse.forget_objects(keys)
    return deleted


def delete_user(store: Store, warehouse: Warehouse, user_id: str, *, load_first: bool = True) -> Deleted:
    """Delete every session of one (anonymous) user ID, from storage and warehouse.

    Storage keys do not name the user, so the warehouse says which objects hold the
    user's sessions; with ``load_first`` (the default) a load runs first, so that
    sessions stored but not yet loaded are found too.
    """
    if load_first:
        Loader(store, warehouse).run()
    return delete_matching(store, warehouse, '"userId" = ?', [user_id])


_CHUNK = 1000


def delete_matching(store: Store, warehouse: Warehouse, where_sql: str, parameters: list[object]) -> Deleted:
    """Delete the loaded sessions that ``where_sql`` (on ``sessions``) selects: objects, then rows of every table.

    The condition is evaluated once, on ``sessions``; the rows of every table are then
    deleted by session ID, so it may use columns only ``sessions`` has (its attributes).
    """
    warehouse.ensure_schema()
    ids = sorted(
        {str(r[0]) for r in warehouse.query(f'SELECT "sessionId" FROM sessions WHERE {where_sql}', parameters).rows}
    )
    deleted = Deleted()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        if not all(_UUID.match(s) for s in chunk):  # inlined below: only what the contract allows
            raise ValueError("a session ID in the warehouse is not a UUID")
        listed = "(" + ", ".join(f"'{s}'" for s in chunk) + ")"
        rows = warehouse.query(f'SELECT key FROM _tallystick_loaded WHERE "sessionId" IN {listed}').rows
        keys = sorted({str(r[0]) for r in rows if str(r[0]).startswith(PREFIX)})
        for key in keys:
            deleted.objects += store.delete(key)
        warehouse.delete_sessions(f'"sessionId" IN {listed}')
        if keys:
            warehouse.forget_objects(keys)
        deleted.sessions += len(chunk)
    return deleted


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
