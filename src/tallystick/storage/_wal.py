"""Write-ahead log of the local store: durable create-only writes at one ``fdatasync`` per group.

Why: a durable object file costs a sync of its content and of its directory entry. The
filesystem-wide ``syncfs`` that group commit needed flushes every process's dirty data
(1-100 ms on a shared disk). Appending to one log file and ``fdatasync``-ing it flushes only
our own bytes (about 0.3 ms), however many sessions share it.

Files, below the store's root::

    .wal/lock                  flock'ed by the one writing process for as long as it runs
    .wal/<sequence>.log        segments: records appended in order, never rewritten
    .tmp/m-<pid>-<tag>-<n>     a new object's content while it is being materialized
    .tmp/w-<pid>-<n>           the same during recovery

A record is ``length (u32) | crc32 of length and payload (u32) | payload`` with payload
``key length (u16) | key (UTF-8) | object bytes``, little-endian.

A create-only write (``WriteAheadLog.put``), on the caller's thread:

1. Under the log's lock: if the key is pending (accepted, not yet materialized), wait for
   that write's outcome and answer "already there"; else if the object file exists, answer
   "already there" at once; else add the key to the pending map and queue its record.
2. The committer thread takes every queued record (a group: whatever arrived while the
   previous group was being synced), appends them with one ``write`` and ONE ``fdatasync``
   of the current segment. The records are now durable.
3. It sends the group down a pipe to a helper process (``_materializer.py``), which turns
   each record into an ordinary object file: content into a temp file, then ``link()`` to
   the object's name (create-only, no fsync), so ``get``/``list`` and other processes (the
   loader, the CLI) see complete objects right after the answer. The committer goes on
   with the next group meanwhile.
4. The acker thread reads the helper's one result byte per record (groups come back in
   the order sent), removes the keys from the pending map under the lock and wakes every
   waiter: the first writer of a key gets "created" (201), later ones "already there" (304).
5. Checkpoint: every ``checkpoint_seconds`` the committer starts a new segment and hands the
   closed one to the checkpointer thread, which runs one ``syncfs`` (elsewhere: fsync of each
   materialized file and directory) and then deletes the segment: its records are durable as
   objects now.

Opening (``WriteAheadLog.__init__``) takes the flock (a second writer fails with StoreLocked),
then recovers: it replays every segment in order; a record whose object is missing or differs
(truncated or zero-filled by a power loss) is rewritten with temp file + rename, since the log
is the authority for acknowledged data; the first record that is cut short or fails its checksum
ends the segment (it was never acknowledged: its group's sync did not finish). Then one sync,
and the segments are deleted.

Races and crash points, and why each is harmless:

* Two writers of one key: step 1 runs under one lock, and a key stays pending until its object
  file exists, so exactly one reserves it; the others wait for that write to be durable before
  answering 304, so a 304 never gets ahead of the data it vouches for.
* An object file that exists is durable or in the log: it is created only after its record's
  fdatasync (or, at open, recovery synced it before any write was accepted), so step 1 may
  answer 304 without waiting.
* Crash before the fdatasync of step 2 returns: nobody was answered; a torn record at the end
  is dropped at recovery; complete records are materialized (their clients retry: 304).
* Crash between 2 and 4: the records are durable; recovery materializes what is missing.
* Power loss after 3 but before the checkpoint's sync: a name may point at an empty or partial
  file (no per-file fsync); the segment still exists, so recovery rewrites it whole before the
  store accepts writes again. Readers in other processes can see such a file until then.
* Crash during the checkpoint: segments are deleted only after the sync returned; a segment
  that survives is replayed again, finding every object equal: nothing is rewritten.
* The write or fdatasync of the log fails: that group gets StorageUnavailable (503) and the
  log refuses all later writes until a restart: after a failed fsync the kernel may have
  dropped the pages, so only a replay from disk knows what is durable.
* Materializing fails after the sync (disk full): the record is durable, so the writer still
  gets 201; its key stays pending (304 for retries), its segment is kept for the next recovery.
* The helper process dies: the acker sees the pipe close, answers the groups in flight with
  StorageUnavailable (their records are durable: the next start materializes them, retries
  get 304), keeps their segments and refuses writes until a restart. When the server dies,
  the helper reads the end of its input and exits; it never holds the directory's lock.
* A waiting task is cancelled (client gone): its write goes on; only the answer is dropped.
* One writer per directory: the flock makes a second server fail at start. Processes that
  write without the log (``LocalStore.put_if_absent`` in a tool, while a server runs) are
  outside that rule: ``link()`` still lets only one create a name, but a pending record of the
  same key is not seen by them (both may answer "created"; same key means same session).

Where the work runs: creating a file costs 15-150 us of kernel time on a busy ext4. On the
event loop's thread that time would be taken from validating requests; on another thread of
the server it would wait for the GIL after every system call. So the server's threads only
reserve keys (event loop), write and sync the log (committer: the GIL is released for the
whole wait) and answer (acker), and the files are made by a process with its own interpreter.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import ctypes
import fcntl
import itertools
import logging
import os
import secrets
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tallystick.storage import _materializer as helper
from tallystick.storage.base import StorageError, StorageUnavailable, check_key

log = logging.getLogger("tallystick.storage")

WAL_DIR = ".wal"
LOCK_FILE = "lock"
SEGMENT_SUFFIX = ".log"
_LENGTH = struct.Struct("<I")
_HEADER = struct.Struct("<II")  # payload length, crc32 of (length bytes + payload)
_KEY_LENGTH = struct.Struct("<H")
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


class StoreLocked(StorageError):
    """Another process is already the writer of this storage directory."""


def encode_record(key: str, data: bytes) -> bytes:
    """One log record: length, checksum, key, data."""
    raw_key = key.encode()
    payload = _KEY_LENGTH.pack(len(raw_key)) + raw_key + data
    length = _LENGTH.pack(len(payload))
    return length + _LENGTH.pack(zlib.crc32(payload, zlib.crc32(length))) + payload


def decode_records(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The complete records at the start of ``data`` and where they end (what follows is torn)."""
    records: list[tuple[str, bytes]] = []
    view = memoryview(data)
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if length < _KEY_LENGTH.size or end > len(data):
            break
        payload = view[start:end]
        if zlib.crc32(payload, zlib.crc32(view[pos : pos + _LENGTH.size])) != crc:
            break
        (key_length,) = _KEY_LENGTH.unpack_from(payload)
        key_end = _KEY_LENGTH.size + key_length
        try:
            key = check_key(bytes(payload[_KEY_LENGTH.size : key_end]).decode())
        except (UnicodeDecodeError, ValueError):
            break
        records.append((key, bytes(payload[key_end:])))
        pos = end
    return records, pos


