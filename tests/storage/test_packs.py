"""Packs of the local store: many objects of a directory in one file, read, listed, deleted, compacted, recovered.

Packs are made at the log's checkpoint (one per directory and closed segment); until then an acknowledged
object is only in the log, which every process's readers read too (``_wal.LogView``). Tests that need packs
on disk wait for a checkpoint (``_checkpointed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

import tallystick
from fixtures.common import wait_until
from fixtures.wal import open_log as _open
from fixtures.wal import put_all as _put_all
from tallystick.storage import _pack
from tallystick.storage._wal import WriteAheadLog
from tallystick.storage.base import ObjectNotFound
from tallystick.storage.local import LocalStore

SRC = str(Path(tallystick.__file__).resolve().parents[1])


def _put_groups(wal: WriteAheadLog, groups: list[list[tuple[str, bytes]]], pause_every: int = 0) -> None:
    """Each group written after the previous one was answered (and a pause of 0.1 s after every ``pause_every``
    groups, for checkpoints to come between them: one pack per directory and checkpointed segment)."""

    async def run() -> None:
        for number, items in enumerate(groups, 1):
            assert await asyncio.gather(*(wal.put(k, v) for k, v in items)) == [True] * len(items)
            if pause_every and number % pause_every == 0:
                await asyncio.sleep(0.1)

    asyncio.run(run())


def _content(key: str, size: int = 64) -> bytes:
    """An object's bytes, unique to it (a random part), ``size`` bytes or more."""
    head = f"<{key}|{secrets.token_hex(8)}>".encode()
    return head + b"." * max(0, size - len(head))


def _packs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if _pack.is_pack(p.name))


