"""Packs: many objects of one directory of the local store in one file.

Why: a file per session cost the writer process about 60 us of CPU per session (an inode, a
directory entry, their writeback): a third of what a durable request costs on the machine.
One file per group of sessions that arrive together costs the same 60 us for all of them.

A pack lives in the directory of the keys it holds, named ``.pack-<unique>`` (``is_pack``);
listings show the objects inside it, never the pack. Layout::

    record*   each exactly a write-ahead log record (``_wal.encode_record``), whole key included:
              length u32 | crc32 of length and payload u32 | key length u16 | key | object
    index     per record: offset u64 | object length u32 | name length u16 | name (the key's
              last segment, UTF-8)
    footer    index offset u64 | crc32 of the index u32 | records u32 | ``TSPACK01``

A pack is immutable: it appears whole under its name (linked after its content is written,
or renamed from a temp file), and changes only by being replaced whole: a deletion writes the
pack again without the deleted objects, a compaction merges many small packs into one. Both
happen under ``lock(directory)``, so two of them never lose each other's work. Readers hold
a pack open while they read it, so a replacement never shows them half of anything: a reader
that finds a pack gone lists the directory again.

Standard library only: the writer process (``_writer.py``, run with ``-I -S``) imports it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import struct
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence

PREFIX = ".pack-"
_TMP_PREFIX = ".pack-tmp-"  # a pack being written in place (``write``); never listed
MAGIC = b"TSPACK01"
FOOTER = struct.Struct("<QII8s")
ENTRY = struct.Struct("<QIH")  # offset of the record, length of its object, length of the name
HEADER = struct.Struct("<II")  # a record's length and crc (as the log's)
KEY_LENGTH = struct.Struct("<H")
# Compaction: packs of one size tier (sizes within a factor of 8, from 64 KiB up) are merged once
# there are this many, so each object is copied about once per tier it climbs. Packs of 4 MiB or
# more are left as they are (a merge makes packs of at most 32 MiB): a deletion rewrites a whole
# pack, so a pack stays small enough to rewrite in well under a second, and a merge reads one
# small pack at a time.
MERGE_AT = 8
MERGE_BELOW = 4 << 20
_serial = iter(range(1 << 62))

Index = dict[str, tuple[int, int]]
Buffer = bytes | bytearray | memoryview  # name -> (offset of its record, length of its object)


def is_pack(name: str) -> bool:
    return name.startswith(PREFIX) and not name.startswith(_TMP_PREFIX)


def new_name() -> str:
    """A pack name no other writer picks: time, process and a random part (names are not ordered)."""
    return f"{PREFIX}{time.time_ns():016x}-{os.getpid():x}-{secrets.token_hex(4)}-{next(_serial)}"


def encode(records: Sequence[tuple[str, bytes]]) -> bytes:
    """A pack of ``records``: (name, log record) pairs, each record ``_wal.encode_record`` of the whole key."""
    return b"".join(encode_parts(records))


def encode_parts(records: Sequence[tuple[str, Buffer]]) -> list[Buffer]:
    """``encode`` as the parts to write one after another (the records themselves, not copied; then the
    index and footer)."""
    index = bytearray()
    offset = 0
    for name, record in records:
        index += _index_entry(name, record, offset)
        offset += len(record)
    footer = FOOTER.pack(offset, zlib.crc32(index), len(records), MAGIC)
    return [*(record for _, record in records), bytes(index) + footer]


def _index_entry(name: str, record: Buffer, offset: int) -> bytes:
    """The index's entry for ``record`` (a log record of the object ``name``) at ``offset`` in its pack."""
    raw = name.encode()
    (key_length,) = KEY_LENGTH.unpack_from(record, HEADER.size)
    return ENTRY.pack(offset, len(record) - HEADER.size - KEY_LENGTH.size - key_length, len(raw)) + raw


def read_index(fd: int, size: int) -> Index | None:
    """The index of the pack open as ``fd`` (``size`` bytes); None if it is not a whole pack."""
    if size < FOOTER.size:
        return None
    footer = os.pread(fd, FOOTER.size, size - FOOTER.size)
    if len(footer) < FOOTER.size:
        return None
    start, crc, count, magic = FOOTER.unpack(footer)
    end = size - FOOTER.size
    if magic != MAGIC or start > end:
        return None
    raw = os.pread(fd, end - start, start)
    if len(raw) != end - start or zlib.crc32(raw) != crc:
        return None
    index: Index = {}
    pos = 0
    try:
        for _ in range(count):
            offset, length, name_length = ENTRY.unpack_from(raw, pos)
            pos += ENTRY.size
            if offset + HEADER.size + KEY_LENGTH.size + length > start:  # not among the records
                return None
            index[raw[pos : pos + name_length].decode()] = (offset, length)
            pos += name_length
    except (struct.error, UnicodeDecodeError):
        return None
    return index


