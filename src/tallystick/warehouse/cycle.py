"""The load cycle: every change to what the warehouse holds, in one place.

``load``, ``tallystick up``, ``delete-user`` and retention all go through here, so each
change reaches every copy of a session: its object in storage (and any other copy the
store keeps, such as the local store's write-ahead log), its rows in ``sessions``,
``events`` and ``spans``, the tables derived from them (``rollup.py``) and the loader's
records of its object.

- ``run``: load what is new, refresh the derived tables, then the deletions that follow
  a load (pending erasures, retention when due; ``privacy.retention.after_load``).
- ``delete_user`` / ``delete_older_than``: delete sessions, then refresh the derived
  tables (a deletion changes its days' fingerprints, so those days are recomputed
  without the deleted rows; DuckDB's ``delete_sessions`` also drops them from
  ``sessions_typed`` in the same transaction, so no derived row outlives its session
  even if the refresh is interrupted); then ``warehouse.compact()``, so that no bytes
  of deleted rows stay in the engine's files (DuckDB rewrites its file).

Order of a deletion, and why: ``store.settle()`` first, so that no copy of an
acknowledged write (a log record) is left to bring an object back after it is deleted,
nor to keep the data on disk; then objects are deleted from storage, then their rows
from the warehouse, then the loader's records of them. A crash after the object step
leaves rows whose objects are gone: running the same call again deletes them (each
step is idempotent). Deleting the loader's records last means an object can never be
loaded again after its rows were deleted, because by then the object is gone. A loader
running at the same time may load an object just before it is deleted and write it
after the rows were deleted: run deletions between loads (``up`` does), or twice.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tallystick.schema import _rules
from tallystick.storage import ObjectNotFound, Store
from tallystick.storage.layout import PREFIX, parse_key
from tallystick.warehouse import rollup
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.loader import Loader, LoadStats, partitions


@dataclass
class Deleted:
    """What a deletion removed: objects from storage, sessions from the warehouse."""

    objects: int = 0
    sessions: int = 0


Step = Callable[[Store, Warehouse], Any]
"""A deletion the cycle runs after each load (erasures, retention: ``tallystick.privacy.retention.after_load``);
what it returns is reported when its ``sessions`` is non-zero."""


def run(
    store: Store,
    warehouse: Warehouse,
    *,
    after_load: Sequence[tuple[str, Step]] = (),
    progress: Callable[[LoadStats], None] | None = None,
    report: Callable[[str], None] | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    count_first: bool | None = None,
) -> LoadStats:
    """One cycle: load new sessions, refresh the derived tables, then each of ``after_load`` in order.

    ``batch_size``, ``workers`` and ``count_first`` go to the ``Loader`` (None: its default);
    ``report`` gets a line for each step that deleted something.
    """
    options: dict[str, Any] = {"progress": progress, "workers": workers, "count_first": count_first}
    if batch_size is not None:
        options["batch_size"] = batch_size
    loader = Loader(store, warehouse, report=report, **options)
    stats = loader.run()
    # A step of its own after the load (rollup.py: a crash between the two is harmless,
    # analyses read `sessions` while the derived tables are stale).
    rollup.refresh(warehouse)
    for name, step in after_load:
        done = step(store, warehouse)
        if done and getattr(done, "sessions", 0) and report is not None:
            report(f"{name}: {done}")
    return stats


def load(store: Store, warehouse: Warehouse, report: Callable[[str], None] | None = None) -> LoadStats:
    """Load what is new and refresh the derived tables (``run`` without retention)."""
    return run(store, warehouse, report=report)


_CHUNK = 1000


def delete_matching(
    store: Store,
    warehouse: Warehouse,
    where_sql: str,
    parameters: list[Any],
    *,
    keys: Iterable[str] = (),
    every_table: bool = False,
) -> Deleted:
    """Delete the loaded sessions that ``where_sql`` (on ``sessions``) selects, and the objects ``keys``.

    The one way sessions leave (see the module's note for the order). By default the
    condition is evaluated once, on ``sessions``, and the rows of every table are then
    deleted by session ID, so it may use columns only ``sessions`` has (its attributes).
    With ``every_table`` it uses only columns every table has (``userId``,
    ``sessionStartTime``) and deletes with one statement per table: what retention and
    ``delete-user`` need on many sessions (one ClickHouse mutation per table, not per chunk).
    """
    store.settle()
    warehouse.ensure_schema()
    deleted = Deleted()
    extra = sorted(keys)
    for key in extra:
        deleted.objects += store.delete(key)
    if every_table:
        rows = warehouse.query(
            'SELECT key FROM _tallystick_loaded WHERE "sessionId" IN '
            f'(SELECT "sessionId" FROM sessions WHERE {where_sql})',
            list(parameters),
        ).rows
        found = sorted({str(r[0]) for r in rows if str(r[0]).startswith(PREFIX)} - set(extra))
        deleted.sessions = int(
            warehouse.query(f"SELECT count(*) FROM sessions WHERE {where_sql}", list(parameters)).rows[0][0]
        )
        for key in found:
            deleted.objects += store.delete(key)
        if deleted.sessions:
            warehouse.delete_sessions(where_sql, list(parameters))
        extra += found
    ids = (
        []
        if every_table
        else sorted(
            {str(r[0]) for r in warehouse.query(f'SELECT "sessionId" FROM sessions WHERE {where_sql}', parameters).rows}
        )
    )
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        if not all(re.match(_rules.UUID4_PATTERN, s) for s in chunk):  # inlined below: only what the contract allows
            raise ValueError("a session ID in the warehouse is not a UUID")
        listed = "(" + ", ".join(f"'{s}'" for s in chunk) + ")"
        rows = warehouse.query(f'SELECT key FROM _tallystick_loaded WHERE "sessionId" IN {listed}').rows
        found = sorted({str(r[0]) for r in rows if str(r[0]).startswith(PREFIX)})
        for key in found:
            deleted.objects += store.delete(key)
        warehouse.delete_sessions(f'"sessionId" IN {listed}')
        if found:
            warehouse.forget_objects(found)
        deleted.sessions += len(chunk)
    if extra:
        warehouse.forget_objects(extra)
    if deleted.sessions:
        rollup.refresh(warehouse)  # the changed days are recomputed without the deleted rows
        warehouse.compact()
    return deleted


def delete_older_than(store: Store, warehouse: Warehouse, days: int, *, today: date | None = None) -> Deleted:
    """Delete every session that started (or, if dated after it, arrived) more than ``days`` whole UTC days
    before ``today``."""
    if days < 0:
        raise ValueError("days must be zero or more")
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=days)
    store.settle()  # before listing: what the log still holds becomes objects, found and deleted here
    keys: list[str] = []
    for partition in partitions(store):
        parsed = parse_key(f"{partition}x.json.gz")
        if parsed is not None and parsed[1] < cutoff:
            keys.extend(store.keys_in(partition))
    warehouse.ensure_schema()
    start = warehouse.sql.timestamp(cutoff.isoformat())
    deleted = delete_matching(store, warehouse, f'"sessionStartTime" < {start}', [], keys=keys, every_table=True)
    # A session a client's clock dated ahead of its arrival (a start in 2099) would never age by
    # its start: it ages from its arrival. Rare, so by session ID, on ``sessions`` alone.
    ahead = delete_matching(store, warehouse, f'"ingestionTime" < {start} AND "sessionStartTime" >= {start}', [])
    return Deleted(deleted.objects + ahead.objects, deleted.sessions + ahead.sessions)


def delete_user(
    store: Store,
    warehouse: Warehouse,
    user_id: str,
    *,
    before: datetime | None = None,
    load_first: bool = True,
    report: Callable[[str], None] | None = None,
) -> Deleted:
    """Delete every session of one (anonymous) user ID (with ``before``: those that started before it).

    Storage keys do not name the user, so the warehouse says which objects hold the
    user's sessions; with ``load_first`` (the default) a load runs first, so that
    sessions stored but not yet loaded are found too.
    """
    store.settle()  # before the load: what the log still holds becomes objects, loaded and found
    if load_first:
        load(store, warehouse, report)
    where = '"userId" = ?'
    if before is not None:
        where += ' AND "sessionStartTime" < ' + warehouse.sql.timestamp(
            before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        )
    # By session ID, never by user ID: a ClickHouse mutation's text (`DELETE WHERE ...`) stays in
    # system.mutations and in a mutation_N.txt file of the table's data directory long after it ran.
    deleted = delete_matching(store, warehouse, where, [user_id])
    if before is None:  # the maintainer's deletion: every copy, those the loader set aside too
        deleted.objects += delete_rejected_holding(store, warehouse, [user_id])
    return deleted


def delete_rejected_holding(store: Store, warehouse: Warehouse, needles: Sequence[str]) -> int:
    """Delete the objects the loader rejected (damaged, or not matching their key) that hold every one of
    ``needles``; how many. No row names their sessions, so a deletion by the warehouse cannot find them;
    they are few, so each is read."""
    rows = warehouse.query("SELECT key FROM _tallystick_loaded WHERE status = 'rejected'").rows
    wanted = [n.encode() for n in needles]
    found = []
    for (key,) in rows:
        try:
            data = store.get(str(key))
        except ObjectNotFound:
            continue
        plain = _readable(data)
        if all(n in data or n in plain for n in wanted) and store.delete(str(key)):
            found.append(str(key))
    if found:
        warehouse.forget_objects(found)
    return len(found)


def _readable(data: bytes) -> bytes:
    """What a gzip object holds, as far as it can be read: a damaged one (cut short, or corrupt further
    on) still names its user in the part before the damage, which ``gzip.decompress`` would throw away."""
    stream = zlib.decompressobj(wbits=31)
    parts = []
    for start in range(0, len(data), 4096):
        try:
            parts.append(stream.decompress(data[start : start + 4096]))
        except zlib.error:
            break
        if stream.eof:
            break
    return b"".join(parts)
