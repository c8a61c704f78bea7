"""A directory on local disk as an object store (the embedded default).

Create-only, durable write of one object:

1. write the bytes to a uniquely named temp file under ``<root>/.tmp/`` and fsync it;
2. ``link()`` the temp file to the object's path: the kernel creates the name only if
   it does not exist (EEXIST otherwise), so exactly one of any number of concurrent
   writers wins, and the name always points at a complete, fsynced file;
3. unlink the temp file and fsync the object's directory, making the new name durable.

A crash before 2 leaves only a temp file (swept on open); a crash between 2 and 3 may
lose the name, but the writer has not acknowledged anything yet. Readers never see
partial objects because a name appears only once its content is complete.

The ingest service writes through a write-ahead log instead (``open_log``; design note in
``_wal.py``): many concurrent writes share one ``fdatasync`` of a log file, and each
checkpoint keeps a partition's new objects in one pack (``_pack.py``) rather than a file each.
So a key is found in one of three places, and every read looks in all of them: a file of its
own (what this class writes without the log, and every object of stores written before packs),
a pack of its directory, or the log itself (acknowledged, not yet checkpointed: ``LogView``).
Listings merge the three in key order and never show a pack or the log's files; a deletion
unlinks the file and writes each pack that holds the key again without it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import heapq
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tallystick.storage import _pack
from tallystick.storage._wal import WAL_DIR, LogView, Recovery, WriteAheadLog, replay_if_unlocked, segment_paths
from tallystick.storage.base import (
    InvalidStorageUrl,
    ObjectInfo,
    ObjectNotFound,
    StorageUnavailable,
    Store,
    check_key,
)

_TMP = ".tmp"
_STALE_TMP_SECONDS = 3600


def path_from_url(url: str) -> Path:
    """``file:///abs/dir``, ``file://./rel`` or a plain path → a directory path."""
    if "://" not in url:
        path = url
    else:
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise InvalidStorageUrl(f"not a file URL: {url!r}")
        path = unquote(parts.netloc + parts.path)
    if not path.strip():
        raise InvalidStorageUrl(f"the storage URL {url!r} names no directory: use a path or file:///path/to/dir")
    return Path(path).expanduser()


