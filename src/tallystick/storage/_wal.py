"""Write-ahead log of the local store: durable create-only writes at one ``fdatasync`` per group.

Why: a durable object file costs a sync of its content and of its directory entry. Appending
to one log file and ``fdatasync``-ing it flushes only our own bytes (about 0.3-1 ms), however
many sessions share it (the group commit).

Two processes share the work. The server's process (this module, on its event loop) only
decides: it reserves keys, encodes records and answers. A writer process (``_writer.py``,
started at open, with its own interpreter on the other core) does all the disk work: it
appends records to the log, syncs, makes the objects and deletes synced segments.
So the event loop never waits for a disk, and no thread of the server competes with it for
the GIL (with a committer and an acker thread in the server, each group cost several GIL
hand-offs and context switches, which took a third of a durable request's time).

Files, below the store's root::

    .wal/lock                  flock'ed by the writing server and its writer process
    .wal/<sequence>.log        segments: records appended in order, never rewritten; one may
                               end in zeros written (and synced) ahead, which end its records
    .wal/next.spare            those zeros, ready to become the next segment
    <directory>/.pack-<unique> the objects of one group of records (or of a recovery, or of
                               packs merged) whose keys are in that directory (``_pack.py``)
    <directory>/.pack-tmp-<n>  a pack being written again (a deletion, a compaction, recovery)
    .tmp/m-<pid>-<tag>-<n>     a new pack's content while the writer makes it, where the
                               filesystem has no unnamed files (``O_TMPFILE``)
    .tmp/w-<pid>-<n>           an object file rewritten during recovery

A record is ``length (u32) | crc32 of length and payload (u32) | payload`` with payload
``key length (u16) | key (UTF-8) | object bytes``, little-endian.

A create-only write (``WriteAheadLog.put``):

1. On the I/O loop (below): if the key is pending (sent, not yet answered), wait for that
   write's outcome and answer "already there"; else add the key to the pending map, append its
   record to the output buffer; the buffer goes to the writer's pipe with one write at the end of
   the loop iteration (every request that was ready then shares it), or with the eighth record.
2. The writer reads whatever has arrived (a group). A record whose object exists (a file, a
   pack of its directory, or an answered record not in a pack yet: the writer keeps the names
   of the directories it used last) is answered "already there" and left out; the rest are
   appended to the current segment with one ``write``. One ``fdatasync`` covers every group
   written before it started, up to two of them at once (two sync threads); the records are
   durable once one covering them returns.
3. Once a sync has returned, the writer writes how far the log is synced to ``.wal/synced``
   (segment number and offset; no fsync: it is for readers) and answers: one outcome byte per
   record, in order, one write for all the groups synced by then. It reads the next groups
   meanwhile. Every reader of the store, in any process, reads the log up to that mark
   (``LogView``) besides files and packs, so an acknowledged session is readable at once, and
   one whose sync has not returned is not.
4. The I/O loop reads the outcomes (``add_reader``), removes the keys from the pending map and
   wakes the waiters: the first writer of a key gets "created" (201), later ones "already
   there" (304).
5. Checkpoint: every ``checkpoint_seconds`` (two) the writer closes the segment, and its
   checkpointer thread makes its objects: the segment's records of each directory go into one
   pack (``_pack.py``: the records as logged, and an index), written whole under the directory's
   flock; then one ``syncfs`` (elsewhere: fsync of each pack and directory), and the segment is
   deleted: its records are durable as objects now. One file per partition and checkpoint,
   where a file per session cost the writer about 60 us of CPU each (an inode, a name, their
   writeback): a third of a durable request. Then it merges the packs of the directories it
   wrote to, once 8 of a size are there (``_pack.compact``: a new pack written whole and synced,
   then the old ones removed), so a directory holds a few dozen packs.

The I/O loop is the first event loop that writes (the server's; ``attach`` makes it so at
start). Writes from other loops or threads (``put_blocking``) are handed to it; without a live
event loop, a private one on a thread of its own does the I/O. So the pending map and the
pipes are only ever touched by one thread, without a lock on the hot path.

Opening (``WriteAheadLog.__init__``) takes the flock (a second writer fails with StoreLocked;
if the holder is the writer process of a server that died, it waits a few seconds for it to
exit), then recovers: it replays every segment in order; a record whose object is missing or
differs (truncated or zero-filled by a power loss) is written again, since the log is the
authority for acknowledged data: into a new pack (the damaged one written again without it), or
an object file in place with temp file + rename; a pack that is not whole (its name made durable
before its content) is removed, its records being in the segments replayed. The first record
that is cut short or fails its checksum ends the segment (it was never acknowledged: its group's
sync did not finish). Then one sync, and the segments are deleted.

Races and crash points, and why each is harmless:

* Two writers of one key: step 1 runs on one thread, and a key stays pending until its object
  exists, so exactly one reserves it; the others wait for that write to be durable before
  answering 304, so a 304 never gets ahead of the data it vouches for.
* An object that exists is durable or in the log: its pack is named only after its record's
  fdatasync (or, at open, recovery synced it before any write was accepted), so step 2 may
  answer 304 for it without logging anything. Logging it would be wrong: recovery would take
  the new record for the authority and overwrite the first write's object.
* Only the writer process creates objects, and a key is sent again only after its answer (its
  object exists by then), so the writer's existence check in step 2 cannot race a creation.
  The names it keeps are read from the directory at first use and added to as it makes packs;
  a name found among them is looked up on disk again (once per group and directory), since
  another process may have deleted it: a retry of a deleted session is stored again, as a new
  upload is.
* Crash (of either process) before the fdatasync of step 2 returns: nobody was answered; a torn
  record at the end is dropped at recovery; complete records are materialized (retries: 304).
  Files prepared for them have no name yet: unnamed ones vanish, temp files are swept later.
* The server dies after step 2: the writer sees its input end and exits at once, leaving the
  log as it is; the next start (which waits for the writer to release the lock) replays it.
* Power loss after 3 but before the checkpoint's sync: a pack's name may point at an empty or
  partial file (no per-file fsync); the segment still exists, so recovery removes it and writes
  its objects again before the store accepts writes again. Readers skip a pack that is not
  whole, and a record that fails its checksum, until then.
* A compaction or a deletion replaces packs while others read them: the new pack is whole and
  named before the old ones go, and a reader that finds a pack gone lists the directory again.
  Both hold the directory's flock, so neither undoes the other's work.
* Crash during the checkpoint: segments are deleted only after the sync returned; a segment
  that survives is replayed again, finding every object equal: nothing is rewritten. A sync of
  the checkpoint that fails is not retried (a second one would not report the pages the first
  could not write): its segments stay until a restart replays them.
* The write or fdatasync of the log fails: that group gets StorageUnavailable (503), the files
  prepared for it are dropped unnamed, and the log refuses all later writes until a restart:
  after a failed fsync the kernel may have dropped the pages, so only a replay from disk knows
  what is durable. The segment is kept.
* Making a pack fails after the sync (disk full): the record is durable, so the writer still
  gets 201; its key stays pending (304 for retries), its segment is kept for the next recovery.
* The writer process dies: the server sees the pipe close, answers the writes in flight with
  StorageUnavailable (retries after a restart get 201 or 304, whatever reached the log) and
  refuses writes until a restart.
* A waiting task is cancelled (client gone): its write goes on; only the answer is dropped.
* An object deleted (retention, a user's data) while its record is still in the log comes back
  if the server crashes before the next checkpoint (two seconds) and the log is replayed; the
  retention sweep after each load deletes tombstoned users' sessions again. Deletes do not wait
  for a checkpoint: a known gap, one checkpoint wide.
* One writer per directory: the flock makes a second server fail at start. Processes that
  write without the log (``LocalStore.put_if_absent`` in a tool, while a server runs) are
  outside that rule: ``link()`` still lets only one create a name, but a pending record of the
  same key is not seen by them (both may answer "created"; same key means same session).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import fcntl
import itertools
import logging
import os
import secrets
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tallystick.storage import _pack
from tallystick.storage import _writer as writer
from tallystick.storage.base import StorageError, StorageUnavailable, check_key

log = logging.getLogger("tallystick.storage")

WAL_DIR = ".wal"
LOCK_FILE = "lock"
SEGMENT_SUFFIX = writer.SEGMENT_SUFFIX
_LENGTH, _HEADER, _KEY_LENGTH = writer.LENGTH, writer.HEADER, writer.KEY_LENGTH  # the record format, one copy
_CLOSE = _LENGTH.pack(0)  # tells the writer to finish and exit
_PIPE_BYTES = 1 << 20  # room for about a thousand sessions between the loop and the writer
# Records that go to the writer at once, without waiting for the end of the loop iteration: a batch's
# first sessions reach the writer while the server still validates the rest (the writer groups what it finds).
# Each write wakes the writer, and each group costs it a read, a write, a share of a sync and an answer. With
# a file per session the writer was slow enough that 8 paid (it made the first files of a burst while this
# loop read the rest); since it makes no file per session, 32 does: `bench/ingest.py --rounds 3 --seconds 10`
# on a regular install, durable PUT / plain no-op 0.47 and 0.52 (medians of 3 rounds) with 8, 0.53 and 0.61
# with 32, the writer's CPU per session 50-79 us against 37-48 (2026-12-03, one after another, load 1-2).
_FLUSH_RECORDS = 32
_ORPHAN_WAIT_SECONDS = 10.0  # how long an opening waits for a dead server's writer to exit


class StoreLocked(StorageError):
    """Another process is already the writer of this storage directory."""


def encode_record(key: str, data: bytes) -> bytes:
    """One log record: length, checksum, key, data (ValueError for a key or object too large for it)."""
    raw_key = key.encode()
    if len(raw_key) > 0xFFFF or len(raw_key) + len(data) + _KEY_LENGTH.size > 0xFFFFFFFF:
        raise ValueError(f"a key of {len(raw_key)} bytes with an object of {len(data)} bytes is too large for the log")
    head = _KEY_LENGTH.pack(len(raw_key)) + raw_key
    length = _LENGTH.pack(len(head) + len(data))
    crc = zlib.crc32(data, zlib.crc32(head, zlib.crc32(length)))
    return b"".join((length, _LENGTH.pack(crc), head, data))  # the object's bytes copied once


def decode_records(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The complete records at the start of ``data`` and where they end (what follows is torn)."""
    view = memoryview(data)
    records: list[tuple[str, bytes]] = []
    pos = 0
    for key, start, end in whole_records(view):
        records.append((key, bytes(view[start:end])))
        pos = end
    return records, pos


