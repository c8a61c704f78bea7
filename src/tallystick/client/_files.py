"""Small file helpers: atomic writes and tolerant reads."""

# ruff: noqa: SIM105  (contextlib would cost import time on the host's exit path)

from __future__ import annotations

import os


def atomic_write(path: str, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part.

    Temp file in the same directory, fsync, rename over ``path``, fsync the directory.
    The temp name starts with ``.tmp-`` so queue readers skip it; on failure it is removed.
    """
    directory = os.path.dirname(path) or "."
    temp = os.path.join(directory, f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{os.path.basename(path)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if sync:
                _sync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    if sync:
        sync_directory(directory)


def _sync(fd: int) -> None:
    # fdatasync writes the data and the size a reader needs, skipping the timestamps.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def sync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (where the platform allows opening directories)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_bytes(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of ``path``, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def remove(path: str) -> bool:
    """Delete ``path``; whether it was there to delete."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