def read_object(fd: int, offset: int, length: int) -> bytes | None:
    """The object whose record starts at ``offset``; None if the record fails its checksum."""
    head = os.pread(fd, HEADER.size, offset)
    if len(head) < HEADER.size:
        return None
    payload_length, crc = HEADER.unpack(head)
    if not KEY_LENGTH.size + length <= payload_length <= KEY_LENGTH.size + 0xFFFF + length:
        return None  # not this object's record (and no read of up to 4 GiB for it)
    payload = os.pread(fd, payload_length, offset + HEADER.size)
    if len(payload) != payload_length or zlib.crc32(payload, zlib.crc32(head[:4])) != crc:
        return None
    (key_length,) = KEY_LENGTH.unpack_from(payload)
    data = payload[KEY_LENGTH.size + key_length :]
    return data if KEY_LENGTH.size + key_length + length == payload_length else None


def records(data: bytes, index: Index) -> Iterator[tuple[str, bytes]]:
    """(name, log record) of each object of a pack read whole, in pack order, checksums verified."""
    for name, (offset, _) in sorted(index.items(), key=lambda item: item[1][0]):
        payload_length, crc = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + payload_length
        record = data[offset:end]
        if payload_length < KEY_LENGTH.size or len(record) != end - offset:
            continue  # too short to hold a key, or cut short
        if zlib.crc32(record[HEADER.size :], zlib.crc32(record[:4])) != crc:
            continue
        if KEY_LENGTH.unpack_from(record, HEADER.size)[0] <= payload_length - KEY_LENGTH.size:
            yield name, record


class Packs:
    """Reads the packs of a store's directories, keeping the indexes it has read (by file identity)."""

    def __init__(self, limit: int = 256) -> None:
        self._indexes: dict[str, tuple[tuple[int, int, int], Index | None]] = {}
        self._limit = limit

    def index(self, fd: int, path: str) -> tuple[Index | None, int]:
        """The index of the pack open as ``fd`` (None if it is not a whole pack), and its mtime (ns)."""
        st = os.fstat(fd)
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._indexes.get(path)
        if cached is not None and cached[0] == identity:
            return cached[1], st.st_mtime_ns
        index = read_index(fd, st.st_size)
        if len(self._indexes) >= self._limit:
            del self._indexes[next(iter(self._indexes))]
        self._indexes[path] = (identity, index)
        return index, st.st_mtime_ns

    def entries(self, directory: str) -> tuple[list[str], dict[str, tuple[str, int, int]]]:
        """The plain files of ``directory``, and for each object in one of its packs: the pack's name,
        the object's length and the pack's mtime (ns).

        Raises FileNotFoundError if the directory is missing. A pack replaced or removed while
        it is read (a deletion, a compaction) makes it list the directory again.
        """
        for _ in range(100):
            plain: list[str] = []
            packed: dict[str, tuple[str, int, int]] = {}
            with os.scandir(directory) as listing:
                found = [(e.name, e.is_file(follow_symlinks=False)) for e in listing]
            try:
                for name, is_file in found:
                    if not is_file:
                        continue
                    if not name.startswith("."):
                        plain.append(name)
                    elif is_pack(name):
                        index, mtime = self.read_index(f"{directory}/{name}")
                        for key_name, (_, length) in (index or {}).items():
                            packed.setdefault(key_name, (name, length, mtime))
            except FileNotFoundError:
                continue  # a pack replaced under us: list again
            return plain, packed
        raise OSError(f"the packs of {directory} kept changing while being listed")

    def read_index(self, path: str) -> tuple[Index | None, int]:
        fd = os.open(path, os.O_RDONLY)
        try:
            return self.index(fd, path)
        finally:
            os.close(fd)

    def get(self, path: str, name: str) -> bytes | None:
        """The object ``name`` from the pack at ``path``; None if it holds no whole one (FileNotFoundError: gone)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            entry = (self.index(fd, path)[0] or {}).get(name)
            return None if entry is None else read_object(fd, *entry)
        finally:
            os.close(fd)


def pack_names(directory: str) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if is_pack(e.name) and e.is_file(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def lock(directory: str) -> int | None:
    """Take ``directory``'s lock (``flock`` of the directory itself; closing the descriptor releases it);
    None if there is no such directory. Whoever replaces a directory's packs holds it."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_whole(path: str) -> tuple[bytes, Index] | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        index = read_index(fd, size)
        if index is None:
            return None
        data = os.pread(fd, size, 0)
        while len(data) < size and (more := os.pread(fd, size - len(data), len(data))):
            data += more
        return data, index
    finally:
        os.close(fd)


