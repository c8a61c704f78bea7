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
import zlib
from dataclasses import dataclass, field

import msgspec

from tallystick.schema import Session
from tallystick.storage import ObjectNotFound, Store, open_store
from tallystick.storage.layout import parse_key
from tallystick.storage.local import LocalStore
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


def _read_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while part := os.read(fd, 1 << 20):
            parts.append(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def get(store: Store, key: str) -> bytes:
    """``store.get``, with a fast path for the local directory store.

    ``LocalStore.get`` (pathlib, key checks) costs about 4x a plain ``os.read`` of
    the file, which at a million small objects is most of a load. The keys here
    come from the loader's own listing, so the checks are not needed.
    """
    if isinstance(store, LocalStore):
        try:
            return _read_file(f"{store.root}/{key}")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
    return store.get(key)


def list_keys(store: Store, partition: str) -> list[str]:
    """The keys directly in one partition, in key order (a bare directory scan for the local store)."""
    if isinstance(store, LocalStore):
        try:
            with os.scandir(f"{store.root}/{partition}") as entries:
                return sorted(partition + e.name for e in entries if e.is_file(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []
    return [info.key for info in store.list(partition)]


def read_object(store: Store, key: str, partition: str, chunk: Chunk) -> None:
    """Read one object into ``chunk``; an object deleted since it was listed is skipped."""
    try:
        data = get(store, key)
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


def init_worker(store_url: str) -> None:
    """Process-pool initializer: each worker opens the store once."""
    global _store  # noqa: PLW0603 - one store per worker process, opened by the initializer
    _store = open_store(store_url)


def read_chunk_in_worker(keys: list[tuple[str, str]]) -> Chunk:
    assert _store is not None, "init_worker was not run"
    return read_chunk(_store, keys)
