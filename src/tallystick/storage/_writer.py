"""The write-ahead log's writer process: appends records to the log, syncs them, makes the objects (in packs).

Started by ``WriteAheadLog`` (``_wal.py``, which has the design note) as
``python -I -S _writer.py ROOT TMP_PREFIX FIRST_SEQUENCE CHECKPOINT_SECONDS SEGMENT_BYTES SYNCFS FAILPOINTS``;
standard library only. It inherits the server's lock on the directory, so no other server
can start on it until this process is gone too. It ignores SIGINT, SIGTERM and SIGHUP: it stops
when its input ends.

Input (stdin): log records, exactly as they go into a segment (``_wal.encode_record``), one
after another; a record length of zero is the server's "close" (finish everything, then exit).
A bare end of input means the server died: exit at once and leave the log to the next start's
recovery.

Output (stdout), one byte each: ``GROUP`` when a group's answers follow, then one outcome per
record of the group in input order (``CREATED``, ``EXISTED``, ``NOT_DURABLE`` = the log write
failed; ``DURABLE``, synced but its object could not be made, is no longer sent: objects are made
at the checkpoint); ``CHECKPOINT`` when closed segments were made into packs, synced and deleted;
``FAILED`` and an errno byte when the log failed (everything after that is ``NOT_DURABLE``; a
group's ``FAILED`` comes before its ``GROUP``).

Threads: the main one reads input, appends whatever has arrived as one group with one ``write``
and hands the group to the sync threads. It never waits for a sync: it waits in ``select`` for
more input or for a sync to return (a byte on a pipe of its own). Once a sync covering the oldest
groups has returned, it answers for them with one ``write``: their records are durable in the
log, which readers in every process read too (``_wal.LogView``). Two sync threads each run one
``fdatasync`` at a time, covering every group written before it started (the group commit: one
sync for however many records and groups), so a group waits for one sync rather than for the one
in flight to end first, and the disk serves two syncs at once (on the machine measured, a few
times the syncs per second of one after another). They hold the GIL only to take and to settle
their work. The checkpointer makes the objects of each closed segment: one pack per directory
(``_pack.py``), written whole under the directory's lock; then one ``syncfs`` (or an fsync of
each pack and directory), deletes the segments, and merges the packs of the directories it wrote
to where enough are alike (``_pack.compact``). A segment is closed only once no sync of it runs.

``FAILPOINTS`` (comma-separated, for tests only; "-" for none): ``sync-eio`` makes every log sync
fail with EIO; ``exit-after-sync`` exits right after the first sync, before answering;
``sync-gate=DIR`` creates ``DIR/waiting`` and ``DIR/waiting-<thread>`` before each sync and
waits for ``DIR/go``; ``checkpoint-sync-eio`` makes the first checkpoint's sync of its packs fail with EIO.
"""

from __future__ import annotations

import array
import bisect
import collections
import contextlib
import ctypes
import errno
import mmap
import os
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable

if __package__:
    from tallystick.storage import _pack
else:  # the writer process (``python -I -S _writer.py``): the module beside this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _pack  # type: ignore[import-not-found,no-redef]

CREATED, EXISTED, DURABLE, NOT_DURABLE = 1, 0, 2, 3
GROUP, CHECKPOINT, FAILED = 0x10, 0x20, 0x30
SEGMENT_SUFFIX = ".log"
SPARE_NAME = "next.spare"  # in the log's directory: not a segment until renamed to one
SYNCED_NAME = "synced"  # in the log's directory: how far the log is synced (``Writer.mark_synced``)
SYNCED = struct.Struct("<QQ")  # segment number, offset
_ANSWER_EVERY = 8  # outcomes written at once when many groups are answered together
LENGTH = struct.Struct("<I")
HEADER = struct.Struct("<II")  # a record: payload length, crc32 of (length bytes + payload)
KEY_LENGTH = struct.Struct("<H")  # the payload: key length, key, object bytes
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
Record = tuple[str, bytes, int, int]  # key, object bytes, and where the record lies in its group
_SYNCS_IN_FLIGHT = 2  # log syncs at once (each thread its own)
_SPARE_MAX = 32 << 20  # bytes of zeros a segment starts with, at most (a quarter more than the last one held)
# The writer keeps what names are stored in the directories it used last (for "already there"): sessions
# arrive for the last 30 days, most of them for the last few, so a partition (an application's day) is read
# from disk once. A name is kept as its 64-bit hash, in a sorted array (``Names``: a million take 8 MB).
_KNOWN_DIRECTORIES = 1024
_KNOWN_NAMES = 8_000_000


