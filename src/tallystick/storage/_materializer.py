"""The write-ahead log's helper process: turns synced records into object files (step 3 in ``_wal.py``).

Creating a file costs 15-150 us of kernel time here; in the server's process that time would
block the event loop or, from another thread, wait for the GIL after every system call. A
separate process has its own interpreter and runs on the other core.

Run as ``python -I -S _materializer.py TMP_PREFIX`` (standard library only). It reads groups
from stdin: ``count (u32) | size (u32)``, then ``size`` bytes of ``count`` items, each
``path length (u16) | data length (u32) | path (UTF-8) | data``. For each group it writes
``count`` bytes to stdout, one per item in order: CREATED, EXISTED or FAILED. An object is
written to a temp file ``TMP_PREFIX<n>`` and linked to its path (create-only, no fsync: the
log holds the data until a checkpoint syncs the files). It exits when stdin closes, which
is also what happens when the server dies.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys

GROUP = struct.Struct("<II")
ITEM = struct.Struct("<HI")
CREATED, EXISTED, FAILED = 1, 0, 2


def encode_group(items: list[tuple[str, bytes]]) -> bytes:
    """One group of (path, data) items, as the helper reads them."""
    parts = []
    for path, data in items:
        raw = path.encode()
        parts += [ITEM.pack(len(raw), len(data)), raw, data]
    payload = b"".join(parts)
    return GROUP.pack(len(items), len(payload)) + payload


def read_exact(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``, or None at end of file."""
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def materialize(path: str, data: bytes, tmp: str, directories: set[str]) -> int:
    try:
        directory = path.rpartition(os.sep)[0]
        if directory not in directories:
            os.makedirs(directory, exist_ok=True)
            directories.add(directory)
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
        return FAILED


def main(tmp_prefix: str) -> None:
    directories: set[str] = set()
    serial = 0
    while True:
        head = read_exact(0, GROUP.size)
        if head is None:
            return
        count, size = GROUP.unpack(head)
        payload = read_exact(0, size)
        if payload is None:
            return
        results = bytearray()
        pos = 0
        for _ in range(count):
            path_length, data_length = ITEM.unpack_from(payload, pos)
            pos += ITEM.size
            path = payload[pos : pos + path_length].decode()
            pos += path_length
            serial += 1
            results.append(materialize(path, payload[pos : pos + data_length], f"{tmp_prefix}{serial}", directories))
            pos += data_length
        try:
            write_all(1, bytes(results))
        except BrokenPipeError:  # the server is gone
            return


if __name__ == "__main__":
    main(sys.argv[1])
