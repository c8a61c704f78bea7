"""The upload lock: exclusive across processes, never stale after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tallystick.client import _lock
from tallystick.client._lock import UploadLock

HOLD = (
    "import sys, time\nfrom tallystick.client._lock import UploadLock\n"
    "lock = UploadLock(sys.argv[1])\nprint(lock.acquire(), flush=True)\ntime.sleep(30)\n"
)


def test_flock_excludes_another_process_and_frees_on_its_death(tmp_path: Path) -> None:
    """While another process holds the lock it cannot be taken; when that process dies it can."""
    path = str(tmp_path / "upload.lock")
    with subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
            assert not UploadLock(path).acquire()
        finally:
            holder.kill()
            holder.wait(timeout=10)
    lock = UploadLock(path)
    assert lock.acquire()
    lock.release()


def test_lock_file_fallback_is_exclusive_and_released(tmp_path: Path) -> None:
    """Without flock, an exclusive-create lock file excludes a second taker until released."""
    path = str(tmp_path / "upload.lock")
    first, second = UploadLock(path, use_flock=False), UploadLock(path, use_flock=False)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    assert not os.path.exists(path)


def test_lock_file_fallback_takes_over_a_stale_lock(tmp_path: Path) -> None:
    """A lock file older than the staleness limit (its holder crashed) is taken over."""
    path = tmp_path / "upload.lock"
    path.write_text("12345 0\n")
    old = time.time() - _lock.STALE_SECONDS - 5
    os.utime(path, (old, old))
    lock = UploadLock(str(path), use_flock=False)
    assert lock.acquire()
    lock.release()
