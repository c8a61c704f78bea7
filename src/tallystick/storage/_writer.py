"""The write-ahead log's writer process: appends records to the log, syncs them, makes the objects.

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
record of the group in input order (``CREATED``, ``EXISTED``, ``DURABLE`` = synced but the object
could not be made, ``NOT_DURABLE`` = the log write failed); ``CHECKPOINT`` when closed segments
were synced and deleted; ``FAILED`` and an errno byte when the log failed (everything after that
is ``NOT_DURABLE``).

Threads: the main one reads input and appends and syncs whatever has arrived as one group (the
group commit: one ``fdatasync`` however many records); the maker creates the object files of a
synced group and answers, while the main thread syncs the next one; the checkpointer syncs the
objects of closed segments (``syncfs``, or each file) and deletes the segments.

``FAILPOINTS`` (comma-separated, for tests only; "-" for none): ``sync-eio`` makes every log sync
fail with EIO; ``exit-after-sync`` exits right after the first sync, before any object is made;
``sync-gate=DIR`` creates ``DIR/waiting`` before each sync and waits for ``DIR/go``;
``named-temp-files`` makes objects the way filesystems without ``O_TMPFILE`` need.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import os
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable

CREATED, EXISTED, DURABLE, NOT_DURABLE = 1, 0, 2, 3
GROUP, CHECKPOINT, FAILED = 0x10, 0x20, 0x30
SEGMENT_SUFFIX = ".log"
_ANSWER_EVERY = 4  # outcomes written at once while a group's objects are being made
LENGTH = struct.Struct("<I")
HEADER = struct.Struct("<II")  # a record: payload length, crc32 of (length bytes + payload)
KEY_LENGTH = struct.Struct("<H")  # the payload: key length, key, object bytes
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
Record = tuple[str, bytes, int, int]  # key, object bytes, and where the record lies in its group


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.opened = time.monotonic()
        self.size = 0
        self.records = 0
        self.made = 0  # records whose outcome the maker has answered
        self.closed = False
        self.keep = False  # holds a record whose object could not be made: leave it for recovery
        self.files: list[str] = []  # objects made (synced one by one where there is no syncfs)


class Writer:
    def __init__(self, argv: list[str]) -> None:
        root, tmp_prefix, sequence, checkpoint, segment_bytes, syncfs, failpoints = argv
        self.root = root
        self.wal = os.path.join(root, ".wal")
        self.tmp_prefix = tmp_prefix
        self.sequence = int(sequence)
        self.checkpoint_seconds = float(checkpoint)
        self.segment_bytes = int(segment_bytes)
        self.syncfs = syncfs_function() if syncfs == "1" else None
        self.failpoints = {} if failpoints == "-" else dict(f.partition("=")[::2] for f in failpoints.split(","))
        self.segment: Segment | None = None
        self.failed = 0  # errno of the failed log write or sync
        self.directories: set[str] = set()
        self.serial = 0
        self.unnamed_files = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
        self.unnamed_files = self.unnamed_files and "named-temp-files" not in self.failpoints
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # any directory fd: it makes os.link use linkat
        self.out = threading.Lock()
        self.lock = threading.Condition()  # guards the queues below
        self.groups: collections.deque[tuple[Segment | None, list[tuple[str, bytes | None]]] | None] = (
            collections.deque()
        )
        self.closed_segments: list[Segment] = []
        self.checkpointer_done = False

    # --- main thread: read, append, sync --------------------------------------------------------

    def run(self) -> None:
        maker = threading.Thread(target=self.make_loop, daemon=True)
        checkpointer = threading.Thread(target=self.checkpoint_loop, daemon=True)
        maker.start()
        checkpointer.start()
        pending = b""
        while True:
            timeout = self.checkpoint_seconds if self.segment is not None else None
            if not select.select([0], [], [], timeout)[0]:
                self.rotate_if_due()
                continue
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
                break
        with self.lock:
            self.groups.append(None)  # the maker finishes, then hands over the last segment
            self.lock.notify_all()
        maker.join()
        checkpointer.join()

    def rotate_if_due(self) -> None:
        segment = self.segment
        if segment is None or not segment.records:
            return
        if segment.size >= self.segment_bytes or time.monotonic() - segment.opened >= self.checkpoint_seconds:
            self.close_segment()

    def close_segment(self) -> None:
        segment, self.segment = self.segment, None
        if segment is None:
            return
        os.close(segment.fd)
        with self.lock:
            segment.closed = True
            self.hand_over_if_done(segment)

    def append(self, data: bytes, records: list[Record]) -> None:
        """Log and sync the records whose object does not exist yet; the maker answers for all of them."""
        segment = None
        items: list[tuple[str, bytes | None]] = []
        logged: list[bytes] | None = None  # the records to log, when some are left out
        for index, (key, value, start, end) in enumerate(records):
            path = os.path.join(self.root, key)
            try:
                os.lstat(path)
            except OSError:  # not there (or unreadable: making it will tell)
                items.append((path, value))
                if logged is not None:
                    logged.append(data[start:end])
                continue
            items.append((path, None))  # already stored: answered EXISTED, not logged
            if logged is None:
                logged = [data[s:e] for _, _, s, e in records[:index]]
        if logged is not None:
            data = b"".join(logged)
        if data and not self.failed:
            try:
                if self.segment is None:
                    self.segment = Segment(os.path.join(self.wal, f"{self.sequence:016d}{SEGMENT_SUFFIX}"))
                    self.sequence += 1
                    fsync_path(self.wal, directory=True)  # its records are only as durable as its name
                segment = self.segment
                write_all(segment.fd, data)
                self.sync(segment.fd)
            except OSError as exc:
                self.failed = exc.errno or errno.EIO
                if self.segment is not None:
                    self.segment.keep = True  # what reached it may be on disk: the next start replays it
                segment = None
                self.answer(bytes([FAILED, min(self.failed, 255)]))
            else:
                segment.size += len(data)
                segment.records += sum(1 for _, value in items if value is not None)
                if "exit-after-sync" in self.failpoints:
                    os._exit(1)
        elif not data:
            segment = self.segment  # nothing to log: every record is answered EXISTED
        with self.lock:
            self.groups.append((segment, items))
            self.lock.notify_all()

    def sync(self, fd: int) -> None:
        gate = self.failpoints.get("sync-gate")
        if gate:
            open(os.path.join(gate, "waiting"), "w").close()
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

    # --- maker thread: object files and answers ---------------------------------------------------

    def make_loop(self) -> None:
        while True:
            with self.lock:
                while not self.groups:
                    self.lock.wait()
                item = self.groups.popleft()
            if item is None:
                break
            segment, items = item
            if segment is None:  # the log failed: nothing of this group is durable
                self.answer(bytes([GROUP]) + bytes(EXISTED if v is None else NOT_DURABLE for _, v in items))
                continue
            outcomes = bytearray([GROUP])
            made = sent = 0
            for path, value in items:
                if value is None:
                    outcomes.append(EXISTED)
                    continue
                outcome = self.make(path, value)
                made += 1
                if outcome == CREATED and self.syncfs is None:
                    segment.files.append(path)
                outcomes.append(outcome)
                if len(outcomes) - sent >= _ANSWER_EVERY:  # answer as it goes: a group's first writers wait less
                    self.answer(bytes(outcomes[sent:]))
                    sent = len(outcomes)
            self.answer(bytes(outcomes[sent:]))
            with self.lock:
                segment.made += made
                segment.keep = segment.keep or DURABLE in outcomes
                self.hand_over_if_done(segment)
        # closing: the last segment is done once the maker is
        self.close_segment()
        with self.lock:
            self.checkpointer_done = True
            self.lock.notify_all()

    def make(self, path: str, data: bytes) -> int:
        """Create ``path`` with ``data`` unless it exists: the content first, then its name (create-only)."""
        directory = os.path.dirname(path)
        made = self.make_in(directory, path, data)
        if made == DURABLE and not os.path.isdir(directory):
            # Removed since we made it (an old partition deleted by hand): make it again, once.
            self.directories.discard(directory)
            made = self.make_in(directory, path, data)
        return made

    def make_in(self, directory: str, path: str, data: bytes) -> int:
        try:
            if directory not in self.directories:
                os.makedirs(directory, exist_ok=True)
                self.directories.add(directory)
        except OSError:
            return DURABLE
        if self.unnamed_files:
            made = self.make_unnamed(directory, path, data)
            if made is not None:
                return made
        self.serial += 1
        tmp = f"{self.tmp_prefix}{self.serial}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return EXISTED
            finally:
                os.unlink(tmp)
            return CREATED
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return DURABLE

    def make_unnamed(self, directory: str, path: str, data: bytes) -> int | None:
        """``make`` with an unnamed file (Linux ``O_TMPFILE``) given its name once written; None: not possible here.

        A named temp file costs a directory entry added and removed in one shared directory,
        which the checkpoint's ``syncfs`` keeps under writeback: 150 us a file against 50.
        """
        try:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL) and os.path.isdir(directory):
                self.unnamed_files = False  # this filesystem has none: named temp files from now on
                return None
            return DURABLE
        try:
            write_all(fd, data)
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the open file; a name that exists is EEXIST.
            os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=self.root_fd, follow_symlinks=True)
        except FileExistsError:
            return EXISTED
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EXDEV, errno.EPERM) and os.path.isdir(directory):
                self.unnamed_files = False  # no /proc, or no linkat through it: named temp files from now on
                return None
            return DURABLE
        finally:
            os.close(fd)
        return CREATED

    def hand_over_if_done(self, segment: Segment) -> None:
        """(Under ``lock``.) A closed segment whose records all have objects goes to the checkpointer."""
        if segment.closed and segment.made == segment.records:
            self.closed_segments.append(segment)
            self.lock.notify_all()

    # --- checkpointer thread ----------------------------------------------------------------------

    def checkpoint_loop(self) -> None:
        while True:
            with self.lock:
                while not self.closed_segments and not self.checkpointer_done:
                    self.lock.wait()
                segments, self.closed_segments = self.closed_segments, []
                done = self.checkpointer_done
            if segments:
                self.checkpoint(segments)
            if done:
                return

    def checkpoint(self, segments: list[Segment]) -> None:
        while True:
            try:
                sync_objects(self.root, [path for s in segments for path in s.files], self.syncfs)
            except OSError as exc:
                sys.stderr.write(f"tallystick: checkpoint of {self.wal} failed ({exc.strerror}): will retry\n")
                time.sleep(max(self.checkpoint_seconds, 0.1))
                continue
            break
        for segment in segments:
            if not segment.keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(segment.path)
        self.answer(bytes([CHECKPOINT]))


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
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


if __name__ == "__main__":
    # Ctrl-C in a terminal, or a service manager, signals the whole process group: the server shuts
    # down gracefully and closes this process's input, which is when it must stop, not before.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    Writer(sys.argv[1:]).run()
