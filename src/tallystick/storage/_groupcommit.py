"""Group commit for LocalStore: many concurrent writers share one filesystem sync.

One ``fsync`` costs about as much as thousands of small writes, so durable
per-object writes are bounded by the disk's flush rate. Here writers only do the
cheap part themselves and wait for a committer thread that makes everything
written so far durable with one sync, then wakes them all.

A create-only durable write of one object (``GroupCommit.put``), on the event loop:

1. If the object's name exists, wait for one sync (step 5's rule) and answer "already
   there": the writer that created it may not have been acknowledged yet, and this
   answer must not be durable sooner than that object.
2. Write the bytes to a uniquely named temp file under ``<root>/.tmp/`` (no fsync).
3. Wait for a sync: the temp file's content is now on disk.
4. ``link()`` the temp file to the object's name (create-only: EEXIST means another
   writer won, answer "already there"), unlink the temp file.
5. Wait for a sync: the new name is now on disk. Answer "created".

A wait registers the writer, then the committer thread takes every registration made
so far, runs one sync (``syncfs`` of the store's filesystem on Linux; elsewhere one
``fsync`` per distinct file and directory registered) and wakes those writers through
their event loops. A registration made while a sync runs waits for the next one, so
every wait covers all the writer's own earlier writes.

Races and crashes, and why each is harmless:

* Crash before 4: only a temp file remains; LocalStore sweeps old ones on open.
* Crash between 4 and 5: the name may or may not survive, but it always points at
  content made durable in 3, so no reader ever sees a partial object; the client got
  no answer and retries (201 or 304, both correct).
* Two writers of one key: ``link()`` lets exactly one win; the loser still waits for a
  sync before answering 304, so a 304 never gets ahead of the winner's durability.
* A sync fails: every writer of that group gets StorageUnavailable (503, the client
  retries); a temp file whose content may not be durable is never linked.
* A writer's task is cancelled while waiting: its future is skipped; its temp file is
  removed in ``finally``.

Steps 1, 2 and 4 are a handful of small syscalls on the event loop's thread: on a local
filesystem they hit the page cache and cost tens of microseconds, less than a hand-off
to a worker thread would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import itertools
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from tallystick.storage.base import StorageUnavailable

_UNAVAILABLE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO)


def _syncfs_function() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # a temp file whose writer gave up: nothing to make durable
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class GroupCommit:
    """A committer thread that makes a directory tree's pending writes durable in groups.

    ``use_syncfs`` None picks ``syncfs`` where the platform has it; False forces one
    fsync per registered path (for tests and other platforms).
    """

    def __init__(self, root: Path, *, use_syncfs: bool | None = None) -> None:
        self.root = root
        syncfs = _syncfs_function() if use_syncfs is not False else None
        if use_syncfs and syncfs is None:
            raise StorageUnavailable("syncfs is not available on this platform: use per-file fsync")
        self._syncfs = syncfs
        self._root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY) if syncfs else -1
        self._cond = threading.Condition()
        self._waiters: list[Waiter] = []
        self._paths: set[Path] = set()
        self._closed = False
        self._names = (f"{os.getpid()}-{secrets.token_hex(6)}-{n}" for n in itertools.count())
        self.syncs = 0  # for tests and observability: syncs done and writers woken
        self.woken = 0
        self._thread = threading.Thread(target=self._run, name="tallystick-groupcommit", daemon=True)
        self._thread.start()

    async def put(self, path: Path, tmp_dir: Path, data: bytes, make_parents: Callable[[Path], None]) -> bool:
        """Store ``data`` at ``path`` unless something is there; True if created. Durable on return."""
        try:
            if path.exists():
                await self.durable(())
                return False
            make_parents(path.parent)
            tmp = tmp_dir / next(self._names)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                await self.durable((tmp,))
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    created = False
                else:
                    created = True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            await self.durable((path.parent,))
            return created
        except OSError as exc:
            if exc.errno in _UNAVAILABLE_ERRNOS:
                raise StorageUnavailable(f"cannot write to {self.root}: {exc.strerror}") from None
            raise

    async def durable(self, paths: Iterable[Path]) -> None:
        """Return once a sync that started after this call has finished (``paths`` need it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed:
                raise StorageUnavailable(f"the store at {self.root} is closed: restart the service")
            self._waiters.append((loop, future))
            self._paths.update(paths)
            self._cond.notify()
        await future

    def close(self) -> None:
        """Finish the pending group, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=30)
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiters and not self._closed:
                    self._cond.wait()
                if not self._waiters:
                    return
                waiters, self._waiters = self._waiters, []
                paths, self._paths = self._paths, set()
            error: Exception | None = None
            try:
                self._sync(paths)
            except OSError as exc:
                error = StorageUnavailable(f"cannot make writes to {self.root} durable: {exc.strerror}")
            self.syncs += 1
            self.woken += len(waiters)
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for loop, future in waiters:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody waits there
                    loop.call_soon_threadsafe(_settle, futures, error)

    def _sync(self, paths: set[Path]) -> None:
        if self._syncfs is not None:
            if self._syncfs(self._root_fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            return
        for path in paths:
            _fsync_path(path)


def _settle(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