def _index(path: Path) -> _pack.Index | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return _pack.read_index(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _all_bytes(root: Path) -> bytes:
    """Every file below ``root`` (the log, temp files, packs, objects) as one byte string."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def _read(root: Path, key: str) -> bytes | None:
    """The object as a new reader sees it, or None."""
    try:
        return LocalStore(root, fsync=False).get(key)
    except ObjectNotFound:
        return None


def _run_python(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checkpointed(wal: WriteAheadLog, after: int = 0, timeout: float = 15) -> None:
    """Wait for a checkpoint after the ``after``-th and for no segment to be left: every answered record is
    in a pack."""
    wait_until(lambda: wal.checkpoints > after and not wal.segment_paths(), timeout=timeout, what="a checkpoint")


def _segments(wal: WriteAheadLog) -> list[bytes]:
    return [p.read_bytes() for p in wal.segment_paths()]


def _restore_segments(root: Path, segments: list[bytes]) -> None:
    """Put the log back as a power loss before the checkpoints would have left it."""
    for number, data in enumerate(segments, 100):
        (root / ".wal" / f"{number:016d}.log").write_bytes(data)


# --- 1. many sessions, few files -----------------------------------------------------------------


def test_five_hundred_concurrent_puts_leave_few_files_and_all_read_back(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """500 concurrent puts in one partition leave far fewer files than objects; each reads back byte for byte
    through get, get_listed, keys_in and list (sizes right, keys in order, no pack named)."""
    wal = _open(tmp_path, open_logs)
    part = "sessions/app=demo/day=2026-12-03/"
    objects = {f"{part}{i:04d}.json": _content(f"s{i}", 50 + i) for i in range(500)}
    assert _put_all(wal, list(objects.items())) == [True] * 500
    _checkpointed(wal)
    directory = tmp_path / part
    files = os.listdir(directory)
    assert len(files) <= 50, f"{len(files)} files for 500 objects"
    assert all(_pack.is_pack(name) for name in files)
    store = LocalStore(tmp_path, fsync=False)
    assert store.keys_in(part) == sorted(objects)
    listed = list(store.list(part))
    assert [info.key for info in listed] == sorted(objects)
    assert {info.key: info.size for info in listed} == {k: len(v) for k, v in objects.items()}
    assert not any(".pack-" in info.key for info in store.list(""))
    for key, value in objects.items():
        assert store.get(key) == value
        assert store.get_listed(key) == value
    wal.close()
    assert len(os.listdir(directory)) < _pack.MERGE_AT * 2  # compacted at the last checkpoint
    assert LocalStore(tmp_path, fsync=False).keys_in(part) == sorted(objects)


def test_a_key_naming_a_pack_is_no_object(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A key whose last segment is a pack's file name is no object (not found, or refused as a key): get gives
    no pack's bytes, and delete loses none of the objects in the pack."""
    wal = _open(tmp_path, open_logs)
    objects = {f"p/d/{i}": _content(f"k{i}") for i in range(5)}
    assert _put_all(wal, list(objects.items())) == [True] * 5
    _checkpointed(wal)
    packs = _packs(tmp_path / "p" / "d")
    assert packs
    store = LocalStore(tmp_path, fsync=False)
    for pack in packs:
        with pytest.raises((ObjectNotFound, ValueError)):
            store.get(f"p/d/{pack.name}")
        with pytest.raises((ObjectNotFound, ValueError)):
            store.get_listed(f"p/d/{pack.name}")
        with contextlib.suppress(ValueError):
            assert store.delete(f"p/d/{pack.name}") is False
    assert _packs(tmp_path / "p" / "d") == packs
    assert all(_read(tmp_path, k) == v for k, v in objects.items())


def test_a_key_deleted_by_another_process_can_be_written_again_through_the_log(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A key deleted from a pack by another process (retention, a CLI) is created again by the next put through
    the log: not answered "already there" with nothing stored."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    assert _put_all(wal, [("p/d/k", b"one"), ("p/d/j", b"other")]) == [True, True]
    assert _put_all(wal, [("p/d/k", b"again")]) == [False]  # answered, not yet checkpointed: already there
    tool = LocalStore(tmp_path, fsync=False)
    tool.settle(timeout=20)  # what a deletion does first: the log's records become packs
    assert wal.segment_paths() == [] and _packs(tmp_path / "p" / "d")
    assert tool.delete("p/d/k")
    assert _read(tmp_path, "p/d/k") is None
    checkpoints = wal.checkpoints
    assert _put_all(wal, [("p/d/k", b"two")]) == [True]
    assert _read(tmp_path, "p/d/k") == b"two"  # from the log
    _checkpointed(wal, checkpoints)
    assert _read(tmp_path, "p/d/k") == b"two"  # from its pack
    assert _put_all(wal, [("p/d/k", b"three")]) == [False]
    assert _read(tmp_path, "p/d/j") == b"other"
    wal.close()
    assert _read(tmp_path, "p/d/k") == b"two"


def test_a_key_deleted_while_only_in_the_log_stays_deleted(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A key deleted right after its answer, before a checkpoint made its pack (the quarantine's counts are
    deleted and written again every few seconds, without a settle): the deletion finds it, the checkpoint does
    not bring it back, and the next write of the key is stored, not answered "already there"."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.3)
    assert _put_all(wal, [("p/d/k", b"deleted-one"), ("p/d/j", b"other")]) == [True, True]
    tool = LocalStore(tmp_path, fsync=False)
    assert tool.get("p/d/k") == b"deleted-one"  # from the log
    assert tool.delete("p/d/k")
    assert _read(tmp_path, "p/d/k") is None
    _checkpointed(wal)
    assert _read(tmp_path, "p/d/k") is None
    assert _put_all(wal, [("p/d/k", b"two")]) == [True]
    assert _read(tmp_path, "p/d/k") == b"two"
    wal.close()
    assert _read(tmp_path, "p/d/k") == b"two"
    assert _read(tmp_path, "p/d/j") == b"other"
    assert b"deleted-one" not in _all_bytes(tmp_path)


def test_a_key_at_the_root_written_through_the_log_is_listed(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A key without a directory, written through the log (into a pack at the root), is listed as get finds it."""
    wal = _open(tmp_path, open_logs)
    assert _put_all(wal, [("top", b"t"), ("p/d/k", b"v")]) == [True, True]
    store = LocalStore(tmp_path, fsync=False)
    assert store.get("top") == b"t"
    assert [i.key for i in store.list("")] == ["p/d/k", "top"]


# --- 2. a reader in another process while the log writes and compacts -----------------------------

_READER = r"""
import json, os, sys, time
from tallystick.storage.local import LocalStore

root, acked_path, done_path, ready_path = sys.argv[1:5]
store = LocalStore(root, fsync=False)
open(ready_path, "w").close()
deadline = time.monotonic() + 15
looks = missing = wrong = unlisted = 0
most = 0
while time.monotonic() < deadline and looks < 50000:
    finished = os.path.exists(done_path)
    try:
        with open(acked_path) as f:
            acked = int(f.read() or 0)
    except FileNotFoundError:
        acked = 0
    most = max(most, acked)
    expected = [f"p/d/{i:05d}" for i in range(acked)]
    keys = set(store.keys_in("p/d/"))  # cheap: many looks, many of them during a compaction
    missing += sum(1 for key in expected if key not in keys)
    if looks % 20 == 0 or finished:  # and now and then everything, read
        listed = {info.key: info.size for info in store.list("p/d/")}
        unlisted += sum(1 for key in expected if listed.get(key) != 40)
        unlisted += sum(1 for key in listed if ".pack-" in key)
        wrong += sum(1 for key in expected if store.get_listed(key) != (key + "|").encode().ljust(40, b"#"))
    looks += 1
    if finished:
        break
result = {"looks": looks, "missing": missing, "wrong": wrong, "unlisted": unlisted, "most": most, "finished": finished}
print(json.dumps(result))
"""


def test_a_reader_in_another_process_sees_every_acknowledged_object_during_compaction(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Another process listing and reading while the log writes small groups and compacts them finds every
    object acknowledged before it looked: none missing, none wrong, no exception."""
    root = tmp_path / "store"
    wal = _open(root, open_logs, checkpoint_seconds=0.05)
    acked, done, ready = tmp_path / "acked", tmp_path / "done", tmp_path / "ready"
    reader = _run_python(_READER, str(root), str(acked), str(done), str(ready))
    try:
        wait_until(ready.exists, timeout=20, what="the reader to start")

        async def write() -> None:
            count = 0
            started = time.monotonic()
            while count < 1200 and time.monotonic() - started < 4:
                group = [(f"p/d/{i:05d}", f"p/d/{i:05d}|".encode().ljust(40, b"#")) for i in range(count, count + 4)]
                assert await asyncio.gather(*(wal.put(k, v) for k, v in group)) == [True] * 4
                count += 4
                (tmp_path / "acked.tmp").write_text(str(count))
                os.replace(tmp_path / "acked.tmp", acked)
                if count % 40 == 0:
                    await asyncio.sleep(0.01)  # let checkpoints (and compactions) come between groups

        asyncio.run(write())
        done.touch()
        out, err = reader.communicate(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    result = json.loads(out)
    assert (result["missing"], result["wrong"], result["unlisted"]) == (0, 0, 0), result
    assert result["finished"] and result["looks"] >= 3 and result["most"] == int(acked.read_text()), result
    assert wal.checkpoints >= 3
    assert len(_packs(root / "p" / "d")) < int(acked.read_text()) // 4 // 2  # compaction ran


# --- 3. compaction ----------------------------------------------------------------------------------


def test_many_groups_in_one_directory_are_compacted_into_a_few_packs(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """After 120 groups in one directory and a few checkpoints, it holds at most MERGE_AT packs, all objects intact."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    objects = {f"c/d/{i:04d}": _content(f"c{i}", 100) for i in range(360)}
    items = list(objects.items())
    groups = [items[i : i + 3] for i in range(0, len(items), 3)]
    _put_groups(wal, groups, pause_every=30)
    directory = tmp_path / "c" / "d"
    wait_until(lambda: not wal.segment_paths(), timeout=10, what="the last checkpoint")
    assert wal.checkpoints >= 3
    wait_until(lambda: len(_packs(directory)) < _pack.MERGE_AT, timeout=10, what="a compaction")
    assert len(_packs(directory)) < len(groups) // 10
    assert all(_index(p) is not None for p in _packs(directory))
    store = LocalStore(tmp_path, fsync=False)
    assert store.keys_in("c/d/") == sorted(objects)
    assert all(store.get(k) == v for k, v in objects.items())
    wal.close()
    assert all(_read(tmp_path, k) == v for k, v in objects.items())


# --- 4. deletion ------------------------------------------------------------------------------------


def test_deleted_objects_leave_no_trace_and_their_pack_mates_stay(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """delete and delete_many of objects in packs (and of a key both a file and in a pack) leave no byte of them
    in any file below the root; the other objects of those packs read back; the counts are right."""
    root = tmp_path / "store"
    wal = _open(root, open_logs, checkpoint_seconds=0.05)
    first = {f"s/d/a{i}": _content(f"a{i}") for i in range(5)}
    second = {f"s/d/b{i}": _content(f"b{i}") for i in range(5)}
    _put_groups(wal, [list(first.items()), list(second.items())])
    _checkpointed(wal)  # the directory exists now: the writer reads its names at the next write there
    assert _put_all(wal, [("s/d/c1", _content("c1"))]) == [True]
    tool = LocalStore(root, fsync=False)  # a CLI tool writing without the log while the server runs
    dup_file, dup_packed = _content("dup-file"), _content("dup-packed")
    assert tool.put_if_absent("s/d/dup", dup_file)
    assert _put_all(wal, [("s/d/dup", dup_packed), ("s/d/c0", _content("c0"))]) == [True, True]
    _checkpointed(wal)  # deletions do not wait for a checkpoint (see _wal.py): their callers settle() first
    assert (root / "s" / "d" / "dup").read_bytes() == dup_file  # both copies exist
    assert any(_index(p) and "dup" in (_index(p) or {}) for p in _packs(root / "s" / "d"))
    objects = {**first, **second}
    store = LocalStore(root, fsync=False)
    assert store.delete("s/d/a0") is True
    assert store.delete("s/d/a0") is False
    assert store.delete("s/d/missing") is False
    assert store.delete_many(["s/d/a1", "s/d/b2", "s/d/dup", "s/d/nope", "s/d/b2"]) == 3
    gone = {k: objects[k] for k in ("s/d/a0", "s/d/a1", "s/d/b2")}
    kept = {k: v for k, v in objects.items() if k not in gone}
    unique = [v[: v.index(b">") + 1] for v in [*gone.values(), dup_file, dup_packed]]

    def check() -> None:
        everything = _all_bytes(root)
        assert [u for u in unique if u in everything] == []
        reader = LocalStore(root, fsync=False)
        for key in [*gone, "s/d/dup"]:
            with pytest.raises(ObjectNotFound):
                reader.get(key)
            assert key not in reader.keys_in("s/d/")
        assert all(reader.get(k) == v and reader.get_listed(k) == v for k, v in kept.items())
        assert [i.key for i in reader.list("s/d/")] == sorted([*kept, "s/d/c0", "s/d/c1"])

    check()
    wal.close()  # checkpoints and compacts
    check()
    reopened = _open(root, open_logs)  # a restart replays nothing back
    assert reopened.recovery.records == 0
    check()


# --- 5. deletion from another process during compaction ----------------------------------------------

_DELETER = r"""
import json, sys, time
from tallystick.storage.local import LocalStore

root, ready_path, *keys = sys.argv[1:]
store = LocalStore(root)
open(ready_path, "w").close()
deadline = time.monotonic() + 10
results = []
i = 0
while i < len(keys) and time.monotonic() < deadline:
    if i % 4 == 3:
        chunk = keys[i : i + 2]
        results.append(store.delete_many(chunk) == len(chunk))
        i += len(chunk)
    else:
        results.append(store.delete(keys[i]))
        i += 1
    time.sleep(0.005)
print(json.dumps({"deleted": i, "all_true": all(results)}))
"""


def test_deletion_in_another_process_during_compaction_loses_and_revives_nothing(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Another process deletes objects one by one while the writer keeps packing and compacting that directory:
    nothing deleted comes back, nothing else is lost."""
    root = tmp_path / "store"
    wal = _open(root, open_logs, checkpoint_seconds=0.05)
    initial = {f"x/d/i{i:04d}": _content(f"i{i}") for i in range(240)}
    items = list(initial.items())
    _put_groups(wal, [items[i : i + 4] for i in range(0, len(items), 4)])
    doomed = [k for n, k in enumerate(initial) if n % 3 == 0]
    ready = tmp_path / "ready"
    deleter = _run_python(_DELETER, str(root), str(ready), *doomed)
    added: dict[str, bytes] = {}
    try:
        wait_until(ready.exists, timeout=20, what="the deleter to start")

        async def write() -> None:
            started = time.monotonic()
            n = 0
            while deleter.poll() is None and time.monotonic() - started < 8:
                group = {f"x/d/n{n + j:05d}": _content(f"n{n + j}") for j in range(3)}
                assert await asyncio.gather(*(wal.put(k, v) for k, v in group.items())) == [True] * 3
                added.update(group)
                n += 3
                await asyncio.sleep(0.003)

        asyncio.run(write())
        out, err = deleter.communicate(timeout=30)
    finally:
        if deleter.poll() is None:
            deleter.kill()
            deleter.wait()
    assert deleter.returncode == 0, err
    result = json.loads(out)
    assert result == {"deleted": len(doomed), "all_true": True}
    assert wal.checkpoints >= 3
    kept = {**{k: v for k, v in initial.items() if k not in doomed}, **added}
    wal.close()
    store = LocalStore(root, fsync=False)
    assert store.keys_in("x/d/") == sorted(kept)
    assert all(store.get(k) == v for k, v in kept.items())
    everything = _all_bytes(root)
    assert [k for k in doomed if initial[k][: initial[k].index(b">") + 1] in everything] == []


# --- 6. recovery --------------------------------------------------------------------------------------


def _three_packs(root: Path, logs: list[WriteAheadLog]) -> tuple[dict[str, bytes], list[bytes], list[Path]]:
    """Three groups of r/d, each written by a server that then stopped (its checkpoint made one pack of it);
    the log's segments as they were before each checkpoint, oldest first."""
    groups = [[(f"r/d/g{g}-{i}", _content(f"g{g}-{i}")) for i in range(4)] for g in range(3)]
    segments: list[bytes] = []
    for group in groups:
        wal = _open(root, logs, checkpoint_seconds=3600)
        assert wal.recovery.records == 0
        _put_groups(wal, [group])
        [segment] = _segments(wal)
        segments.append(segment)
        wal.close()
        assert wal.segment_paths() == []
    packs = _packs(root / "r" / "d")
    assert len(packs) == 3
    return {k: v for group in groups for k, v in group}, segments, packs


def _holder(packs: list[Path], key: str) -> Path:
    name = key.rpartition("/")[2]
    return next(p for p in packs if name in (_index(p) or {}))


def test_a_pack_cut_short_is_removed_and_its_objects_replayed(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A pack cut short by a power loss before the checkpoint: the reopened log replays, removes it, and every
    object reads back."""
    objects, segments, packs = _three_packs(tmp_path, open_logs)
    broken = _holder(packs, "r/d/g1-0")
    os.truncate(broken, broken.stat().st_size // 2)
    _restore_segments(tmp_path, segments)
    reopened = _open(tmp_path, open_logs)
    assert (reopened.recovery.records, reopened.recovery.rewritten) == (12, 4)
    assert not broken.exists()
    assert sorted(set(packs) - {broken}) == sorted(set(packs) & set(_packs(tmp_path / "r" / "d")))  # untouched
    assert all(_index(p) is not None for p in _packs(tmp_path / "r" / "d"))
    store = LocalStore(tmp_path, fsync=False)
    assert store.keys_in("r/d/") == sorted(objects)
    assert [i.key for i in store.list("r/")] == sorted(objects)
    assert all(store.get(k) == v for k, v in objects.items())
    assert reopened.segment_paths() == []


def test_a_damaged_record_in_a_whole_pack_is_rewritten_from_the_log(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A pack whose index is whole but one record's bytes are damaged: the replay writes that object again, the
    others of its pack stay, each key is listed once and reads back."""
    objects, segments, packs = _three_packs(tmp_path, open_logs)
    holder = _holder(packs, "r/d/g2-1")
    data = bytearray(holder.read_bytes())
    at = bytes(data).index(objects["r/d/g2-1"]) + 3
    data[at] ^= 0xFF
    holder.write_bytes(bytes(data))
    assert _index(holder) is not None
    assert _read(tmp_path, "r/d/g2-1") is None  # a failed checksum is not served
    _restore_segments(tmp_path, segments)
    reopened = _open(tmp_path, open_logs)
    assert (reopened.recovery.records, reopened.recovery.rewritten) == (12, 1)
    store = LocalStore(tmp_path, fsync=False)
    assert [i.key for i in store.list("r/")] == sorted(objects)
    assert all(store.get(k) == v for k, v in objects.items())
    assert bytes(data[at - 3 : at + 10]) not in _all_bytes(tmp_path)  # the damaged copy is gone


# --- 7. old object files and packs together --------------------------------------------------------


def test_plain_files_and_packs_are_listed_together_in_key_order(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """Old object files and packs in one directory: list and keys_in merge them in key order; put_if_absent
    without the log refuses a key a pack holds and writes nothing."""
    old = LocalStore(tmp_path, fsync=False)  # an install from before packs
    plain = {f"m/d/{n}": _content(n) for n in ("a", "c", "e-1", "g")}
    assert all(old.put_if_absent(k, v) for k, v in plain.items())
    (tmp_path / "m" / "d" / "e").mkdir()
    assert old.put_if_absent("m/d/e/x", b"nested")
    wal = _open(tmp_path, open_logs)
    packed = {f"m/d/{n}": _content(n) for n in ("b", "d", "f", "e-0", "h")}
    assert _put_all(wal, list(packed.items())) == [True] * 5
    assert _put_all(wal, [("m/d/a", b"again")]) == [False]  # a plain file is there
    every = {**plain, **packed, "m/d/e/x": b"nested"}
    store = LocalStore(tmp_path, fsync=False)
    listed = list(store.list("m/"))
    assert [i.key for i in listed] == sorted(every)
    assert {i.key: i.size for i in listed} == {k: len(v) for k, v in every.items()}
    assert store.keys_in("m/d/") == sorted({*plain, *packed})  # objects of the directory itself
    assert [i.key for i in store.list("m/d/", start_after="m/d/c")] == [k for k in sorted(every) if k > "m/d/c"]
    before = sorted(os.listdir(tmp_path / "m" / "d"))
    tool = LocalStore(tmp_path, fsync=False)
    assert tool.put_if_absent("m/d/d", b"a second copy") is False
    assert sorted(os.listdir(tmp_path / "m" / "d")) == before
    assert os.listdir(tmp_path / ".tmp") == []
    assert all(store.get(k) == v for k, v in every.items())


# --- 8. temp files of a crashed deletion ----------------------------------------------------------------


@pytest.mark.parametrize("cleaner", ["deletion", "compaction"])
def test_a_half_written_temp_pack_is_never_listed_and_is_removed(
    tmp_path: Path, open_logs: list[WriteAheadLog], cleaner: str
) -> None:
    """A half-written .pack-tmp- file (a crashed deletion) is never listed, and the next deletion or compaction
    in its directory removes it."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    objects = {f"t/d/{i}": _content(f"t{i}") for i in range(4)}
    assert _put_all(wal, list(objects.items())) == [True] * 4
    _checkpointed(wal)
    checkpoints = wal.checkpoints
    directory = tmp_path / "t" / "d"
    [pack] = _packs(directory)
    temp = directory / ".pack-tmp-0123456789abcdef"
    temp.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
    store = LocalStore(tmp_path, fsync=False)
    assert store.keys_in("t/d/") == sorted(objects)
    assert [i.key for i in store.list("")] == sorted(objects)
    assert temp.exists()
    if cleaner == "deletion":
        assert wal.checkpoints == checkpoints  # none since: only the deletion may have removed it
        assert store.delete("t/d/0")
        del objects["t/d/0"]
        assert not temp.exists()
    else:
        more = {f"t/d/m{i}": _content(f"m{i}") for i in range(_pack.MERGE_AT * 2)}
        _put_groups(wal, [[item] for item in more.items()], pause_every=1)  # a checkpoint (a pack) each
        objects.update(more)
        wait_until(lambda: not temp.exists(), timeout=10, what="a compaction of t/d")
        wait_until(lambda: len(_packs(directory)) < _pack.MERGE_AT, timeout=10, what="a compaction of t/d")
    assert all(_read(tmp_path, k) == v for k, v in objects.items())
    assert LocalStore(tmp_path, fsync=False).keys_in("t/d/") == sorted(objects)


# --- 9. acknowledged, not yet checkpointed: only in the log, read by every process ---------------------

_LOG_READER = r"""
import json, sys
from tallystick.storage.base import ObjectNotFound
from tallystick.storage.local import LocalStore

root, *keys = sys.argv[1:]
store = LocalStore(root, fsync=False)
got = {}
for key in keys:
    try:
        got[key] = store.get(key).decode("latin-1")
    except ObjectNotFound:
        got[key] = None
result = {
    "get": got,
    "get_listed": {key: store.get_listed(key).decode("latin-1") for key in keys if got[key] is not None},
    "keys_in": {p: store.keys_in(p) for p in ("l/a/", "l/b/", "l/b/c/", "l/")},
    "list": {p: [[i.key, i.size] for i in store.list(p)] for p in ("", "l/", "l/a/", "l/b")},
    "after": [i.key for i in store.list("l/", start_after="l/a/1")],
    "list_dirs": {p: store.list_dirs(p) for p in ("", "l/", "l/b/", "l/a/")},
    "put_if_absent": store.put_if_absent(keys[0], b"a tool's copy"),
}
print(json.dumps(result))
"""


def test_an_acknowledged_object_not_yet_checkpointed_is_read_by_another_process(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Answered and synced in the log, no pack made yet (checkpoint in an hour): another process finds each
    object through get, get_listed, keys_in, list and list_dirs, as it will once checkpointed, and a tool's
    put_if_absent without the log refuses the key."""
    root = tmp_path / "store"
    wal = _open(root, open_logs, checkpoint_seconds=3600)
    objects = {
        "l/a/0": _content("a0"),
        "l/a/1": _content("a1", 3 << 20),  # longer than what LogView reads at once
        "l/a/2": b"",
        "l/b/c/x": _content("x"),
        "l/b/y": _content("y", 1 << 20),
        "top": _content("top"),
    }
    items = list(objects.items())
    _put_groups(wal, [items[:3], items[3:]])
    assert wal.checkpoints == 0 and wal.segment_paths()
    assert not (root / "l").exists()  # nothing but the log holds them

    def expected() -> dict[str, Any]:
        keys = sorted(objects)
        return {
            "get": {k: v.decode("latin-1") for k, v in objects.items()},
            "get_listed": {k: v.decode("latin-1") for k, v in objects.items()},
            "keys_in": {
                "l/a/": ["l/a/0", "l/a/1", "l/a/2"],
                "l/b/": ["l/b/y"],
                "l/b/c/": ["l/b/c/x"],
                "l/": [],
            },
            "list": {p: [[k, len(objects[k])] for k in keys if k.startswith(p)] for p in ("", "l/", "l/a/", "l/b")},
            "after": ["l/a/2", "l/b/c/x", "l/b/y"],
            "list_dirs": {"": ["l"], "l/": ["a", "b"], "l/b/": ["c"], "l/a/": []},
            "put_if_absent": False,
        }

    def read_elsewhere() -> dict[str, Any]:
        reader = _run_python(_LOG_READER, str(root), *objects)
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        return dict(json.loads(out))

    assert read_elsewhere() == expected()
    assert wal.checkpoints == 0 and wal.segment_paths()  # still only in the log
    assert not (root / "l").exists()
    wal.close()  # the checkpoint: packs now, no log
    assert wal.segment_paths() == [] and _packs(root / "l" / "a")
    assert read_elsewhere() == expected()


def test_an_acknowledged_key_is_already_there_after_its_directory_is_read_again(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A key answered "created" and not yet checkpointed stays "already there" when a retry of another key of
    its directory (stored on disk) made the writer read that directory again: a second write of it must not be
    answered "created", nor replace the first one's bytes."""
    assert LocalStore(tmp_path, fsync=False).put_if_absent("p/d/old", b"old")  # stored before (or by a tool)
    wal = _open(tmp_path, open_logs, checkpoint_seconds=3600)
    assert _put_all(wal, [("p/d/k", b"one")]) == [True]
    assert _put_all(wal, [("p/d/old", b"retry")]) == [False]  # seems stored: the directory is read again
    assert _put_all(wal, [("p/d/k", b"two")]) == [False]
    assert _read(tmp_path, "p/d/k") == b"one"
    wal.close()
    assert _read(tmp_path, "p/d/k") == b"one"


_LIVE_READER = r"""
import json, os, sys, time
from tallystick.storage.local import LocalStore

root, acked_path, done_path, ready_path = sys.argv[1:5]
store = LocalStore(root, fsync=False)
open(ready_path, "w").close()
deadline = time.monotonic() + 20
looks = missing = wrong = 0
most = 0
while time.monotonic() < deadline and looks < 20000:
    finished = os.path.exists(done_path)
    try:
        with open(acked_path) as f:
            acked = int(f.read() or 0)
    except FileNotFoundError:
        acked = 0
    most = max(most, acked)
    # group g is key q/d{g // 5}/{g} (a new directory every five groups, made by the checkpoint)
    expected = {f"q/d{g // 5:04d}/{g:05d}" for g in range(acked)}
    check = looks % 4
    if check == 0:
        found = {info.key for info in store.list("q/")}
    elif check == 1:
        dirs = set(store.list_dirs("q/"))
        found = {key for key in expected if key.split("/")[1] in dirs}
    elif check == 2:  # the newest directories: some of their keys in the log, some in packs
        newest = sorted({key.rpartition("/")[0] for key in expected})[-3:]
        found = {key for d in newest for key in store.keys_in(d + "/")}
        expected = {key for key in expected if key.rpartition("/")[0] in newest}
    else:
        found = set()
        for key in sorted(expected)[-12:]:
            data = store.get(key)
            if data != key.encode().ljust(64, b"#"):
                wrong += 1
            found.add(key)
        expected = set(sorted(expected)[-12:])
    missing += len(expected - found)
    looks += 1
    if finished:
        break
print(json.dumps({"looks": looks, "missing": missing, "wrong": wrong, "most": most, "finished": finished}))
"""


def test_a_reader_listing_while_checkpoints_happen_never_misses_an_acknowledged_key(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Another process lists (list, list_dirs, keys_in) and reads while checkpoints move records from the log
    into packs of new directories every few hundredths of a second: every key acknowledged before a look is
    found by it (in the log or in a pack), none read wrong, no exception."""
    root = tmp_path / "store"
    wal = _open(root, open_logs, checkpoint_seconds=0.02)
    acked, done, ready = tmp_path / "acked", tmp_path / "done", tmp_path / "ready"
    reader = _run_python(_LIVE_READER, str(root), str(acked), str(done), str(ready))
    try:
        wait_until(ready.exists, timeout=20, what="the reader to start")

        async def write() -> None:
            started = time.monotonic()
            g = 0
            while g < 2000 and time.monotonic() - started < 4:
                key = f"q/d{g // 5:04d}/{g:05d}"
                assert await wal.put(key, key.encode().ljust(64, b"#"))
                g += 1
                (tmp_path / "acked.tmp").write_text(str(g))
                os.replace(tmp_path / "acked.tmp", acked)
                await asyncio.sleep(0.002)  # checkpoints between writes: some keys in the log, some in packs

        asyncio.run(write())
        done.touch()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    result = json.loads(out)
    assert (result["missing"], result["wrong"]) == (0, 0), result
    assert result["finished"] and result["looks"] >= 20 and result["most"] == int(acked.read_text()), result
    assert wal.checkpoints >= 10


def test_many_groups_keep_the_packs_of_a_directory_bounded(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """Hundreds of groups into three directories over a hundred checkpoints: compaction keeps each directory's
    small packs under MERGE_AT per size tier as it goes, and at the end; every object reads back."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.01)
    directories = [tmp_path / "b" / f"d{n}" for n in range(3)]
    objects: dict[str, bytes] = {}
    most = 0

    def small_packs_per_tier(directory: Path) -> dict[int, int]:
        tiers: dict[int, int] = {}
        for pack in _packs(directory):
            with contextlib.suppress(FileNotFoundError):
                size = pack.stat().st_size
                if size < _pack.MERGE_BELOW:
                    tiers[_pack.tier(size)] = tiers.get(_pack.tier(size), 0) + 1
        return tiers

    async def write() -> None:
        nonlocal most
        for g in range(200):
            group = {f"b/d{n}/{g:04d}-{j}": _content(f"{n}-{g}-{j}", 2000) for n in range(3) for j in range(2)}
            assert await asyncio.gather(*(wal.put(k, v) for k, v in group.items())) == [True] * len(group)
            objects.update(group)
            await asyncio.sleep(0.015)  # about one segment, one checkpoint, one pack per directory a group
            if g % 10 == 9:
                most = max([most, *(len(_packs(d)) for d in directories)])

    asyncio.run(write())
    _checkpointed(wal)
    assert wal.checkpoints >= 100
    assert most <= _pack.MERGE_AT * 3 + 1, most  # below MERGE_BELOW: three tiers, each merged at MERGE_AT
    for directory in directories:
        assert all(count <= _pack.MERGE_AT for count in small_packs_per_tier(directory).values())
        assert len(_packs(directory)) <= _pack.MERGE_AT * 3
    store = LocalStore(tmp_path, fsync=False)
    assert [i.key for i in store.list("b/")] == sorted(objects)
    assert all(store.get(k) == v for k, v in objects.items())
    wal.close()
    assert all(_read(tmp_path, k) == v for k, v in objects.items())


# --- 10. malformed packs -------------------------------------------------------------------------------------


def _crafted_pack(body: bytes, entries: list[tuple[int, int, str]]) -> bytes:
    """A pack whose footer and index check out (their checksum right), around any ``body``."""
    index = b"".join(_pack.ENTRY.pack(offset, length, len(name)) + name.encode() for offset, length, name in entries)
    return body + index + _pack.FOOTER.pack(len(body), zlib.crc32(index), len(entries), _pack.MAGIC)


def _nonsense_packs(directory: Path, copies: int) -> None:
    """Packs with a whole index pointing at nonsense (each record's checksum right): a record too short to hold a
    key, one whose key is longer than the record, and an object past the end of the file."""
    directory.mkdir(parents=True, exist_ok=True)
    keyless = _pack.HEADER.pack(0, zlib.crc32(bytes(4))) + b".."  # a payload of 0 bytes, with its right crc
    length = (2).to_bytes(4, "little")
    too_long = length + zlib.crc32(b"\xe8\x03", zlib.crc32(length)).to_bytes(4, "little") + b"\xe8\x03"  # key: 1000 B
    for n in range(copies):
        (directory / f".pack-short-{n}").write_bytes(_crafted_pack(keyless, [(0, 0, "short")]))
        (directory / f".pack-long-{n}").write_bytes(_crafted_pack(too_long, [(0, 0, "long")]))
        (directory / f".pack-far-{n}").write_bytes(_crafted_pack(b"", [(1 << 40, 5, "far")]))


def test_packs_whose_index_points_at_nonsense_raise_nothing_and_hold_nothing(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Packs whose index checks out but points at nonsense: get finds no object in them, listing, deletion and
    compaction raise nothing, and the writer's checkpoints (which compact that directory) go on."""
    _nonsense_packs(tmp_path / "g" / "x", 1)
    _nonsense_packs(tmp_path / "g" / "d", 3)  # 9 small packs: the writer's checkpoint compacts them
    store = LocalStore(tmp_path, fsync=False)
    for key in ("g/x/short", "g/x/long", "g/x/far", "g/d/short", "g/d/long", "g/d/far"):
        with pytest.raises(ObjectNotFound):
            store.get(key)
        with pytest.raises(ObjectNotFound):
            store.get_listed(key)
    list(store.list("g/"))
    store.keys_in("g/x/")
    store.delete_many(["g/x/short", "g/x/long", "g/x/far"])
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    assert _put_all(wal, [("g/d/new", b"new")]) == [True]
    _checkpointed(wal, timeout=5)
    checkpoints = wal.checkpoints
    assert _put_all(wal, [("g/d/newer", b"newer")]) == [True]
    _checkpointed(wal, checkpoints, timeout=5)  # the checkpointer outlived the compaction of g/d
    assert (_read(tmp_path, "g/d/new"), _read(tmp_path, "g/d/newer")) == (b"new", b"newer")
    _pack.compact(str(tmp_path / "g" / "d"))