def write(directory: str, name: str, content: Buffer | Sequence[Buffer], *, fsync: bool = True) -> None:
    """Put ``content`` under ``directory/name`` whole: a temp file in the same directory, synced, renamed.

    Only under the directory's ``lock``: whoever holds it removes temp files it finds (``drop_temp_files``).
    """
    with _temp_pack(directory, fsync) as (fd, tmp):
        _write_parts(fd, [content] if isinstance(content, bytes | bytearray | memoryview) else content)
    os.replace(tmp, f"{directory}/{name}")


@contextlib.contextmanager
def _temp_pack(directory: str, fsync: bool) -> Iterator[tuple[int, str]]:
    """A new temp pack in ``directory``, open for writing: synced (with ``fsync``) and closed after the block,
    removed if the block raises. Only under the directory's ``lock``."""
    tmp = f"{directory}/{_TMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        yield fd, tmp
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)


def _write_parts(fd: int, parts: Sequence[Buffer]) -> None:
    """Write ``parts`` one after another, a few hundred per system call (``writev``)."""
    views = [memoryview(part) for part in parts if len(part)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + 512])
        while written and first < len(views):
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


def _fsync_directory(fd: int, fsync: bool) -> None:
    if fsync:
        os.fsync(fd)


def remove(directory: str, names: Iterable[str], *, fsync: bool = True, locked: bool = False) -> int:
    """Remove the objects ``names`` from every pack of ``directory`` that holds one; how many records went.

    Each such pack is written again without them (or removed, if nothing is left), under the
    directory's lock (taken here unless ``locked``: the caller holds it). A record that fails
    its checksum goes too; a pack that cannot be read whole is left as it is.
    """
    wanted = set(names)
    if not wanted:
        return 0
    if locked:
        try:
            dfd: int | None = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            dfd = None
    else:
        dfd = lock(directory)
    if dfd is None:
        return 0
    removed = 0
    try:
        drop_temp_files(directory)
        for pack in pack_names(directory):
            path = f"{directory}/{pack}"
            try:
                whole = _read_whole(path)
            except FileNotFoundError:
                continue
            if whole is None or not wanted & whole[1].keys():
                continue
            data, index = whole
            kept = [(n, r) for n, r in records(data, index) if n not in wanted]
            removed += sum(1 for n in index if n in wanted)
            if kept:
                write(directory, pack, encode(kept), fsync=fsync)
            else:
                os.unlink(path)
        if removed:
            _fsync_directory(dfd, fsync)
    finally:
        os.close(dfd)  # releases the lock
    return removed


def tier(size: int) -> int:
    return max(0, (size.bit_length() - 16) // 3)


def compact(directory: str, *, fsync: bool = True) -> int:
    """Merge packs of ``directory`` that are alike in size, ``MERGE_AT`` or more at a time; how many were merged."""
    merged = 0
    dfd = lock(directory)
    if dfd is None:
        return 0
    try:
        drop_temp_files(directory)
        tiers: dict[int, list[str]] = {}
        for pack in pack_names(directory):
            with contextlib.suppress(FileNotFoundError):
                size = os.stat(f"{directory}/{pack}").st_size
                if size < MERGE_BELOW:
                    tiers.setdefault(tier(size), []).append(pack)
        for _, group in sorted(tiers.items()):
            if len(group) >= MERGE_AT:
                merged += _merge(directory, group, dfd, fsync)
    finally:
        os.close(dfd)  # releases the lock
    return merged


def _merge(directory: str, packs: list[str], dfd: int, fsync: bool) -> int:
    """(Under the lock.) Write the objects of ``packs`` into one new pack, then remove them; how many went."""
    merged = []
    with _temp_pack(directory, fsync) as (fd, tmp):
        index = bytearray()
        seen: set[str] = set()
        offset = count = 0
        for pack in packs:
            whole = _read_whole(f"{directory}/{pack}")
            if whole is None:
                continue  # not a whole pack (a power loss before its sync): recovery deals with it
            merged.append(pack)
            kept = []
            for name, record in records(*whole):
                if name in seen:
                    continue
                seen.add(name)
                index += _index_entry(name, record, offset)
                offset += len(record)
                count += 1
                kept.append(record)
            _write_parts(fd, kept)
        _write_parts(fd, [bytes(index) + FOOTER.pack(offset, zlib.crc32(index), count, MAGIC)])
    if len(merged) < 2:
        os.unlink(tmp)
        return 0
    os.rename(tmp, f"{directory}/{new_name()}")
    _fsync_directory(dfd, fsync)
    for pack in merged:
        os.unlink(f"{directory}/{pack}")
    _fsync_directory(dfd, fsync)
    return len(merged)


def drop_temp_files(directory: str) -> None:
    """(Under the directory's ``lock``.) Remove packs left half-written by a ``write`` that was interrupted:
    with the lock held, nobody is writing one."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(_TMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