def whole_records(view: memoryview) -> Iterator[tuple[str, int, int]]:
    """Each whole record at the start of ``view``, in order, as its key and where its object starts and ends;
    up to the first one cut short, failing its checksum or naming no valid key (torn, or still being written)."""
    pos = 0
    while pos + _HEADER.size <= len(view):
        length, crc = _HEADER.unpack_from(view, pos)
        start, end = pos + _HEADER.size, pos + _HEADER.size + length
        if length < _KEY_LENGTH.size or end > len(view):
            return
        if zlib.crc32(view[start:end], zlib.crc32(view[pos : pos + _LENGTH.size])) != crc:
            return
        (key_length,) = _KEY_LENGTH.unpack_from(view, start)
        key_end = min(start + _KEY_LENGTH.size + key_length, end)
        try:
            key = check_key(bytes(view[start + _KEY_LENGTH.size : key_end]).decode())
        except (UnicodeDecodeError, ValueError):
            return
        yield key, key_end, end
        pos = end


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


@dataclass
class Recovery:
    """What opening the log found (for logs and tests)."""

    segments: int = 0
    records: int = 0
    rewritten: int = 0
    torn_bytes: int = 0
    unwritable: int = 0  # records whose object could not be written: their segments are kept


class _Entry:
    """One pending key: the future of the write that reserved it, those of later writers, and its state."""

    __slots__ = ("durable", "first", "key", "others")

    def __init__(self, key: str, first: asyncio.Future[bool]) -> None:
        self.key = key
        self.first = first
        self.others: list[asyncio.Future[bool]] = []
        self.durable = False  # synced but its object could not be made: answer 304 at once