class Names:
    """Hashes of names, 8 bytes each: a sorted array, and a set of the ones added since it was last sorted."""

    __slots__ = ("inode", "recent", "sorted")

    def __init__(self, hashes: Iterable[int] = (), inode: int = 0) -> None:
        self.sorted = array.array("q", sorted(hashes))
        self.recent: set[int] = set()
        self.inode = inode  # of the directory they were read from (0: there was none)

    def __contains__(self, value: int) -> bool:
        if value in self.recent:
            return True
        found = self.sorted
        i = bisect.bisect_left(found, value)
        return i < len(found) and found[i] == value

    def add(self, value: int) -> None:
        self.recent.add(value)
        if len(self.recent) >= max(64, len(self.sorted) >> 3):  # an eighth: each name sorted again about 8 times
            self.sorted = array.array("q", sorted((*self.sorted, *self.recent)))
            self.recent = set()

    def __len__(self) -> int:
        return len(self.sorted) + len(self.recent)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_objects(root: str, paths: list[str], syncfs: Callable[[int], int] | None) -> None:
    """Make new files below ``root`` and their names durable (one ``syncfs``, else fsync each and its directory)."""
    if syncfs is not None:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
        finally:
            os.close(fd)
        return
    directories: dict[str, None] = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # deleted since (retention, a user's data): nothing to sync
            fsync_path(path)
        parent = os.path.dirname(path)
        while parent != root and parent not in directories:
            directories[parent] = None
            parent = os.path.dirname(parent)
    for directory in [*directories, root]:
        with contextlib.suppress(FileNotFoundError):
            fsync_path(directory, directory=True)


class Segment:
    """One log file: its records are durable once synced, and deletable once their objects are."""

    def __init__(self, path: str, syncers: int, spare: str | None = None) -> None:
        self.path = path
        self.fd = -1
        if spare is not None:  # zeros, synced: records written over them change no metadata to sync
            with contextlib.suppress(OSError):  # gone: a plain file then
                os.rename(spare, path)
                self.fd = os.open(path, os.O_WRONLY)
        if self.fd < 0:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        # A descriptor of its own for each sync thread, opened before the first write: a writeback
        # error is reported once per open file, so each thread's fdatasync reports every one.
        self.sync_fds = [os.open(path, os.O_RDONLY) for _ in range(syncers)]
        self.opened = time.monotonic()
        self.size = 0
        self.records = 0
        self.made = 0  # records whose outcome has been answered
        self.closed = False
        self.keep = False  # holds a record whose object could not be made: leave it for recovery
        self.logged: list[tuple[str, int, int]] = []  # (key, offset, length) of its answered records, for its packs
        self.packed: list[str] | None = None  # the packs made of it, once they are


class Group:
    """Records read at once: logged with one write and one sync, answered together."""

    __slots__ = ("base", "error", "items", "segment", "sequence", "synced")

    def __init__(
        self, segment: Segment | None, items: list[tuple[str, int | None]], *, synced: bool = False, error: int = 0
    ) -> None:
        self.segment = segment  # None: nothing of it was logged (the log failed)
        self.items = items  # (key, its log record's length, or None: it exists, answered EXISTED)
        self.base = 0  # where its records start in the segment
        self.synced = synced  # a sync that covers it has returned (under ``Writer.lock``)
        self.error = error  # errno of the failed write or sync
        self.sequence = 0  # its number among the groups written to the log


