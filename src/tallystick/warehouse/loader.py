"""Moving new sessions from object storage into the warehouse.

Design note
-----------
Steps of one run:

1. ``recover()``: the warehouse undoes whatever an interrupted write left behind
   (nothing for DuckDB, which has transactions; see ``clickhouse.py`` for ClickHouse).
2. For each partition (``app=<app>/date=<day>/``, in key order): ask the warehouse
   which keys it has dealt with (the checkpoint lives *in* the warehouse, table
   ``_tallystick_loaded``), list the partition's keys, keep the new ones.
3. Hand the new keys, in chunks, to worker processes that read, decompress and
   validate the objects (``reader.py``). At most ``2 × workers`` chunks are in
   flight, and results are consumed in order.
4. Gather results into a batch of at most ``batch_size`` sessions (a session ID
   seen twice in one batch is kept once) and write it: sessions, events, spans
   and the checkpoint records of every object in the batch, including ``rejected``
   ones with the reason. A rejected object stays in storage and is counted, never
   silently dropped, and is not retried (fix it and remove its checkpoint row).

Failure points and why each is safe (the crash test kills the loader with SIGKILL
at random moments to check exactly this):

- Killed while listing or reading (before a write): nothing was written; the next
  run finds the same keys new again.
- Killed during a write: DuckDB commits data and checkpoint in one transaction,
  so either both are in or neither. ClickHouse has no transactions: it logs the
  batch's new session IDs before inserting and ``recover()`` deletes their rows
  if the checkpoint was not written (``clickhouse.py`` explains the order).
- Killed after the write: data and checkpoint are in; the next run skips them.
- A session stored under two keys (same ID, another start date): writes skip
  session IDs the warehouse already holds, so it is loaded once and the second
  object is counted as a duplicate.
- Objects written while a run lists: seen now or by the next run (keys are never
  rewritten, so an object is either listed complete or not at all). An object
  deleted after listing (retention) is skipped.

One loader at a time: a run holds ``Warehouse.loading()`` from ``recover()`` to its last write.
DuckDB's file lock gives that by itself; on a ClickHouse server, which a scheduled loader and
``tallystick delete-user`` (whose load runs first) can reach at once, a second run waits for the
first: its ``recover()`` would otherwise take the first one's batch in flight for a dead
loader's and delete its rows, which the first then records as loaded.

Memory is bounded: the new keys of one partition (about 100 bytes each), at most
``2 × workers`` chunks of objects, and one batch of session lines (``batch_size``
times about 1 KiB).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from tallystick.storage import Store
from tallystick.storage.layout import PREFIX
from tallystick.warehouse.base import Batch, LoadedObject, Warehouse
from tallystick.warehouse.reader import Chunk, init_worker, read_chunk, read_chunk_in_worker

MAX_REJECTED_KEYS = 1000  # LoadStats keeps the first ones; all are in _tallystick_loaded


@dataclass
class LoadStats:
    """What one run did; ``pending`` is known once listing is done (or counted up front for progress)."""

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


def _reopenable(store: Store) -> bool:
    """Whether a worker process can open the same store from its URL."""
    return not store.reopen_url().startswith("memory:")


class Loader:
    """Loads new objects from ``store`` into ``warehouse``; see the module's design note.

    ``workers`` reader processes (default: one per CPU; 0 reads in this process,
    which small loads and in-memory stores always do).
    """

    def __init__(
        self,
        store: Store,
        warehouse: Warehouse,
        *,
        batch_size: int = 20_000,
        chunk_size: int = 500,
        workers: int | None = None,
        progress: Progress | None = None,
        count_first: bool | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.report = report  # told when the run waits for another process's load (``Warehouse.loading``)
        self.warehouse = warehouse
        self.batch_size = batch_size
        self.chunk_size = max(1, min(chunk_size, batch_size))
        self.workers = os.cpu_count() or 1 if workers is None else workers
        self.progress = progress
        self.count_first = progress is not None if count_first is None else count_first

    def pending(self) -> Iterator[tuple[str, str]]:
        """(key, partition) of every object not yet dealt with, partition by partition."""
        for partition in partitions(self.store):
            seen = self.warehouse.loaded_keys(partition)
            new = [(key, partition) for key in self.store.keys_in(partition) if key not in seen]
            del seen
            yield from new

    def count_pending(self) -> int:
        """How many objects a run would deal with (a listing pass, for progress and ETA)."""
        return sum(1 for _ in self.pending())

    def _chunks(self) -> Iterator[list[tuple[str, str]]]:
        chunk: list[tuple[str, str]] = []
        for item in self.pending():
            chunk.append(item)
            if len(chunk) >= self.chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def run(self) -> LoadStats:
        with self.warehouse.loading(self.report):
            return self._run()

    def _run(self) -> LoadStats:
        started = time.monotonic()
        self.warehouse.ensure_schema()
        self.warehouse.recover()
        stats = LoadStats()
        if self.count_first:
            stats.pending = self.count_pending()
            if self.progress:
                self.progress(stats)
        # One writer thread: the warehouse loads batch n while the workers read batch n + 1.
        with ThreadPoolExecutor(1, thread_name_prefix="tallystick-load-writer") as writer:
            in_write: tuple[Future[int], list[LoadedObject]] | None = None
            batch = _BatchBuilder()
            for chunk in self._read_all():
                if not self.count_first:
                    stats.pending += len(chunk.objects)
                batch.add(chunk)
                if len(batch.lines) >= self.batch_size:
                    if in_write:
                        self._account(*in_write, stats, started)
                    in_write = (writer.submit(self.warehouse.write_batch, batch.build()), batch.objects)
                    batch = _BatchBuilder()
            if in_write:
                self._account(*in_write, stats, started)
            if batch.objects:
                self._account(writer.submit(self.warehouse.write_batch, batch.build()), batch.objects, stats, started)
        stats.seconds = time.monotonic() - started
        return stats

    def _read_all(self) -> Iterator[Chunk]:
        """Chunks read in key order; in worker processes once there is more than a chunk or two to read."""
        chunks = self._chunks()
        head = [c for _, c in zip(range(2), chunks, strict=False)]
        if len(head) < 2 or self.workers < 1 or not _reopenable(self.store):
            for keys in [*head, *chunks]:
                yield read_chunk(self.store, keys)
            return
        context = multiprocessing.get_context("spawn")  # never fork a process holding a database connection
        with ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=init_worker, initargs=(self.store.reopen_url(), os.getpid())
        ) as pool:
            yield from _ordered(pool, [*head, *chunks], in_flight=2 * self.workers)

    def _account(self, write: Future[int], objects: list[LoadedObject], stats: LoadStats, started: float) -> None:
        inserted = write.result()
        stats.loaded += inserted
        stats.duplicates += sum(1 for o in objects if o.status == "loaded") - inserted
        for o in objects:
            if o.status == "rejected":
                stats.rejected += 1
                if len(stats.rejected_keys) < MAX_REJECTED_KEYS:
                    stats.rejected_keys.append(o.key)
        stats.seconds = time.monotonic() - started
        if self.progress:
            self.progress(stats)


def _ordered(
    pool: Executor, chunks: Iterator[list[tuple[str, str]]] | list[list[tuple[str, str]]], in_flight: int
) -> Iterator[Chunk]:
    """``pool.map`` with at most ``in_flight`` chunks submitted ahead (bounded memory)."""
    queue: deque[Future[Chunk]] = deque()
    for keys in chunks:
        queue.append(pool.submit(read_chunk_in_worker, keys))
        if len(queue) >= in_flight:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


class _BatchBuilder:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.session_ids: list[str] = []
        self.objects: list[LoadedObject] = []
        self._seen: set[str] = set()

    def add(self, chunk: Chunk) -> None:
        self.objects.extend(chunk.objects)
        for line, session_id in zip(chunk.lines, chunk.session_ids, strict=True):
            if session_id not in self._seen:
                self._seen.add(session_id)
                self.lines.append(line)
                self.session_ids.append(session_id)

    def build(self) -> Batch:
        return Batch(b"\n".join(self.lines) + b"\n" if self.lines else b"", self.session_ids, self.objects)
