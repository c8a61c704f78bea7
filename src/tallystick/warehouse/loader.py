"""Moving new sessions from object storage into the warehouse.

Design note
-----------
Steps of one run:

1. List the partitions (``app=<app>/date=<day>/``) and, in each, the object keys.
2. Ask the warehouse which keys of that partition it has already dealt with; the
   rest are new. (The checkpoint *is* the warehouse's ``_tallystick_loaded`` table.)
3. For each batch of new keys: read and parse the objects, then in ONE warehouse
   transaction insert their sessions, events and spans and record the keys as
   dealt with (``loaded``, or ``rejected`` with the reason for an object that does
   not parse; it is kept in storage and counted, never silently dropped).

Failure points and why each is safe:

- Crash while listing or reading (before the transaction): nothing was written;
  the next run finds the same keys new again.
- Crash inside the transaction: the warehouse rolls it back as a whole, rows and
  checkpoint together; the next run redoes the batch.
- Crash after commit: rows and checkpoint are both in; the next run skips them.
- A session stored under two keys (same ID, another start date): the insert skips
  session IDs the warehouse already holds, so it is counted once.
- Objects written while a run lists: seen now or by the next run (keys are never
  rewritten, so an object is either listed complete or not at all).

Two loaders at once are not supported on one warehouse (DuckDB's file lock
already prevents it; for server warehouses run one scheduled loader).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tallystick.schema import Session
from tallystick.storage import ObjectNotFound, Store
from tallystick.storage.layout import PREFIX, decode_session, parse_key
from tallystick.warehouse.base import LoadedObject, Warehouse
from tallystick.warehouse.rows import rows_of


@dataclass
class LoadStats:
    """What one run did; ``pending`` is known once listing is done."""

    pending: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejected_keys: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.loaded + self.duplicates + self.rejected

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[LoadStats], None]


def partitions(store: Store) -> Iterator[str]:
    """Every ``sessions/v1/app=…/date=…/`` prefix in the store, in key order."""
    for app in store.list_dirs(PREFIX):
        for day in store.list_dirs(f"{PREFIX}{app}/"):
            yield f"{PREFIX}{app}/{day}/"


def _parse(store: Store, key: str, partition: str) -> tuple[Session | None, LoadedObject | None]:
    try:
        data = store.get(key)
    except ObjectNotFound:
        return None, None  # deleted since it was listed (e.g. by retention): nothing to load
    try:
        session = decode_session(data)
    except (msgspec.DecodeError, msgspec.ValidationError, OSError, EOFError, ValueError) as exc:
        return None, LoadedObject(key, partition, "rejected", f"{type(exc).__name__}: {exc}"[:500])
    parsed = parse_key(key)
    if parsed is None or parsed[2] != session.session_id:
        return None, LoadedObject(key, partition, "rejected", "object key does not match its sessionId")
    return session, LoadedObject(key, partition, "loaded")


class Loader:
    """Loads new objects from ``store`` into ``warehouse``; see the module's design note."""

    def __init__(
        self,
        store: Store,
        warehouse: Warehouse,
        *,
        batch_size: int = 5000,
        readers: int = 8,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.warehouse = warehouse
        self.batch_size = batch_size
        self.readers = readers
        self.progress = progress

    def pending(self) -> list[tuple[str, str]]:
        """(key, partition) of every object not yet dealt with."""
        new: list[tuple[str, str]] = []
        for partition in partitions(self.store):
            seen = self.warehouse.loaded_keys(partition)
            new.extend((info.key, partition) for info in self.store.list(partition) if info.key not in seen)
        return new

    def run(self) -> LoadStats:
        started = time.monotonic()
        self.warehouse.ensure_schema()
        todo = self.pending()
        stats = LoadStats(pending=len(todo))
        with ThreadPoolExecutor(self.readers, thread_name_prefix="tallystick-load") as pool:
            for i in range(0, len(todo), self.batch_size):
                batch = todo[i : i + self.batch_size]
                parsed = list(pool.map(lambda kp: _parse(self.store, *kp), batch))
                self._write(parsed, stats)
                stats.seconds = time.monotonic() - started
                if self.progress:
                    self.progress(stats)
        stats.seconds = time.monotonic() - started
        return stats

    def _write(self, parsed: list[tuple[Session | None, LoadedObject | None]], stats: LoadStats) -> None:
        rows: dict[str, list[dict[str, Any]]] = {}
        objects: list[LoadedObject] = []
        seen_ids: set[str] = set()
        for session, obj in parsed:
            if obj is None:
                continue
            objects.append(obj)
            if session is None:
                stats.rejected += 1
                stats.rejected_keys.append(obj.key)
                continue
            if session.session_id in seen_ids:
                continue
            seen_ids.add(session.session_id)
            for table, table_rows in rows_of(session).items():
                rows.setdefault(table, []).extend(table_rows)
        inserted = self.warehouse.write_batch(rows, objects)
        stats.loaded += inserted
        stats.duplicates += sum(1 for o in objects if o.status == "loaded") - inserted
