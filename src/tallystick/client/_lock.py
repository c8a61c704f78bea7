"""The upload lock: at most one process uploads from a queue at a time.

See DESIGN.md beside this file. On POSIX it is an ``flock`` on ``upload.lock``:
the OS drops it when the holder exits or crashes, so it can never be stale.
Where ``fcntl`` is missing (Windows) it is an exclusive-create lock file holding
the holder's PID and time; one older than ``STALE_SECONDS`` is taken over.
"""

# ruff: noqa: SIM105  (contextlib would cost import time)

from __future__ import annotations

import os
import time

STALE_SECONDS = 120.0


class UploadLock:
    """A non-blocking, process-exclusive lock on one queue."""

    def __init__(self, path: str, *, use_flock: bool = True) -> None:
        self.path = path
        self._fd: int | None = None
        self._use_flock = use_flock and os.name == "posix"

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""
        if self._fd is not None:
            return True
        if self._use_flock:
            return self._acquire_flock()
        return self._acquire_file()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._use_flock:
            os.close(fd)  # closing drops the flock
            return
        os.close(fd)
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _acquire_flock(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _acquire_file(self) -> bool:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                if not self._take_over_stale():
                    return False
                continue
            os.write(fd, f"{os.getpid()} {time.time():.3f}\n".encode())
            self._fd = fd
            return True
        return False

    def _take_over_stale(self) -> bool:
        """Remove the lock file if its holder is gone long ago; whether it was removed."""
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return True
        if age < STALE_SECONDS:
            return False
        # Rename first so two takers cannot both remove a fresh lock taken in between.
        aside = f"{self.path}.stale-{os.getpid()}"
        try:
            os.rename(self.path, aside)
        except OSError:
            return False
        try:
            os.unlink(aside)
        except OSError:
            pass
        return True


def hold_briefly(path: str, wait: float) -> int | None:
    """An exclusive ``flock`` on ``path``, waited for at most ``wait`` seconds; its descriptor (close it to release).

    For what simultaneous first runs of one installation must agree on (the user ID and its
    erasure secret): each holder reads and writes one small file, so the wait is short. None,
    and the caller goes on unlocked as before, where there is no ``flock`` (Windows), the file
    cannot be made (a read-only data directory: nothing can be written there anyway) or the
    wait ran out (a holder stopped with SIGSTOP must not hang the tool).
    """
    if os.name != "posix":
        return None
    try:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except (ImportError, OSError):
        return None
    deadline = time.monotonic() + wait
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except OSError:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.01)
    os.close(fd)
    return None