class WriteAheadLog:
    """The one writer of a storage directory; see the module docstring for the protocol.

    ``tmp_dir`` is where new objects are written before being linked (same filesystem).
    ``use_syncfs`` None uses ``syncfs`` where the platform has it; False forces per-file fsync.
    ``checkpoint_seconds`` and ``segment_bytes`` bound how much the log holds.
    ``failpoints`` make the writer process misbehave, for tests (see ``_writer.py``).
    """

    def __init__(
        self,
        root: Path,
        tmp_dir: Path,
        *,
        use_syncfs: bool | None = None,
        checkpoint_seconds: float = 2.0,
        segment_bytes: int = 64 << 20,
        failpoints: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.dir = root / WAL_DIR
        syncfs = writer.syncfs_function() if use_syncfs is not False else None
        if use_syncfs and syncfs is None:
            raise StorageUnavailable("syncfs is not available on this platform: use per-file fsync")
        self._syncfs = syncfs
        self._prefix = f"{root}{os.sep}"
        self._tmp_prefix = f"{tmp_dir}{os.sep}w-{os.getpid()}-"
        self._serial = itertools.count()
        self._state = threading.Lock()  # guards attaching an I/O loop and closing
        self._io_loop: asyncio.AbstractEventLoop | None = None
        self._private: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
        self._pending: dict[str, _Entry] = {}
        self._sent: collections.deque[_Entry] = collections.deque()  # in the order their records were sent
        self._out = bytearray()  # records not yet written to the writer's pipe
        self._flush_scheduled = False
        self._unflushed = 0  # records added to _out since the last flush
        self._waiting_to_write = False  # an add_writer is registered for the pipe
        self._results = b""  # an incomplete answer (FAILED without its errno byte)
        self._closed = False
        self._failed: str | None = None
        self._gone_message = f"the process writing objects to {self.root} stopped: restart the service"
        # For tests and observability.
        self.records = 0  # records the writer logged (answered anything but "already there")
        self._groups = 0
        self._checkpoints = 0
        try:
            self.dir.mkdir(exist_ok=True)
            self._lock_fd = self._take_lock()
        except OSError as exc:
            raise StorageUnavailable(f"cannot open the write-ahead log in {self.dir}: {exc.strerror}") from None
        try:
            self.recovery = self._recover()
            self.helper_pid, self._to_helper, self._from_helper = self._spawn_writer(
                tmp_dir, checkpoint_seconds, segment_bytes, failpoints
            )
        except OSError as exc:
            os.close(self._lock_fd)
            raise StorageUnavailable(f"cannot recover the write-ahead log in {self.dir}: {exc.strerror}") from None

    def _spawn_writer(
        self, tmp_dir: Path, checkpoint_seconds: float, segment_bytes: int, failpoints: Sequence[str]
    ) -> tuple[int, int, int]:
        """Start the writer process (``_writer.py``); its pid and our ends of its input and output pipes."""
        to_child, to_writer = os.pipe()
        from_writer, from_child = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # Linux: room for bursts without blocking
            fcntl.fcntl(to_writer, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        prefix = f"{tmp_dir}{os.sep}m-{os.getpid()}-{secrets.token_hex(4)}-"
        argv = [sys.executable, "-I", "-S", writer.__file__, str(self.root), prefix, str(self._sequence)]
        argv += [repr(checkpoint_seconds), str(segment_bytes), "1" if self._syncfs else "0"]
        argv.append(",".join(failpoints) or "-")
        os.set_inheritable(self._lock_fd, True)  # the writer holds the lock for as long as it runs
        try:
            pid = os.posix_spawn(
                sys.executable,
                argv,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, to_child, 0), (os.POSIX_SPAWN_DUP2, from_child, 1)],
            )
        except BaseException:
            for fd in (to_writer, from_writer):
                os.close(fd)
            raise
        finally:
            os.set_inheritable(self._lock_fd, False)
            os.close(to_child)
            os.close(from_child)
        os.set_blocking(to_writer, False)
        os.set_blocking(from_writer, False)
        return pid, to_writer, from_writer

    # --- opening ------------------------------------------------------------------------------

    def _take_lock(self) -> int:
        path = self.dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + _ORPHAN_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if _holder_alive(fd) or time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreLocked(
                        f"another tallystick server is writing to {self.root} (it holds {path}): "
                        "stop it or give this one another storage directory"
                    ) from None
                time.sleep(0.02)  # its server died; its writer process is exiting
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def segment_paths(self) -> list[Path]:
        """The log's segment files, oldest first."""
        return segment_paths(self.dir)

    def _recover(self) -> Recovery:
        replay = _Replay(self.root, self._tmp_prefix, self._syncfs)
        recovery = replay.run()
        self._sequence = replay.sequence
        return recovery

    # --- writing (on the I/O loop) ---------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Make ``loop`` the one that does this log's I/O, unless another live loop does; whether it is."""
        with self._state:
            current = self._io_loop
            if current is loop:
                return True
            if current is not None and current.is_running() and not current.is_closed():
                return False
            if self._closed:
                return False
            if current is not None and not current.is_closed():
                current.remove_reader(self._from_helper)  # stopped, not closed: it must not read again
                current.remove_writer(self._to_helper)
            self._io_loop = loop
            self._flush_scheduled = self._waiting_to_write = False
            loop.add_reader(self._from_helper, self._on_readable)
            if self._out:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
            return True

    async def put(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless an object is there; True if created. Durable on return."""
        loop = asyncio.get_running_loop()
        if loop is not self._io_loop and not self._closed and not self.attach(loop):
            io_loop = self._io_loop
            assert io_loop is not None
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.put(key, data), io_loop))
        return await self.submit(key, data)

    def runs_here(self) -> bool:
        """Whether the running loop is this log's I/O loop (where ``submit`` may be called)."""
        loop = self._io_loop
        return loop is not None and _runs_here(loop)

    def submit(self, key: str, data: bytes) -> asyncio.Future[bool]:
        """``put`` without a coroutine, on the I/O loop: the future of its outcome (see the module docstring).

        For callers that wait with a callback (``add_done_callback``) rather than a task of their own;
        call it on the loop ``attach`` made the I/O loop (RuntimeError elsewhere).
        """
        if self._closed:
            raise StorageUnavailable(f"the store at {self.root} is closed: restart the service")
        if self._failed is not None:
            raise StorageUnavailable(self._failed)
        loop = self._io_loop
        if loop is None or asyncio._get_running_loop() is not loop:
            raise RuntimeError("WriteAheadLog.submit outside its I/O loop: use put")
        future: asyncio.Future[bool] = loop.create_future()
        entry = self._pending.get(key)
        if entry is None:
            record = encode_record(key, data)  # first: if it raises, nothing was queued for the writer to answer
            entry = self._pending[key] = _Entry(key, future)
            self._sent.append(entry)
            self._out += record
            self._unflushed += 1
            if self._unflushed >= _FLUSH_RECORDS:
                self._flush()  # a batch is full: no reason to wait
            elif not self._flush_scheduled:
                # Once the loop has run every request that is ready now: one write (and one wake-up of
                # the writer) for all of them, where a write per request cost a tenth of the request.
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        elif entry.durable:
            future.set_result(False)
        else:
            entry.others.append(future)
        return future

    def put_blocking(self, key: str, data: bytes, timeout: float = 60.0) -> bool:
        """``put`` for threads without an event loop (not for the I/O loop's own thread)."""
        if self._closed:
            raise StorageUnavailable(f"the store at {self.root} is closed: restart the service")
        io_loop = self._io_loop
        if io_loop is None or io_loop.is_closed() or not io_loop.is_running():
            io_loop = self._private_loop()
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is io_loop:
                raise RuntimeError("put_blocking on the event loop that writes the log would wait forever: use put")
        try:
            return asyncio.run_coroutine_threadsafe(self.put(key, data), io_loop).result(timeout)
        except TimeoutError:
            raise StorageUnavailable(f"writing to {self.root} took over {timeout:.0f} s: retry later") from None

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop on a thread of its own, attached as the I/O loop if no live loop is."""
        with self._state:
            if self._private is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tallystick-wal", daemon=True)
                thread.start()
                self._private = (loop, thread)
            loop = self._private[0]

        async def attach() -> asyncio.AbstractEventLoop:
            here = asyncio.get_running_loop()
            return here if self.attach(here) else (self._io_loop or here)

        return asyncio.run_coroutine_threadsafe(attach(), loop).result(30)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._unflushed = 0
        out = self._out
        while out:
            try:
                written = os.write(self._to_helper, out)
            except BlockingIOError:  # the pipe is full: go on when the writer has read some
                if not self._waiting_to_write and self._io_loop is not None:
                    self._io_loop.add_writer(self._to_helper, self._flush)
                    self._waiting_to_write = True
                return
            except OSError:
                self._writer_gone()
                return
            del out[:written]
        if self._waiting_to_write and self._io_loop is not None:
            self._io_loop.remove_writer(self._to_helper)
            self._waiting_to_write = False

    def _on_readable(self) -> bool:
        """Read and act on the writer's answers that are there; whether it may send more."""
        try:
            chunk = os.read(self._from_helper, 1 << 16)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._writer_gone()
            return False
        self._take(chunk)
        return True

    def _take(self, chunk: bytes) -> None:
        """Step 4: act on the writer's answers (see ``_writer.py`` for the bytes)."""
        data = self._results + chunk if self._results else chunk
        self._results = b""
        i, n = 0, len(data)
        while i < n:
            code = data[i]
            i += 1
            if code == writer.GROUP:
                self._groups += 1
            elif code == writer.CHECKPOINT:
                self._checkpoints += 1
            elif code == writer.FAILED:
                if i == n:
                    self._results = data[i - 1 :]
                    return
                self._fail(f"cannot write the log in {self.dir} ({os.strerror(data[i])}): restart the service")
                i += 1
            else:
                self._answer(self._sent.popleft(), code)

    def _answer(self, entry: _Entry, code: int) -> None:
        if code != writer.EXISTED:
            self.records += 1
        if code in (writer.CREATED, writer.EXISTED):
            del self._pending[entry.key]
            _resolve(entry.first, code == writer.CREATED)
        elif code == writer.DURABLE:
            entry.durable = True  # stays pending: its first writer was first, and it is stored
            log.error("cannot make the object %s: it stays in the log until a restart", entry.key)
            _resolve(entry.first, True)
        else:
            del self._pending[entry.key]
            _resolve(entry.first, StorageUnavailable(self._failed or "cannot write the log: restart the service"))
            for other in entry.others:
                _resolve(other, StorageUnavailable(self._failed or "cannot write the log: restart the service"))
            return
        for other in entry.others:
            _resolve(other, False)
        entry.others = []

    def _fail(self, message: str) -> None:
        if self._failed is None:
            log.error("write-ahead log failed: %s; refusing writes until restart", message)
            self._failed = message

    def _writer_gone(self) -> None:
        """The writer process died: answer what is in flight, refuse writes from now on."""
        if not self._closed:
            self._fail(self._gone_message)
        io_loop = self._io_loop
        if io_loop is not None and not io_loop.is_closed():
            io_loop.remove_reader(self._from_helper)
            if self._waiting_to_write:
                io_loop.remove_writer(self._to_helper)
                self._waiting_to_write = False
        self._out.clear()
        while self._sent:
            entry = self._sent.popleft()
            self._pending.pop(entry.key, None)
            for future in (entry.first, *entry.others):
                _resolve(future, StorageUnavailable(self._gone_message))

    # --- state, seen from other threads --------------------------------------------------------

    def _poll(self) -> None:
        """Without a live I/O loop nobody reads the writer's answers: read what is there now."""
        io_loop = self._io_loop
        if io_loop is not None and io_loop.is_running() and not io_loop.is_closed():
            return
        with self._state:
            if self._closed or (self._io_loop is not None and self._io_loop.is_running()):
                return
            while self._on_readable():
                pass

    @property
    def failed(self) -> str | None:
        """Why the log refuses writes (until a restart), or None."""
        self._poll()
        return self._failed

    @property
    def groups(self) -> int:
        """Groups the writer answered (each logged with one ``write``; one ``fdatasync`` covers one or more)."""
        self._poll()
        return self._groups

    @property
    def checkpoints(self) -> int:
        """Checkpoints the writer finished (closed segments synced and deleted)."""
        self._poll()
        return self._checkpoints

    def close(self) -> None:
        """Send what is queued, let the writer finish and checkpoint, and release the directory."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            io_loop = self._io_loop
        if io_loop is not None and not io_loop.is_closed():
            if io_loop.is_running() and not _runs_here(io_loop):
                detached = threading.Event()

                def detach() -> None:
                    self._detach(io_loop)
                    detached.set()

                with contextlib.suppress(RuntimeError):
                    io_loop.call_soon_threadsafe(detach)
                    detached.wait(30)
            else:
                self._detach(io_loop)
        self._drain()  # a private loop still runs: the answers reach its waiters (put_blocking) before it stops
        if self._private is not None:
            loop, thread = self._private
            for _ in range(3):  # let the woken writes finish (a stop ends the loop after its current callbacks)
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    def _detach(self, io_loop: asyncio.AbstractEventLoop) -> None:
        io_loop.remove_reader(self._from_helper)
        io_loop.remove_writer(self._to_helper)
        self._waiting_to_write = False

    def _drain(self) -> None:
        """On the closing thread, with no loop doing I/O: the rest of the records, then every answer."""
        os.set_blocking(self._to_helper, True)
        os.set_blocking(self._from_helper, True)
        with contextlib.suppress(OSError):  # else the writer is gone
            writer.write_all(self._to_helper, bytes(self._out) + _CLOSE)
        self._out.clear()
        os.close(self._to_helper)
        while True:
            try:
                chunk = os.read(self._from_helper, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self._take(chunk)
        if self._sent:
            self._writer_gone()
        os.close(self._from_helper)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.helper_pid, 0)
        os.close(self._lock_fd)


class _Replay:
    """Recovery: replay the segments an earlier writer left, make their objects durable, delete them.

    Run only by the holder of the directory's lock: a server opening its log, or a deletion
    (``replay_if_unlocked``) while no server runs.
    """

    def __init__(self, root: Path, tmp_prefix: str, syncfs: Callable[[int], int] | None) -> None:
        self.root = root
        self.dir = root / WAL_DIR
        self._prefix = f"{root}{os.sep}"
        self._tmp_prefix = tmp_prefix
        self._syncfs = syncfs
        self._serial = itertools.count()
        self._packs = _pack.Packs()
        self.sequence = 1  # the first segment number after the replayed ones

    def run(self) -> Recovery:
        """Replay every segment left by an earlier writer, make the objects durable, delete the segments."""
        recovery = Recovery()
        segments = segment_paths(self.dir)
        self.sequence = int(segments[-1].name.partition(".")[0]) + 1 if segments else 1
        # After every number an earlier run used, also one checkpointed away since: a reader keeps what it read of
        # a segment by name and inode, and a filesystem gives a new file the inode of one deleted.
        mark = read_synced(self.dir)
        self.sequence = max(self.sequence, mark[0] + 1 if mark is not None else 1)
        written: list[str] = []
        kept: set[Path] = set()
        for segment in segments:
            data = segment.read_bytes()
            records, end = decode_records(data)
            recovery.segments += 1
            recovery.records += len(records)
            recovery.torn_bytes += len(data[end:].rstrip(b"\0"))  # a segment may end in zeros written ahead
            by_directory: dict[str, list[tuple[str, bytes]]] = {}
            for key, obj in records:
                by_directory.setdefault(key.rpartition("/")[0], []).append((key, obj))
            for directory, entries in by_directory.items():
                try:
                    recovery.rewritten += self._replay(directory, entries, written)
                except OSError as exc:  # these objects cannot be made (yet): keep the segment, open anyway
                    log.error(
                        "cannot write %d objects of %s from the log (%s): its segment %s is kept",
                        len(entries),
                        directory,
                        exc.strerror,
                        segment,
                    )
                    recovery.unwritable += len(entries)
                    kept.add(segment)
        if segments:
            self._sync_all(written)
            for segment in segments:
                if segment not in kept:
                    segment.unlink()
            writer.fsync_path(str(self.dir), directory=True)
            log.info(
                "write-ahead log replayed: %d segments, %d records, %d objects rewritten, %d torn bytes dropped",
                recovery.segments,
                recovery.records,
                recovery.rewritten,
                recovery.torn_bytes,
            )
        return recovery

    def _replay(self, directory: str, entries: list[tuple[str, bytes]], written: list[str]) -> int:
        """Make the objects ``entries`` (of ``directory``) whole unless they are; how many were written.

        A missing one goes into a new pack; one that differs (cut short by a power loss) is written
        again where it is: a file in place, an object of a pack into a new pack (the old pack is
        written again without it). The log is the authority for acknowledged data.
        """
        path = self._prefix + directory
        os.makedirs(path, exist_ok=True)
        dfd = _pack.lock(path)
        if dfd is None:
            raise FileNotFoundError(errno.ENOENT, "removed while being replayed", path)
        try:
            _pack.drop_temp_files(path)
            self._drop_broken_packs(path)
            _, packed = self._packs.entries(path)
            missing: dict[str, bytes] = {}
            damaged: list[str] = []
            rewritten = 0
            for key, obj in entries:
                name = key.rpartition("/")[2]
                file = f"{path}{os.sep}{name}"
                try:
                    with open(file, "rb") as f:
                        current: bytes | None = f.read()
                except FileNotFoundError:
                    current = None
                if current is not None:  # an object file (made before packs, or by a tool)
                    if current != obj:
                        self._rewrite_file(file, obj)
                        written.append(file)
                        rewritten += 1
                    continue
                where = packed.get(name)
                if where is not None:
                    if self._packs.get(f"{path}{os.sep}{where[0]}", name) == obj:
                        continue
                    damaged.append(name)
                missing[name] = encode_record(key, obj)
            if damaged:
                _pack.remove(path, damaged, fsync=False, locked=True)
            if missing:
                pack = _pack.new_name()
                _pack.write(path, pack, _pack.encode(list(missing.items())), fsync=False)
                written.append(f"{path}{os.sep}{pack}")
                rewritten += len(missing)
            return rewritten
        finally:
            os.close(dfd)

    def _drop_broken_packs(self, path: str) -> None:
        """Remove the packs of ``path`` that are not whole: made just before a power loss, so their segment,
        which is being replayed, holds every object they had."""
        for pack in _pack.pack_names(path):
            index, _ = self._packs.read_index(f"{path}{os.sep}{pack}")
            if index is None:
                log.warning("removing %s%s%s: not a whole pack; the log has its objects", path, os.sep, pack)
                os.unlink(f"{path}{os.sep}{pack}")

    def _rewrite_file(self, path: str, obj: bytes) -> None:
        tmp = self._tmp_prefix + str(next(self._serial))
        try:
            _write_new_file(tmp, obj)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _sync_all(self, paths: list[str]) -> None:
        """Make ``paths`` (files written without fsync) and their names durable."""
        writer.sync_objects(str(self.root), paths, self._syncfs)


class LogView:
    """What the log holds now, for readers in any process: records a checkpoint has not made into packs yet.

    A server answers once a record is synced in the log; its pack is made at the next checkpoint
    (``checkpoint_seconds``). So that every process reads an acknowledged session at once, the
    store's readers look here too. Segments are only ever appended to (over zeros written ahead),
    so each call reads what was added since the last one, a MiB at a time, and keeps where each
    record's object lies (not the object); a record still being written (cut short, or failing its
    checksum) ends what is read until the next call. It reads no further than the running writer
    says its log is synced (``.wal/synced``, written before anyone is answered), so readers see
    only durable records; what a writer that died left is read whole (recovery keeps every whole
    record of it).
    """

    _CHUNK = 1 << 20

    def __init__(self, root: Path) -> None:
        self.dir = root / WAL_DIR
        self._buffer = bytearray()  # one buffer for every read: a new one each time kept the heap large
        self._lock = threading.Lock()  # a store's threads share it
        # segment -> (inode, bytes read, key -> (offset of the object, its length))
        self._read: dict[str, tuple[int, int, dict[str, tuple[int, int]]]] = {}

    def find(self, key: str) -> tuple[str, int, int] | None:
        """Where the log holds ``key``'s object (segment, offset, length), or None."""
        for name, found in self._segments():
            where = found.get(key)
            if where is not None:
                return (name, *where)
        return None

    def under(self, prefix: str) -> dict[str, tuple[str, int, int]]:
        """Key -> (segment, offset, length) of every key in the log that starts with ``prefix`` (the oldest one)."""
        keys: dict[str, tuple[str, int, int]] = {}
        for name, found in self._segments():
            for key, (offset, length) in found.items():
                if key.startswith(prefix) and key not in keys:
                    keys[key] = (name, offset, length)
        return keys

    def _segments(self) -> list[tuple[str, dict[str, tuple[int, int]]]]:
        """Each segment's records (key -> offset and length of its object), oldest segment first, read up to now."""
        with self._lock:
            self._index()
            return [(name, found) for name, (_, _, found) in self._read.items()]

    def _index(self) -> None:
        try:
            names = [p.name for p in segment_paths(self.dir)]
        except (FileNotFoundError, NotADirectoryError):
            self._read = {}
            return
        read: dict[str, tuple[int, int, dict[str, tuple[int, int]]]] = {}
        synced = self._synced()
        for name in names:
            number = int(name.partition(".")[0])
            if synced is not None and number > synced[0]:
                break  # written, not synced yet
            limit = synced[1] if synced is not None and number == synced[0] else None
            try:
                fd = os.open(self.dir / name, os.O_RDONLY)
            except FileNotFoundError:  # checkpointed since it was listed: its packs hold it
                continue
            try:
                inode = os.fstat(fd).st_ino
                cached = self._read.get(name)
                end, found = (cached[1], cached[2]) if cached is not None and cached[0] == inode else (0, {})
                end = self._read_from(fd, end, found, limit)
                read[name] = (inode, end, found)
            finally:
                os.close(fd)
        self._read = read

    def _synced(self) -> tuple[int, int] | None:
        return read_synced(self.dir)

    def _read_from(self, fd: int, end: int, found: dict[str, tuple[int, int]], limit: int | None) -> int:
        """Index the whole records from ``end`` on (up to ``limit``) into ``found``; where they end."""
        want = self._CHUNK
        while True:
            if limit is not None:
                want = min(want, limit - end)
                if want <= 0:
                    return end
            if len(self._buffer) < want:
                self._buffer = bytearray(want)
            got = os.preadv(fd, [memoryview(self._buffer)[:want]], end)
            data = memoryview(self._buffer)[:got]
            if len(data) < _HEADER.size or data[: _LENGTH.size] == _CLOSE:  # the end, or zeros written ahead
                return end
            pos = 0
            for key, start, stop in whole_records(data):
                found.setdefault(key, (end + start, stop - start))
                pos = stop
            if pos == 0:  # a record longer than what was read: read it whole (or it is cut short)
                length = _HEADER.unpack_from(data, 0)[0]
                if len(data) < want or _HEADER.size + length <= want:
                    return end
                want = _HEADER.size + length
                continue
            end += pos
            want = self._CHUNK
            if len(data) < self._CHUNK:
                return end

    def read(self, where: tuple[str, int, int]) -> bytes | None:
        """The object at ``where`` (from ``find`` or ``under``); None if its segment is gone (checkpointed since)."""
        name, offset, length = where
        try:
            fd = os.open(self.dir / name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        return data if len(data) == length else None


def read_synced(directory: Path) -> tuple[int, int] | None:
    """How far a running writer has synced its log (segment number, offset); None if no writer said."""
    try:
        with open(directory / writer.SYNCED_NAME, "rb") as f:
            raw = f.read(writer.SYNCED.size)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if len(raw) < writer.SYNCED.size:
        return (0, 0) if not raw else None
    number, offset = writer.SYNCED.unpack(raw)
    return number, offset


def segment_paths(directory: Path) -> list[Path]:
    """The segment files in a log directory, oldest first."""
    found = []
    for entry in os.scandir(directory):
        stem, dot, suffix = entry.name.partition(".")
        if dot + suffix == SEGMENT_SUFFIX and stem.isdigit():
            found.append((int(stem), Path(entry.path)))
    return [path for _, path in sorted(found)]


def replay_if_unlocked(root: Path, tmp_dir: Path) -> Recovery | None:
    """With no writer holding ``root``'s log: replay and delete what a stopped one left; None if one holds it."""
    directory = root / WAL_DIR
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageUnavailable(f"cannot open the write-ahead log in {directory}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        syncfs = writer.syncfs_function()
        try:
            return _Replay(root, f"{tmp_dir}{os.sep}w-{os.getpid()}-", syncfs).run()
        except OSError as exc:
            raise StorageUnavailable(f"cannot replay the write-ahead log in {directory}: {exc.strerror}") from None
    finally:
        os.close(fd)  # releases the lock


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _resolve(future: asyncio.Future[bool], outcome: bool | BaseException) -> None:
    """Settle a waiter's future from any thread (its loop may be another thread's, or closed)."""
    if future.done():
        return
    loop = future.get_loop()
    if asyncio._get_running_loop() is loop:  # the usual case: the I/O loop reading the writer's answers
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
        return
    if loop.is_running():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, future, outcome)
        return
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _holder_alive(fd: int) -> bool:
    """Whether the server named in the lock file runs (else the lock is its writer's, about to exit)."""
    try:
        pid = int(os.pread(fd, 32, 0) or b"0")
    except (OSError, ValueError):
        return True
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # killed but not yet reaped by its parent: a zombie runs nothing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
