"""Reading stored objects for the loader: fetch, decompress, validate; run in worker processes.

A worker turns a chunk of keys into a ``Chunk``: the valid sessions as JSON lines
(exactly the stored bytes, which DuckDB then parses in C++), their IDs, and one
record per object (``loaded`` or ``rejected`` with the reason). Nothing here
touches the warehouse, so a worker killed at any point loses only work that the
next run redoes.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
import zlib
from dataclasses import dataclass, field

import msgspec

from tallystick.schema import Session
from tallystick.storage import ObjectNotFound, Store, open_store
from tallystick.storage.layout import parse_key
from tallystick.warehouse.base import LoadedObject

_decoder = msgspec.json.Decoder(Session)
_store: Store | None = None


@dataclass
class Chunk:
    lines: list[bytes] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    objects: list[LoadedObject] = field(default_factory=list)


def _check(session: Session) -> str | None:
    """Rules the Struct cannot say (the validator's ordered fields); a reason, or None."""
    if session.session_end_time < session.session_start_time:
        return "sessionEndTime is before sessionStartTime"
    for i, span in enumerate(session.spans or ()):
        if span.end_time < span.start_time:
            return f"spans[{i}].endTime is before its startTime"
    return None


def read_object(store: Store, key: str, partition: str, chunk: Chunk) -> None:
    """Read one object into ``chunk``; an object deleted since it was listed is skipped."""
    try:
        data = store.get_listed(key)
    except ObjectNotFound:
        return  # deleted since it was listed (e.g. by retention): nothing to load
    try:
        raw = gzip.decompress(data)
        session = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, OSError, EOFError, zlib.error, ValueError) as exc:
        chunk.objects.append(LoadedObject(key, partition, "rejected", f"{type(exc).__name__}: {exc}"[:500]))
        return
    parsed = parse_key(key)
    reason = _check(session)
    if reason is None and (parsed is None or parsed[2] != session.session_id):
        reason = "object key does not match its sessionId"
    if reason is not None:
        chunk.objects.append(LoadedObject(key, partition, "rejected", reason))
        return
    if b"\n" in raw or b"\r" in raw:  # only whitespace can hold a raw newline in valid JSON
        raw = raw.replace(b"\n", b" ").replace(b"\r", b" ")
    chunk.lines.append(raw)
    chunk.session_ids.append(session.session_id)
    chunk.objects.append(LoadedObject(key, partition, "loaded", session_id=session.session_id))


def read_chunk(store: Store, keys: list[tuple[str, str]]) -> Chunk:
    chunk = Chunk()
    for key, partition in keys:
        read_object(store, key, partition, chunk)
    return chunk


def init_worker(store_url: str, parent: int | None = None) -> None:
    """Process-pool initializer: each worker opens the store once, and ends when the loader ``parent`` is gone.

    A loader killed with SIGKILL cannot stop its pool; its workers would wait on the pool's queue
    forever (each holds both ends of it), so each watches its parent instead.
    """
    global _store  # noqa: PLW0603 - one store per worker process, opened by the initializer
    _store = open_store(store_url)
    if parent is not None:
        threading.Thread(target=_exit_without, args=(parent,), name="tallystick-parent-watch", daemon=True).start()


def _exit_without(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def read_chunk_in_worker(keys: list[tuple[str, str]]) -> Chunk:
    assert _store is not None, "init_worker was not run"
    return read_chunk(_store, keys)