def _read_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while part := os.read(fd, 1 << 20):
            parts.append(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(Store):
    """Objects as files below ``root``; see the module docstring for the write protocol."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.url = self.root.as_uri()
        self.fsync = fsync
        self._tmp = self.root / _TMP
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidStorageUrl(
                f"cannot use {self.root} as the storage directory ({exc.strerror}): "
                "choose a directory you can write, e.g. --data-dir ~/.local/share/tallystick"
            ) from None
        if not os.access(self._tmp, os.W_OK | os.X_OK):
            raise InvalidStorageUrl(
                f"the storage directory {self.root} is not writable: fix its permissions or choose another --data-dir"
            )
        self._sweep_temp_files()
        self._packs = _pack.Packs()
        self._log_view = LogView(self.root)
        self._located: dict[str, dict[str, tuple[str, int, int]]] = {}  # directory -> object -> (pack, ...)

    def _sweep_temp_files(self) -> None:
        cutoff = time.time() - _STALE_TMP_SECONDS
        for entry in os.scandir(self._tmp):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _make_parents(self, directory: Path) -> None:
        """Create ``directory`` and its missing parents, fsyncing each new entry's parent."""
        missing: list[Path] = []
        d = directory
        while not d.exists():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            if self.fsync:
                _fsync_dir(d.parent)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if self._log is not None:  # keep one pending map, so create-only holds across both paths
            return self._log.put_blocking(check_key(key), data)
        path = self._path(key)
        if path.name.startswith("."):
            raise ValueError(f"invalid object key {key!r}: a last segment starting with '.' names the store's files")
        tmp = self._tmp / uuid.uuid4().hex
        try:
            if path.exists() or self._packed(str(path.parent), path.name):
                return False
            self._make_parents(path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            if self.fsync:
                _fsync_dir(path.parent)
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
                raise StorageUnavailable(f"cannot write to {self.root}: {exc.strerror}") from None
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    _log: WriteAheadLog | None = None

    def open_log(self, **options: Any) -> Recovery | None:
        """Become this directory's one writer: lock it, replay its log, write through the log from now on.

        Returns what the replay found. Raises StoreLocked if another process writes here
        through its log. Without fsync there is nothing to make fast: a no-op (None).
        ``options`` go to WriteAheadLog (for tests).
        """
        if self.fsync and self._log is None:
            self._log = WriteAheadLog(self.root, self._tmp, **options)
            return self._log.recovery
        return None

    def attach_event_loop(self, loop: Any) -> None:
        """Let ``loop`` (the server's) do the log's I/O, so writes from other threads are handed to it."""
        if self._log is not None:
            self._log.attach(loop)

    async def put_if_absent_async(self, key: str, data: bytes) -> bool:
        """Like ``put_if_absent``; concurrent writers share one log sync (``open_log`` on first use)."""
        if not self.fsync:
            return await super().put_if_absent_async(key, data)
        if self._log is None:
            self.open_log()
            assert self._log is not None
        return await self._log.put(check_key(key), data)

    def put_if_absent_future(self, key: str, data: bytes) -> asyncio.Future[bool]:
        """Straight from the log when this loop does its I/O (no task per write), else as the base class
        (also when a subclass writes its own way: ``put_if_absent_async`` overridden)."""
        log = self._log
        if log is not None and log.runs_here() and type(self).put_if_absent_async is LocalStore.put_if_absent_async:
            return log.submit(check_key(key), data)
        return super().put_if_absent_future(key, data)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if path.name.startswith("."):  # the store's own files (packs, their temp files): never an object
            raise ObjectNotFound(key)
        try:
            return _read_file(str(path))
        except (FileNotFoundError, NotADirectoryError):
            pass
        data = self._from_packs_or_log(key, str(path.parent), path.name)
        if data is None:
            raise ObjectNotFound(key)
        return data

    def _from_packs_or_log(self, key: str, directory: str, name: str) -> bytes | None:
        """From a pack, else from the log (acknowledged, not yet checkpointed), else from a pack again (the
        checkpoint may have made it and removed the segment meanwhile)."""
        data = self._from_packs(directory, name)
        if data is None:
            where = self._log_view.find(key)
            data = None if where is None else self._log_view.read(where)
            if data is None:
                self._located.pop(directory, None)
                data = self._from_packs(directory, name)
        return data

    def _from_packs(self, directory: str, name: str) -> bytes | None:
        """The object ``name`` from a pack of ``directory``, or None. Which pack holds which object is
        remembered from the last listing, and listed again when it does not hold it or is gone."""
        fresh = False
        for _ in range(100):
            located = self._located.get(directory)
            if located is None or (name not in located and not fresh):
                try:
                    located = self._packs.entries(directory)[1]
                except (FileNotFoundError, NotADirectoryError):
                    return None
                self._remember(directory, located)
                fresh = True
            where = located.get(name)
            if where is None:
                return None
            try:
                data = self._packs.get(f"{directory}/{where[0]}", name)
            except FileNotFoundError:  # replaced or merged since it was listed
                data = None
                fresh = False
            if data is not None or fresh:
                return data
            self._located.pop(directory, None)
        return None

    def _remember(self, directory: str, located: dict[str, tuple[str, int, int]]) -> None:
        if len(self._located) >= 64:
            del self._located[next(iter(self._located))]
        self._located[directory] = located

    def _packed(self, directory: str, name: str) -> bool:
        """Whether a pack of ``directory`` holds ``name`` now (listed afresh), or the log does."""
        if self._log_view.find(f"{directory}/{name}"[len(str(self.root)) + 1 :]) is not None:
            return True
        try:
            located = self._packs.entries(directory)[1]
        except (FileNotFoundError, NotADirectoryError):
            return False
        self._remember(directory, located)
        return name in located

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        # Walk only the directories that can hold keys with this prefix.
        # The log first: a record checkpointed after this read is in a pack by the walk below.
        logged = sorted(
            ObjectInfo(key, length, None)
            for key, (_, _, length) in self._log_view.under(prefix).items()
            if start_after is None or key > start_after
        )
        head, _, _ = prefix.rpartition("/")
        start = self.root / head if head else self.root
        walked = (
            info
            for info in self._walk(start, head)
            if info.key.startswith(prefix) and (start_after is None or info.key > start_after)
        )
        last = None
        for info in heapq.merge(walked, logged, key=lambda i: i.key):  # the walk's first: it has the time
            if info.key != last:
                last = info.key
                yield info

    def _walk(self, directory: Path, rel: str) -> Iterator[ObjectInfo]:
        try:
            entries = builtins.list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sort a directory as "name/" so the walk yields keys in plain string order,
        # as object stores list them: "a-b" < "a/x" because "-" < "/".
        items: builtins.list[tuple[str, os.DirEntry[str] | tuple[int, int]]] = []
        packs = False
        for entry in entries:
            if entry.name.startswith("."):  # the store's own files (packs are listed by what they hold)
                packs = packs or _pack.is_pack(entry.name)
                continue
            if entry.is_dir(follow_symlinks=False):
                items.append((entry.name + "/", entry))
            elif entry.is_file(follow_symlinks=False):
                items.append((entry.name, entry))
        if packs:
            plain = {name for name, _ in items}
            try:
                packed = self._packs.entries(str(directory))[1]
            except (FileNotFoundError, NotADirectoryError):
                packed = {}
            items += [(name, (length, mtime)) for name, (_, length, mtime) in packed.items() if name not in plain]
        items.sort(key=lambda item: item[0])
        for name, item in items:
            key = f"{rel}/{name}" if rel else name
            if isinstance(item, tuple):
                yield ObjectInfo(key, item[0], datetime.fromtimestamp(item[1] / 1e9, UTC))
            elif item.is_dir(follow_symlinks=False):
                yield from self._walk(Path(item.path), key.rstrip("/"))
            else:
                st = item.stat()
                yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def keys_in(self, partition: str) -> builtins.list[str]:
        """A bare directory scan and the packs' indexes: no ``stat`` of each file (at a million objects,
        most of a listing's time)."""
        directory = f"{self.root}/{check_key(partition.rstrip('/'))}"
        # The log first: a record checkpointed after this read is in a pack by the listing below.
        logged = [key for key in self._log_view.under(partition) if "/" not in key[len(partition) :]]
        try:
            plain, packed = self._packs.entries(directory)
        except (FileNotFoundError, NotADirectoryError):
            plain, packed = [], {}
        self._remember(directory, packed)
        return sorted({*(partition + name for name in (*plain, *packed)), *logged})

    def get_listed(self, key: str) -> bytes:
        """A plain ``os.read`` of the file, or the record from its pack: ``get`` (pathlib, key checks) costs
        about 4x that per small object."""
        directory, _, name = f"{self.root}/{key}".rpartition("/")
        if name.startswith("."):  # the store's own files (packs, their temp files): never an object
            raise ObjectNotFound(key)
        try:
            return _read_file(f"{directory}/{name}")
        except FileNotFoundError:
            pass
        data = self._from_packs_or_log(key, directory, name)
        if data is None:
            raise ObjectNotFound(key)
        return data

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no log segment written before this call is left; replay them if no server runs.

        With the log open in this process, or held by a running server, its writer checkpoints
        (makes objects of, then deletes) every segment within ``checkpoint_seconds`` of its last
        write. With nobody holding the lock, segments are what a stopped server left: replaying
        them here (``WriteAheadLog``'s recovery) makes their objects, so a deletion that follows
        deletes them for good instead of a later start bringing them back.
        """
        wal = self.root / WAL_DIR
        if not wal.is_dir():
            return
        before = set(segment_paths(wal))
        if not before:
            return
        if self._log is None:
            replay_if_unlocked(self.root, self._tmp)
        deadline = time.monotonic() + timeout
        while left := before & set(segment_paths(wal)):
            if time.monotonic() >= deadline:
                raise StorageUnavailable(
                    f"the write-ahead log in {wal} still holds {len(left)} segment(s) after {timeout:g}s: "
                    "is the ingest service writing to it stuck? Restart it and run this again"
                )
            time.sleep(0.05)

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        # The log first: a directory its checkpoint makes after this read is found by the scan below.
        found: set[str] = set()
        for key in self._log_view.under(prefix):
            head, slash, _ = key[len(prefix) :].partition("/")
            if slash:
                found.add(head)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            found.update(
                e.name
                for e in os.scandir(self.root / prefix)
                if e.is_dir(follow_symlinks=False) and not (not prefix and e.name.startswith("."))
            )
        return sorted(found)

    def delete(self, key: str) -> bool:
        return self.delete_many([key]) > 0

    def delete_many(self, keys: Iterable[str]) -> int:
        """Unlink the files, and write each pack holding some of ``keys`` again without them (once per pack).

        A key still only in the log (answered, not yet checkpointed) is settled first: else its record would
        make it again at the next checkpoint, and the writer would answer a new write of it "already there"."""
        keys = builtins.list(keys)
        if any(self._log_view.find(key) is not None for key in keys):
            self.settle()
        by_directory: dict[str, builtins.list[str]] = {}
        for key in keys:
            path = self._path(key)
            if path.name.startswith("."):  # the store's own files: never an object, never deleted as one
                continue
            by_directory.setdefault(str(path.parent), []).append(path.name)
        deleted = 0
        for directory, names in by_directory.items():
            unlinked = set()
            for name in set(names):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.unlink(f"{directory}/{name}")
                    unlinked.add(name)
            if unlinked and self.fsync:
                _fsync_dir(Path(directory))
            packed = set(names) & self._packs_of(directory)
            if packed:
                _pack.remove(directory, packed, fsync=self.fsync)
                self._located.pop(directory, None)
            deleted += len(unlinked | packed)
        return deleted

    def _packs_of(self, directory: str) -> set[str]:
        try:
            return set(self._packs.entries(directory)[1])
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def check(self) -> None:
        if self._log is not None and self._log.failed is not None:
            raise StorageUnavailable(self._log.failed)
        probe = self._tmp / f"probe-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailable(f"cannot write to {self.root}: {exc.strerror}") from None