class Writer:
    def __init__(self, argv: list[str]) -> None:
        root, _, sequence, checkpoint, segment_bytes, syncfs, failpoints = argv  # _: TMP_PREFIX, unused since packs
        self.root = root
        self.wal = os.path.join(root, ".wal")
        self.sequence = int(sequence)
        self.checkpoint_seconds = float(checkpoint)
        self.segment_bytes = int(segment_bytes)
        self.syncfs = syncfs_function() if syncfs == "1" else None
        self.failpoints = {} if failpoints == "-" else dict(f.partition("=")[::2] for f in failpoints.split(","))
        self.segment: Segment | None = None
        self.failed = 0  # errno of the failed log write or sync
        self.packs = _pack.Packs()
        # The names stored in recently used directories (plain files and packs' objects), read at first use.
        self.known: collections.OrderedDict[str, Names] = collections.OrderedDict()  # directory -> name hashes
        self.known_names = 0
        self.refreshed: set[str] = set()  # directories read again in this group (``exists``)
        self.in_log: set[str] = set()  # keys answered "created" whose packs are not made yet
        self.out = threading.Lock()
        self.lock = threading.Lock()  # guards the queues and counts below and each group's ``synced``
        self.checkpointer_wake = threading.Condition(self.lock)
        self.sync_wake = threading.Condition(self.lock)  # for the sync threads: a group was written
        self.synced_wake = threading.Condition(self.lock)  # a sync returned
        self.groups: collections.deque[Group] = collections.deque()  # not answered yet, in input order
        self.synced_r, self.synced_w = os.pipe()  # a byte from a sync thread: a sync returned
        os.set_blocking(self.synced_r, False)
        os.set_blocking(self.synced_w, False)
        self.unsynced: collections.deque[Group] = collections.deque()  # written, no sync covering them returned
        self.written = 0  # groups written to the log
        self.sync_started = 0  # the last group that a started sync covers
        self.syncs_running = 0
        self.stopping = False
        self.closed_segments: list[Segment] = []
        self.checkpointer_done = False
        # Every segment numbered below this run's first is whole (replayed, or kept by recovery: acknowledged
        # records whose objects could not be made yet), so readers read those whole; the number also tells the
        # next run where to go on numbering (``_wal._Replay``).
        self.synced_mark = (self.sequence - 1, (1 << 64) - 1)
        self.synced_fd = os.open(os.path.join(self.wal, SYNCED_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self.synced_fd, SYNCED.pack(*self.synced_mark), 0)
        self.spare_path = os.path.join(self.wal, SPARE_NAME)
        self.spare: str | None = None  # a zero-filled, synced file ready to be the next segment
        for path in (self.spare_path, self.spare_path + ".tmp"):  # left by a writer that was killed
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # --- main thread: read, append, sync --------------------------------------------------------

    def run(self) -> None:
        checkpointer = threading.Thread(target=self.checkpoint_loop, daemon=True)
        syncers = [threading.Thread(target=self.sync_loop, args=(i,), daemon=True) for i in range(_SYNCS_IN_FLIGHT)]
        for thread in [checkpointer, *syncers]:
            thread.start()
        pending = b""
        inputs = [0, self.synced_r]
        while inputs[0] == 0 or self.groups:  # after "close": until every group is answered
            timeout = self.checkpoint_seconds if self.segment is not None else None
            ready = select.select(inputs, [], [], timeout)[0]
            if not ready:
                self.rotate_if_due()
                continue
            if self.synced_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.synced_r, 1 << 12)
            if ready[0] == 0:
                data = os.read(0, 1 << 20)
                if not data:
                    os._exit(0)  # the server died: what is synced stays in the log for the next start
                pending += data
                records, end, closing = _split(pending)
                group, pending = pending[:end], pending[end:]
                if records:
                    self.rotate_if_due()
                    self.append(group, records)
                if closing:
                    inputs = [self.synced_r]
                    with self.lock:
                        self.stopping = True  # the sync threads sync what is written, then end
                        self.sync_wake.notify_all()
            self.answer_synced()
        for thread in syncers:
            thread.join()
        self.close_segment()  # the last segment is done: every group is answered
        with self.lock:
            self.checkpointer_done = True
            self.checkpointer_wake.notify()
        checkpointer.join()

    def rotate_if_due(self) -> None:
        segment = self.segment
        if segment is None or not segment.records:
            return
        if segment.size >= self.segment_bytes or time.monotonic() - segment.opened >= self.checkpoint_seconds:
            self.close_segment()

    def close_segment(self) -> None:
        segment = self.segment
        if segment is None:
            return
        with self.lock:
            while self.syncs_running or self.sync_started < self.written:  # its descriptors are in use
                self.synced_wake.wait()
            self.segment = None
            segment.closed = True
            self.hand_over_if_done(segment)
        for fd in [segment.fd, *segment.sync_fds]:
            os.close(fd)

    def append(self, data: bytes, records: list[Record]) -> None:
        """Log the records whose object does not exist yet, have a sync thread sync them, prepare their objects.

        ``answer_synced`` names the objects and answers for every record once the sync has returned.
        """
        items: list[tuple[str, int | None]] = []
        logged: list[bytes] | None = None  # the records to log, when some are left out
        seen: dict[str, Names] = {}
        self.refreshed.clear()
        for index, (key, _, start, end) in enumerate(records):
            if not self.exists(key, seen):
                items.append((key, end - start))
                if logged is not None:
                    logged.append(data[start:end])
                continue
            items.append((key, None))  # already stored: answered EXISTED, not logged
            if logged is None:
                logged = [data[s:e] for _, _, s, e in records[:index]]
        if logged is not None:
            data = b"".join(logged)
        if not data:  # nothing to log: every record is answered EXISTED
            self.groups.append(Group(self.segment, items, synced=True))
            return
        if self.failed:  # the log refuses writes until a restart
            self.groups.append(Group(None, items, synced=True))
            return
        try:
            if self.segment is None:
                path = os.path.join(self.wal, f"{self.sequence:016d}{SEGMENT_SUFFIX}")
                with self.lock:
                    spare, self.spare = self.spare, None
                self.segment = Segment(path, _SYNCS_IN_FLIGHT, spare)
                self.sequence += 1
                fsync_path(self.wal, directory=True)  # its records are only as durable as its name
            segment = self.segment
            base = segment.size
            pwrite_all(segment.fd, data, base)
        except OSError as exc:
            with self.lock:
                self.fail(exc.errno or errno.EIO, self.segment)
            self.groups.append(Group(None, items, synced=True, error=self.failed))
            return
        group = Group(segment, items)
        group.base = base
        with self.lock:  # written: a sync thread syncs it
            segment.size += len(data)
            segment.records += sum(1 for _, value in items if value is not None)
            self.written += 1
            group.sequence = self.written
            self.unsynced.append(group)
            self.sync_wake.notify()
        self.groups.append(group)

    def exists(self, key: str, seen: dict[str, Names]) -> bool:
        """Whether ``key``'s object exists: as a file or in a pack of its directory (``seen``: the names of
        the directories this group looked at already)."""
        directory, _, name = key.rpartition("/")
        names = seen.get(directory)
        if names is None:
            known = self.known
            names = known.get(directory)
            if names is None or names.inode != _inode(os.path.join(self.root, directory)):
                # First use, or the directory was removed (and maybe made again) since: read it.
                names = self.remember(directory, self.read_names(directory))
            else:
                known.move_to_end(directory)
            seen[directory] = names
        if key in self.in_log:  # answered, its pack not made yet (or it could not be made)
            return True
        if hash(name) not in names:
            return False
        # The names kept only grow as packs are made: one deleted since by another process (retention, an
        # erasure) would stay. A name that seems stored is rare (a retry): the directory is read again, once
        # per group.
        if directory in self.refreshed:
            return True
        self.refreshed.add(directory)
        names = seen[directory] = self.remember(directory, self.read_names(directory))
        return hash(name) in names

    def remember(self, directory: str, names: Names) -> Names:
        """Keep ``names`` as ``directory``'s, forgetting the directories used longest ago beyond the bounds."""
        known = self.known
        old = known.pop(directory, None)
        self.known_names += len(names) - (len(old) if old is not None else 0)
        known[directory] = names
        while len(known) > 1 and (len(known) > _KNOWN_DIRECTORIES or self.known_names > _KNOWN_NAMES):
            self.known_names -= len(known.popitem(last=False)[1])
        return names

    def read_names(self, directory: str) -> Names:
        """The hashes of the names stored in ``directory``: its files' and its packs' objects', and those of its
        keys answered but not in a pack yet (``in_log``)."""
        path = os.path.join(self.root, directory)
        inode = _inode(path)
        with self.lock:  # before the disk: a key leaves ``in_log`` only once its pack is written
            logged = {hash(name) for d, _, name in (k.rpartition("/") for k in self.in_log) if d == directory}
        try:
            plain, packed = self.packs.entries(path)
        except OSError:  # no such directory (or unreadable: making the pack will tell)
            return Names(logged)
        return Names(logged | {hash(name) for name in (*plain, *packed)}, inode)

    def fail(self, code: int, segment: Segment | None) -> None:
        """(Under ``lock``.) The log's write or sync failed: refuse writes from now on, keep the segment."""
        self.failed = self.failed or code
        if segment is not None:
            segment.keep = True  # what reached it may be on disk: the next start replays it

    # --- sync threads -----------------------------------------------------------------------------

    def sync_loop(self, index: int) -> None:
        """Sync every group written so far, again and again; up to ``_SYNCS_IN_FLIGHT`` syncs at once.

        A sync covers the groups written before it started, so a group waits for one sync, not
        for the one in flight to end first; and a disk serves concurrent syncs far faster than
        the same number one after another (here 4-8 times the syncs per second with 2 in flight).
        """
        while True:
            with self.lock:
                while self.sync_started == self.written and not self.stopping:
                    self.sync_wake.wait()
                if self.sync_started == self.written:
                    return
                target = self.sync_started = self.written
                segment = self.unsynced[-1].segment  # a segment is closed only once its groups are synced
                assert segment is not None
                upto = segment.size
                self.syncs_running += 1
            error = self.failed
            if not error:
                try:
                    self.sync(segment.sync_fds[index])
                except OSError as exc:
                    error = exc.errno or errno.EIO
                else:
                    if "exit-after-sync" in self.failpoints:
                        os._exit(1)
            with self.lock:
                self.syncs_running -= 1
                if error:
                    self.fail(error, segment)
                else:  # before anyone is answered: readers see what is durable, nothing else
                    self.mark_synced(segment, upto)
                while self.unsynced and self.unsynced[0].sequence <= target:
                    group = self.unsynced.popleft()
                    group.error = error
                    group.synced = True
                self.synced_wake.notify_all()
            with contextlib.suppress(BlockingIOError):  # full: the main thread has bytes to read already
                os.write(self.synced_w, b"s")

    def mark_synced(self, segment: Segment, upto: int) -> None:
        """(Under ``lock``.) Tell readers (``_wal.LogView``) how far the log is synced: ``.wal/synced`` holds the
        segment's number and the offset (one ``pwrite``, no sync: it is for readers of this run only)."""
        mark = (int(os.path.basename(segment.path).partition(".")[0]), upto)
        if mark > self.synced_mark:
            self.synced_mark = mark
            with contextlib.suppress(OSError):
                os.pwrite(self.synced_fd, SYNCED.pack(*mark), 0)

    def sync(self, fd: int) -> None:
        gate = self.failpoints.get("sync-gate")
        if gate:
            open(os.path.join(gate, "waiting"), "w").close()
            open(os.path.join(gate, f"waiting-{threading.get_ident()}"), "w").close()  # one per sync thread
            deadline = time.monotonic() + 60
            while not os.path.exists(os.path.join(gate, "go")) and time.monotonic() < deadline:
                time.sleep(0.005)
        if "sync-eio" in self.failpoints:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        _datasync(fd)

    def answer(self, data: bytes) -> None:
        with self.out:
            try:
                write_all(1, data)
            except BrokenPipeError:  # the server is gone
                os._exit(0)

    # --- main thread: object files and answers ------------------------------------------------

    def answer_synced(self) -> None:
        """Make the objects of the oldest groups whose sync has returned, and answer for them, in input order."""
        groups = self.groups
        out = bytearray()
        while groups and groups[0].synced:  # set by a sync thread, which then writes to ``synced_w``
            self.finish_group(groups.popleft(), out)
            if len(out) >= _ANSWER_EVERY:
                self.answer(bytes(out))  # many groups at once: the first ones' writers wait less
                out.clear()
        if out:
            self.answer(bytes(out))

    def finish_group(self, group: Group, out: bytearray) -> None:
        """Add a synced group's outcomes to ``out``, and its records to its segment's (made objects at the
        checkpoint); or NOT_DURABLE for each if its sync failed."""
        segment, items = group.segment, group.items
        if segment is None or group.error:  # nothing of it was logged, or its sync failed: nothing is durable
            if group.error:
                out += bytes([FAILED, min(group.error, 255)])
            out.append(GROUP)
            out += bytes(EXISTED if v is None else NOT_DURABLE for _, v in items)
            return
        out.append(GROUP)
        out += bytes(EXISTED if v is None else CREATED for _, v in items)
        known = self.known
        logged = []
        offset = group.base
        for key, length in items:
            if length is not None:
                logged.append((key, offset, length))
                offset += length
        for key, _, _ in logged:
            directory, _, name = key.rpartition("/")
            names = known.get(directory)
            if names is not None:
                names.add(hash(name))
                self.known_names += 1
        self.in_log.update(key for key, _, _ in logged)
        with self.lock:
            segment.logged += logged
            segment.made += len(logged)
            self.hand_over_if_done(segment)

    def hand_over_if_done(self, segment: Segment) -> None:
        """(Under ``lock``.) A closed segment whose records all have objects goes to the checkpointer."""
        if segment.closed and segment.made == segment.records:
            self.closed_segments.append(segment)
            self.checkpointer_wake.notify()

    # --- checkpointer thread ----------------------------------------------------------------------

    def checkpoint_loop(self) -> None:
        while True:
            with self.lock:
                while not self.closed_segments and not self.checkpointer_done:
                    self.checkpointer_wake.wait()
                segments, self.closed_segments = self.closed_segments, []
                done = self.checkpointer_done
            if segments:
                self.checkpoint(segments)
            if done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.spare_path)
                return
            if segments and self.spare is None:  # busy: the next segment will be ready
                self.make_spare(min(self.segment_bytes, _SPARE_MAX, max(1 << 20, segments[-1].size * 5 // 4)))

    def make_spare(self, size: int) -> None:
        """A file of ``size`` zero bytes, synced, for the next segment.

        Records written over its zeros leave the file's size and blocks as they are, so the
        fdatasync of a group writes only its pages (appending to a file also writes the inode
        and allocates blocks: measured here, twice the CPU per sync, and slower syncs). Recovery
        reads the zeros as the end of the segment.
        """
        zeros = bytes(1 << 20)
        tmp = self.spare_path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for _ in range(-(-size // len(zeros))):
                    write_all(fd, zeros)
                _datasync(fd)
            finally:
                os.close(fd)
            with self.lock:
                os.rename(tmp, self.spare_path)  # ready (its name is made durable with the segment's)
                self.spare = self.spare_path
        except OSError:  # disk full, say: segments are plain appended files then
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def checkpoint(self, segments: list[Segment]) -> None:
        """Make the objects of closed segments (a pack per directory and segment), make them durable, delete the
        segments; then merge the packs of those directories where enough are alike."""
        directories: set[str] = set()
        files = [pack for segment in segments for pack in self.make_packs(segment, directories)]
        try:
            if self.failpoints.pop("checkpoint-sync-eio", None) is not None:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            sync_objects(self.root, files, self.syncfs)
        except OSError as exc:
            # Not retried: the kernel may have dropped the pages it could not write, and a second sync would
            # not say so. Only a replay of the log knows what is durable: the segments stay for the next start.
            sys.stderr.write(
                f"tallystick: the checkpoint of {self.wal} could not sync its packs ({exc.strerror}): "
                "its segments are kept until a restart replays them\n"
            )
            for segment in segments:
                segment.keep = True
        for segment in segments:
            if not segment.keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(segment.path)
        with contextlib.suppress(OSError):  # the deletions too: a segment back after a power loss brings back
            fsync_path(self.wal, directory=True)  # what was deleted after this checkpoint (``settle``)
        self.answer(bytes([CHECKPOINT]))
        for directory in sorted(directories):
            try:
                _pack.compact(directory)
            except OSError as exc:  # left as they are: more packs to read, nothing lost
                sys.stderr.write(f"tallystick: compacting the packs of {directory} failed ({exc.strerror})\n")

    def make_packs(self, segment: Segment, directories: set[str]) -> list[str]:
        """Write the segment's records as one pack per directory (not synced: the caller syncs); their paths.

        Once a segment's packs are written, they are not written again (a retry after a failed sync).
        """
        if segment.packed is not None:
            return segment.packed
        by_directory: dict[str, list[tuple[str, int, int]]] = {}
        for key, offset, length in segment.logged:
            directory, _, name = key.rpartition("/")
            by_directory.setdefault(directory, []).append((name, offset, length))
        made = []
        kept: set[str] = set()
        # The records are read from the segment (mapped: the page cache has them), not kept in memory: two
        # seconds of sessions would be tens of MB.
        fd = os.open(segment.path, os.O_RDONLY)
        try:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if by_directory else None
        finally:
            os.close(fd)
        try:
            for directory, chosen in by_directory.items():
                assert mapped is not None
                path = os.path.join(self.root, directory)
                try:
                    made.append(self.make_pack(path, mapped, chosen))
                except OSError as exc:  # a file where the directory should be, say: the log keeps them
                    sys.stderr.write(
                        f"tallystick: cannot make the objects of {path} ({exc.strerror}): "
                        f"they stay in the log ({segment.path}) until a restart replays it\n"
                    )
                    segment.keep = True
                    kept.update(f"{directory}/{name}" if directory else name for name, _, _ in chosen)
                    continue
                directories.add(path)
        finally:
            if mapped is not None:
                mapped.close()
        with self.lock:  # the packs are there: "already there" is read from the directory from now on
            self.in_log.difference_update(key for key, _, _ in segment.logged if key not in kept)
        segment.packed = made
        segment.logged = []
        return made

    @staticmethod
    def make_pack(path: str, mapped: mmap.mmap, chosen: list[tuple[str, int, int]]) -> str:
        for _ in range(2):  # a directory removed between making and locking it is made again, once
            os.makedirs(path, exist_ok=True)
            dfd = _pack.lock(path)
            if dfd is not None:
                break
        else:
            raise FileNotFoundError(errno.ENOENT, "removed while being written to", path)
        try:
            name = _pack.new_name()
            with memoryview(mapped) as view:
                parts = _pack.encode_parts([(n, view[offset : offset + length]) for n, offset, length in chosen])
                try:
                    _pack.write(path, name, parts, fsync=False)
                finally:
                    for part in parts:
                        if isinstance(part, memoryview):
                            part.release()
        finally:
            os.close(dfd)
        return os.path.join(path, name)


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


def _split(data: bytes) -> tuple[list[Record], int, bool]:
    """The complete records at the start of ``data``, where they end, and whether "close" follows them.

    Each record as (key, object bytes, start, end): where it lies in ``data``.
    """
    records: list[Record] = []
    pos = 0
    while pos + 4 <= len(data):
        (length,) = LENGTH.unpack_from(data, pos)
        if length == 0:
            return records, pos, True
        end = pos + HEADER.size + length
        if end > len(data):
            break
        start = pos + HEADER.size
        (key_length,) = KEY_LENGTH.unpack_from(data, start)
        key_end = start + KEY_LENGTH.size + key_length
        records.append((data[start + KEY_LENGTH.size : key_end].decode(), data[key_end:end], pos, end))
        pos = end
    return records, pos, False


def syncfs_function() -> Callable[[int], int] | None:
    """libc's ``syncfs`` (Linux), or None."""
    return _libc_function("syncfs")


def _libc_function(name: str) -> Callable[..., int] | None:
    """The C library's function ``name`` (errno kept for ``ctypes.get_errno``), or None."""
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    return function


if __name__ == "__main__":
    # Ctrl-C in a terminal, or a service manager, signals the whole process group: the server shuts
    # down gracefully and closes this process's input, which is when it must stop, not before.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    # The checkpointer thread's Python work (a checkpoint's packs) must not hold the GIL for the usual 5 ms
    # whenever the main thread wakes to answer: with 0.5 ms, answers wait less (the checkpoint is no faster).
    sys.setswitchinterval(0.0005)
    Writer(sys.argv[1:]).run()
