"""The one small interface every object store implements.

A store holds immutable objects under string keys. The only write is
``put_if_absent``: it creates an object or reports that one already exists,
atomically, so a second write of a key never replaces nor half-writes the first.
That is what makes duplicate uploads harmless across any number of ingest
replicas. When it returns, the object is durable.
"""

from __future__ import annotations

import asyncio
import builtins
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple


class StorageError(Exception):
    """Base of the storage package's errors."""


class InvalidStorageUrl(StorageError):
    """A storage URL that names no usable store; the message says how to fix it."""


class StorageUnavailable(StorageError):
    """The store cannot be reached or written right now; retrying later may work."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class StorageMisconfigured(StorageError):
    """The store is reachable but set up wrongly; retrying will not help until the setting is fixed."""


class BucketNotFound(StorageMisconfigured):
    """The bucket or container named in the storage URL does not exist."""


class AccessDenied(StorageMisconfigured):
    """No credentials were found, or the store rejected them."""


class ObjectInfo(NamedTuple):
    key: str
    size: int
    last_modified: datetime | None = None


class Store(ABC):
    """An object store. Keys are ``/``-separated relative paths without ``..``."""

    url: str

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless an object is there; True if this call created it."""

    async def put_if_absent_async(self, key: str, data: bytes) -> bool:
        """``put_if_absent`` for async callers; backends with native async I/O override it."""
        return await asyncio.to_thread(self.put_if_absent, key, data)

    def put_if_absent_future(self, key: str, data: bytes) -> asyncio.Future[bool]:
        """``put_if_absent_async`` as a future of the running loop, for callers that wait with a callback.

        The default runs ``put_if_absent_async`` as a task; a store that can answer without one overrides it.
        """
        return asyncio.ensure_future(self.put_if_absent_async(key, data))

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFound."""

    @abstractmethod
    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order.

        With ``start_after``, only keys greater than it: a loader that remembers the last
        key it saw lists only what is new in a partition.
        """

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        """The distinct next path segments below ``prefix`` (which ends with ``/`` or is empty)."""
        seen: dict[str, None] = {}
        for info in self.list(prefix):
            head, sep, _ = info.key[len(prefix) :].partition("/")
            if sep:
                seen[head] = None
        return list(seen)

    def keys_in(self, partition: str) -> builtins.list[str]:
        """The keys directly in ``partition`` (a prefix ending with ``/``), in key order, without sizes or times.

        What a loader lists: stores whose listing must look up each object's size and
        time (a directory's ``stat``) override it with something cheaper.
        """
        return sorted(info.key for info in self.list(partition) if "/" not in info.key[len(partition) :])

    def get_listed(self, key: str) -> bytes:
        """``get`` for a key this store itself listed (so it needs no checking): what a loader reads in bulk."""
        return self.get(key)

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the object; True if it existed."""

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the objects ``keys``; how many existed. Stores that keep many objects in one file (the
        local directory's packs) override it to rewrite each file once."""
        return sum(self.delete(key) for key in keys)

    # --- durability hooks: most stores write objects directly and need none of these ---------------

    def open_log(self) -> object | None:
        """Become the store's one ingest writer (the local store opens its write-ahead log); what recovery found."""
        return None

    def attach_event_loop(self, loop: asyncio.AbstractEventLoop) -> None:  # noqa: B027 - optional hook
        """Let ``loop`` (the ingest service's) do the store's own I/O, if it has any."""

    def settle(self, timeout: float = 30.0) -> None:  # noqa: B027 - optional hook
        """Leave no copy of acknowledged writes outside their objects (a write-ahead log), before a deletion.

        Deleting an object must not let it come back from another copy, nor leave that
        copy on disk: deletions call this first. Raises StorageUnavailable if it cannot
        within ``timeout`` seconds.
        """

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless the store can be read and written now."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections or handles."""

    def reopen_url(self) -> str:
        """The URL another process opens this store with: ``url`` unless that hides secrets.

        ``url`` is for showing (secrets as ``***``); this one may carry credentials, so it is
        handed to a worker process and never printed or logged.
        """
        return self.url


_PLAIN_KEY = re.compile(r"[A-Za-z0-9=_:-][A-Za-z0-9=_.:-]*(?:/[A-Za-z0-9=_:-][A-Za-z0-9=_.:-]*)*\Z")


def check_key(key: str) -> str:
    """Reject keys that could escape a store's root or be ambiguous.

    A first segment starting with ``.`` is reserved for the stores' own bookkeeping
    (temp files, the write probe of ``check``), which listings never show.
    """
    if _PLAIN_KEY.match(key):  # the usual key (a session's): no segment empty or starting with "."
        return key
    parts = key.split("/")
    if not key or key.startswith(("/", ".")) or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\0" in key:
        raise ValueError(f"invalid object key {key!r}")
    return key