def _syncfs_function() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


def _fsync_path(path: str | Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        written = os.write(fd, data)
        if written < len(data):  # rare for a regular file; finish it
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


AnyFuture = asyncio.Future[bool] | concurrent.futures.Future[bool]
# Who waits for a key: their event loop (None: a plain thread), their future, and whether they reserved it.
Waiter = tuple[asyncio.AbstractEventLoop | None, AnyFuture, bool]


class _Entry:
    """One reserved key: its record, who waits for it, and whether it is synced but unmaterialized."""

    __slots__ = ("data", "durable", "key", "path", "waiters")

    def __init__(self, key: str, path: str, data: bytes, waiters: list[Waiter]) -> None:
        self.key = key
        self.path = path
        self.data = data
        self.waiters = waiters
        self.durable = False  # synced but could not be materialized: answer 304 at once


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int
    size: int = 0
    records: int = 0
    opened: float = field(default_factory=time.monotonic)
    outstanding: int = 0  # records synced but not yet materialized
    keep: bool = False  # holds a record that is not materialized: leave it for recovery
    materialized: list[str] = field(default_factory=list)  # only without syncfs


@dataclass
class Recovery:
    """What opening the log found (for logs and tests)."""

    segments: int = 0
    records: int = 0
    rewritten: int = 0
    torn_bytes: int = 0


class WriteAheadLog:
    """The one writer of a storage directory; see the module docstring for the protocol.

    ``tmp_dir`` is where new objects are written before being linked (same filesystem).
    ``use_syncfs`` None uses ``syncfs`` where the platform has it; False forces per-file fsync.
    ``checkpoint_seconds`` and ``segment_bytes`` bound how much the log holds.
    ``datasync`` makes a segment's appended bytes durable (for tests: slow or failing disks).
    """

    def __init__(
        self,
        root: Path,
        tmp_dir: Path,
        *,
        use_syncfs: bool | None = None,
        checkpoint_seconds: float = 1.0,
        segment_bytes: int = 64 << 20,
        datasync: Callable[[int], None] = _datasync,
    ) -> None:
        self.root = root
        self._datasync = datasync
        self.dir = root / WAL_DIR
        self.checkpoint_seconds = checkpoint_seconds
        self.segment_bytes = segment_bytes
        syncfs = _syncfs_function() if use_syncfs is not False else None
        if use_syncfs and syncfs is None:
            raise StorageUnavailable("syncfs is not available on this platform: use per-file fsync")
        self._syncfs = syncfs
        self._prefix = f"{root}{os.sep}"
        self._tmp_prefix = f"{tmp_dir}{os.sep}w-{os.getpid()}-"
        self._serial = itertools.count()  # temp file names; next() on a count is atomic
        self._dirs: set[str] = set()
        self._mutex = threading.Lock()  # guards _pending, _queue, _closed, _failed
        self._wakeup = threading.Lock()  # released to wake the committer: cheaper than a Condition
        self._wakeup.acquire()
        self._pending: dict[str, _Entry] = {}
        self._queue: list[_Entry] = []
        self._closed = False
        self._failed: str | None = None
        self._checkpoint_cond = threading.Condition()
        self._checkpoints: list[_Segment] = []
        self._committer_done = False
        # For tests and observability.
        self.groups = 0
        self.records = 0
        self.checkpoints = 0
        try:
            self.dir.mkdir(exist_ok=True)
            self._lock_fd = self._take_lock()
        except OSError as exc:
            raise StorageUnavailable(f"cannot open the write-ahead log in {self.dir}: {exc.strerror}") from None
        try:
            self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
            self.recovery = self._recover()
            self._segment = self._new_segment()
            self.helper_pid, self._to_helper, self._from_helper = self._spawn_helper(tmp_dir)
        except OSError as exc:
            os.close(self._lock_fd)
            raise StorageUnavailable(f"cannot recover the write-ahead log in {self.dir}: {exc.strerror}") from None
        self._inflight: collections.deque[tuple[list[_Entry], _Segment]] = collections.deque()
        self._helper_gone = False
        self._helper_message = f"the process writing objects to {self.root} stopped: restart the service"
        self._committer = threading.Thread(target=self._commit_loop, name="tallystick-wal", daemon=True)
        self._acker = threading.Thread(target=self._ack_loop, name="tallystick-wal-ack", daemon=True)
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="tallystick-wal-sync", daemon=True)
        self._committer.start()
        self._acker.start()
        self._checkpointer.start()

    @staticmethod
    def _spawn_helper(tmp_dir: Path) -> tuple[int, int, int]:
        """Start the process that creates object files (``_materializer``); its pid and our pipe ends."""
        to_child, to_helper = os.pipe()
        from_helper, from_child = os.pipe()
        prefix = f"{tmp_dir}{os.sep}m-{os.getpid()}-{secrets.token_hex(4)}-"
        try:
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-I", "-S", helper.__file__, prefix],
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, to_child, 0), (os.POSIX_SPAWN_DUP2, from_child, 1)],
            )
        except BaseException:
            for fd in (to_helper, from_helper):
                os.close(fd)
            raise
        finally:
            os.close(to_child)
            os.close(from_child)
        return pid, to_helper, from_helper

    # --- opening ------------------------------------------------------------------------------

    def _take_lock(self) -> int:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLocked(
                f"another tallystick server is writing to {self.root} (it holds {self.dir / LOCK_FILE}): "
                "stop it or give this one another storage directory"
            ) from None
        return fd

    def segment_paths(self) -> list[Path]:
        """The log's segment files, oldest first."""
        found = []
        for entry in os.scandir(self.dir):
            stem, dot, suffix = entry.name.partition(".")
            if dot + suffix == SEGMENT_SUFFIX and stem.isdigit():
                found.append((int(stem), Path(entry.path)))
        return [path for _, path in sorted(found)]

    def _recover(self) -> Recovery:
        """Replay every segment left by an earlier writer, make the objects durable, delete the segments."""
        recovery = Recovery()
        segments = self.segment_paths()
        self._sequence = int(segments[-1].name.partition(".")[0]) + 1 if segments else 1
        written: dict[str, None] = {}
        for segment in segments:
            data = segment.read_bytes()
            records, end = decode_records(data)
            recovery.segments += 1
            recovery.records += len(records)
            recovery.torn_bytes += len(data) - end
            for key, obj in records:
                path = self._prefix + key
                written[path] = None
                try:
                    with open(path, "rb") as f:
                        current: bytes | None = f.read()
                except (FileNotFoundError, NotADirectoryError):
                    current = None
                if current != obj:  # missing, or cut short by a power loss: the log has it whole
                    self._make_parents(os.path.dirname(path))
                    tmp = self._tmp_prefix + str(next(self._serial))
                    try:
                        _write_new_file(tmp, obj)
                        os.replace(tmp, path)
                    finally:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(tmp)
                    recovery.rewritten += 1
        if segments:
            self._sync_all(list(written))
            for segment in segments:
                segment.unlink()
            _fsync_path(self.dir, directory=True)
            log.info(
                "write-ahead log replayed: %d segments, %d records, %d objects rewritten, %d torn bytes dropped",
                recovery.segments,
                recovery.records,
                recovery.rewritten,
                recovery.torn_bytes,
            )
        return recovery

    def _new_segment(self) -> _Segment:
        path = self.dir / f"{self._sequence:016d}{SEGMENT_SUFFIX}"
        self._sequence += 1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            _fsync_path(self.dir, directory=True)  # its records are only as durable as its name
        except BaseException:
            os.close(fd)
            raise
        return _Segment(path, fd)

    # --- writing ------------------------------------------------------------------------------

    def _reserve(self, key: str, data: bytes, loop: asyncio.AbstractEventLoop | None) -> AnyFuture | None:
        """Step 1: a future of this key's outcome, or None if its object already exists."""
        path = self._prefix + key
        with self._mutex:
            if self._failed is not None:
                raise StorageUnavailable(self._failed)
            if self._closed:
                raise StorageUnavailable(f"the store at {self.root} is closed: restart the service")
            entry = self._pending.get(key)
            if entry is None:
                try:
                    os.lstat(path)
                except (FileNotFoundError, NotADirectoryError):
                    pass
                else:
                    return None
            elif entry.durable:
                return None
            future: AnyFuture = loop.create_future() if loop is not None else concurrent.futures.Future()
            if entry is not None:
                entry.waiters.append((loop, future, False))
                return future
            entry = _Entry(key, path, data, [(loop, future, True)])
            self._pending[key] = entry
            self._queue.append(entry)
            if len(self._queue) == 1:
                self._wake()
            return future

    def _wake(self) -> None:
        try:  # noqa: SIM105 - the hot path: contextlib.suppress costs a Python-level context manager
            self._wakeup.release()
        except RuntimeError:  # already woken
            pass

    async def put(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless an object is there; True if created. Durable on return."""
        future = self._reserve(key, data, asyncio.get_running_loop())
        if future is None:
            return False
        assert isinstance(future, asyncio.Future)
        return await future

    def put_blocking(self, key: str, data: bytes, timeout: float = 60.0) -> bool:
        """``put`` for threads without an event loop."""
        future = self._reserve(key, data, None)
        if future is None:
            return False
        assert isinstance(future, concurrent.futures.Future)
        try:
            return future.result(timeout)
        except TimeoutError:
            raise StorageUnavailable(f"writing to {self.root} took over {timeout:.0f} s: retry later") from None

    @property
    def failed(self) -> str | None:
        """Why the log refuses writes (until a restart), or None."""
        return self._failed

    def _commit_loop(self) -> None:
        while True:
            with self._mutex:
                group, self._queue = self._queue, []
                closing = self._closed
            if group:
                self._commit(group)
            segment = self._segment
            if (
                self._failed is None
                and segment.records
                and (
                    closing
                    or segment.size >= self.segment_bytes
                    or time.monotonic() - segment.opened >= self.checkpoint_seconds
                )
            ):
                self._rotate(last=closing)
            if closing and not group:
                break
            if not group:
                self._wakeup.acquire(timeout=self.checkpoint_seconds)
        os.close(self._to_helper)  # the helper finishes what it has, then exits; the acker sees the end
        with self._checkpoint_cond:
            self._committer_done = True
            self._checkpoint_cond.notify()

    def _commit(self, group: list[_Entry]) -> None:
        """Step 2 for one group, then steps 3-4 on the event loop each write came from."""
        segment = self._segment
        error: StorageUnavailable | None = None
        if self._failed is not None:
            error = StorageUnavailable(self._failed)
        else:
            data = b"".join([encode_record(e.key, e.data) for e in group])
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(segment.fd, view) :]
                self._datasync(segment.fd)
            except OSError as exc:
                message = f"cannot write the log in {self.dir} ({exc.strerror}): restart the service"
                error = StorageUnavailable(message)
                log.error("write-ahead log failed: %s; refusing writes until restart", exc.strerror)
                with self._mutex:
                    self._failed = message
            else:
                segment.size += len(data)
                segment.records += len(group)
        self.groups += 1
        self.records += len(group)
        if error is not None:
            self._answer(group, [None] * len(group), error)
            return
        with self._checkpoint_cond:
            segment.outstanding += len(group)
        with self._mutex:
            gone = self._helper_gone
            if not gone:
                self._inflight.append((group, segment))  # before the helper can answer for it
        if gone:
            segment.keep = True
            self._answer(group, [None] * len(group), StorageUnavailable(self._helper_message))
            self._release(segment, len(group))
            return
        try:
            helper.write_all(self._to_helper, helper.encode_group([(e.path, e.data) for e in group]))
        except OSError as exc:  # the helper is gone: the acker answers what is in flight
            log.error("the process writing objects is gone (%s)", exc.strerror)

    def _ack_loop(self) -> None:
        """Steps 3-4 as the helper reports: one result byte per record, groups in the order sent."""
        results = b""
        while True:
            try:
                chunk = os.read(self._from_helper, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            results += chunk
            while self._inflight and len(results) >= len(self._inflight[0][0]):
                group, segment = self._inflight.popleft()
                done, results = results[: len(group)], results[len(group) :]
                self._finish(group, segment, done)
        with self._mutex:  # from here on nothing is added to _inflight
            self._helper_gone = True
            if not self._closed and self._failed is None:
                log.error("%s", self._helper_message)
                self._failed = self._helper_message
        while self._inflight:
            group, segment = self._inflight.popleft()
            segment.keep = True  # durable in the log: the next start materializes them
            self._answer(group, [None] * len(group), StorageUnavailable(self._helper_message))
            self._release(segment, len(group))

    def _finish(self, group: list[_Entry], segment: _Segment, results: bytes) -> None:
        outcomes: list[bool | None] = []
        for entry, result in zip(group, results, strict=True):
            if result == helper.CREATED:
                outcomes.append(True)
                if self._syncfs is None:
                    segment.materialized.append(entry.path)
            elif result == helper.EXISTED:  # written by a process that does not use this log
                outcomes.append(False)
            else:
                outcomes.append(None)
                segment.keep = True
                log.error("cannot materialize %s: it stays in the log until a restart", entry.key)
        # Answer on the event loop that reserved each key: the lock around the pending map is then
        # taken by that loop's own thread, never held here while this thread waits for the GIL.
        by_loop: dict[asyncio.AbstractEventLoop | None, tuple[list[_Entry], list[bool | None]]] = {}
        for entry, outcome in zip(group, outcomes, strict=True):
            entries, outs = by_loop.setdefault(entry.waiters[0][0], ([], []))
            entries.append(entry)
            outs.append(outcome)
        for loop, (entries, outs) in by_loop.items():
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._answer, entries, outs, None)
                    continue
                except RuntimeError:  # that event loop is closed: nobody waits there
                    pass
            self._answer(entries, outs, None)
        self._release(segment, len(group))

    def _release(self, segment: _Segment, records: int) -> None:
        with self._checkpoint_cond:
            segment.outstanding -= records
            if segment.fd < 0 and not segment.outstanding:  # closed: the checkpointer may be waiting
                self._checkpoint_cond.notify()

    def _make_parents(self, directory: str) -> None:
        if directory not in self._dirs:
            os.makedirs(directory, exist_ok=True)
            self._dirs.add(directory)

    def _answer(self, entries: list[_Entry], created: list[bool | None], error: StorageUnavailable | None) -> None:
        """Step 4: release the keys and wake their waiters (a synced, unmaterialized key stays pending)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        here: list[tuple[AnyFuture, bool]] = []
        elsewhere: dict[asyncio.AbstractEventLoop, list[tuple[AnyFuture, bool]]] = {}
        with self._mutex:
            for entry, outcome in zip(entries, created, strict=True):
                if outcome is None and error is None:
                    entry.durable = True  # synced: its writer was first, it is stored
                else:
                    del self._pending[entry.key]
                made = outcome is not False
                for loop, future, first in entry.waiters:
                    item = (future, made and first)
                    if loop is None or loop is running:
                        here.append(item)
                    else:
                        elsewhere.setdefault(loop, []).append(item)
                entry.waiters = []
        _settle(here, error)
        for loop, items in elsewhere.items():
            with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody waits there
                loop.call_soon_threadsafe(_settle, items, error)

    # --- checkpoints --------------------------------------------------------------------------

    def _rotate(self, *, last: bool = False) -> None:
        """Close the current segment and hand it to the checkpointer; start a new one unless ``last``."""
        closed = self._segment
        if not last:
            try:
                self._segment = self._new_segment()
            except OSError as exc:
                log.warning("cannot start a new log segment (%s): keeping the current one", exc.strerror)
                return
        os.close(closed.fd)
        closed.fd = -1
        with self._checkpoint_cond:
            self._checkpoints.append(closed)
            self._checkpoint_cond.notify()

    def _checkpoint_loop(self) -> None:
        waiting: list[_Segment] = []
        while True:
            with self._checkpoint_cond:
                while not self._checkpoints and not self._committer_done:
                    self._checkpoint_cond.wait()
                waiting += self._checkpoints
                self._checkpoints = []
                done = self._committer_done
            if waiting:
                self._wait_materialized(waiting)
                try:
                    self._sync_all([p for s in waiting for p in s.materialized])
                except OSError as exc:
                    log.warning("checkpoint of %s failed (%s): will retry", self.dir, exc.strerror)
                    if not done:
                        time.sleep(self.checkpoint_seconds)
                        continue
                else:
                    for segment in waiting:
                        if not segment.keep:
                            with contextlib.suppress(FileNotFoundError):
                                segment.path.unlink()
                    self.checkpoints += 1
                    waiting = []
            if done:
                return

    def _wait_materialized(self, segments: list[_Segment], timeout: float = 30.0) -> None:
        """Wait until every record of ``segments`` is materialized (else keep them for recovery)."""
        deadline = time.monotonic() + timeout
        with self._checkpoint_cond:
            while any(s.outstanding for s in segments):
                left = deadline - time.monotonic()
                if left <= 0:  # an event loop that stopped running: recovery will materialize them
                    for segment in segments:
                        segment.keep = segment.keep or segment.outstanding > 0
                    return
                self._checkpoint_cond.wait(min(left, 0.1))

    def _sync_all(self, paths: list[str]) -> None:
        """Make ``paths`` (files written without fsync) and their names durable."""
        if self._syncfs is not None:
            if self._syncfs(self._root_fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            return
        directories: dict[str, None] = {}
        root = str(self.root)
        for path in paths:
            _fsync_path(path)
            parent = os.path.dirname(path)
            while parent != root and parent not in directories:
                directories[parent] = None
                parent = os.path.dirname(parent)
        for directory in [*directories, root]:
            _fsync_path(directory, directory=True)

    def close(self) -> None:
        """Commit what is queued, checkpoint, stop the threads and release the directory."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
        self._wake()
        self._committer.join(timeout=60)
        self._acker.join(timeout=60)
        self._checkpointer.join(timeout=60)
        os.close(self._from_helper)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.helper_pid, 0)
        segment = self._segment
        if segment.fd >= 0:
            empty = os.fstat(segment.fd).st_size == 0  # else it holds records whose sync failed: replay them
            os.close(segment.fd)
            segment.fd = -1
            if empty:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
        os.close(self._root_fd)
        os.close(self._lock_fd)


def _settle(items: list[tuple[AnyFuture, bool]], error: Exception | None) -> None:
    for future, result in items:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
