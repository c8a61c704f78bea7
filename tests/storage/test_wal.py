"""The local store's write-ahead log: shared syncs, create-only answers, recovery, one writer."""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.api import serve_in_thread
from fixtures.common import wait_until
from fixtures.wal import open_log as _open
from fixtures.wal import put_all as _put_all
from sessions import body, session
from tallystick.storage import StorageUnavailable
from tallystick.storage._wal import StoreLocked, WriteAheadLog, decode_records, encode_record
from tallystick.storage.base import ObjectNotFound
from tallystick.storage.local import LocalStore


def stored(root: Path, *parts: str) -> bytes | None:
    """The object under ``parts`` (joined by "/") as any reader sees it: a file, or a record of a pack."""
    try:
        return LocalStore(root, fsync=False).get("/".join(parts))
    except ObjectNotFound:
        return None


def _segment(root: Path, name: str, data: bytes) -> Path:
    path = root / ".wal" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("use_syncfs", [pytest.param(True, id="syncfs"), pytest.param(False, id="fsync-each")])
def test_concurrent_writers_share_syncs(tmp_path: Path, open_logs: list[WriteAheadLog], use_syncfs: bool) -> None:
    """200 concurrent writes all land whole, in far fewer log syncs than writes, leaving no temp file."""
    wal = _open(tmp_path, open_logs, use_syncfs=use_syncfs)
    created = _put_all(wal, [(f"p/q/{i}.json", f"object {i}".encode()) for i in range(200)])
    assert created == [True] * 200
    assert all(stored(tmp_path, "p", "q", f"{i}.json") == f"object {i}".encode() for i in range(200))
    assert wal.records == 200
    assert wal.groups < 100
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_fifty_concurrent_writers_of_one_key_exactly_one_wins(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """50 concurrent writes of one key: exactly one creates it, its bytes are stored, one record is logged."""
    wal = _open(tmp_path, open_logs)
    created = _put_all(wal, [("k/one", b"v%d" % i) for i in range(50)])
    assert created.count(True) == 1
    assert stored(tmp_path, "k", "one") == b"v%d" % created.index(True)
    assert wal.records == 1


def test_fifty_concurrent_http_puts_of_one_session_get_one_201(tmp_path: Path) -> None:
    """50 clients PUT the same session at once over HTTP: one 201, 49 304, one stored object."""
    raw = body(session())
    statuses: list[int] = []
    barrier = threading.Barrier(50)
    runner = serve_in_thread(LocalStore(tmp_path / "sessions"))
    api = next(runner)
    try:

        def put() -> None:
            conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
            try:
                conn.connect()
                barrier.wait(timeout=30)
                conn.request("PUT", "/v1/sessions", raw, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
            finally:
                conn.close()

        threads = [threading.Thread(target=put) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(statuses) == [201] + [304] * 49
        assert len(list(api.store.list("sessions/"))) == 1
    finally:
        next(runner, None)
        api.store.close()


def test_duplicate_is_answered_only_after_the_first_write_is_durable(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """While the first write's sync is stuck, a second writer of the key waits; both answer once it returns."""
    gate = tmp_path / "gate"
    gate.mkdir()
    wal = _open(tmp_path / "store", open_logs, failpoints=[f"sync-gate={gate}"])

    async def race() -> tuple[bool, bool]:
        first = asyncio.ensure_future(wal.put("k", b"first"))
        await asyncio.to_thread(wait_until, (gate / "waiting").exists, timeout=30, what="the writer's sync")
        second = asyncio.ensure_future(wal.put("k", b"second"))
        await asyncio.sleep(0.2)
        assert not first.done() and not second.done()
        (gate / "go").touch()
        return await first, await second

    try:
        assert asyncio.run(race()) == (True, False)
    finally:
        (gate / "go").touch()  # a failing test must not leave the writer stuck
    assert stored(tmp_path / "store", "k") == b"first"


def test_a_record_is_read_only_once_its_sync_has_returned(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """While its record's sync is held, no reader (another process included) sees the object; right after the
    answer every reader does, before any checkpoint made its pack."""
    gate = tmp_path / "gate"
    gate.mkdir()
    root = tmp_path / "store"
    wal = _open(root, open_logs, failpoints=[f"sync-gate={gate}"], checkpoint_seconds=3600)

    def elsewhere() -> bytes:
        code = "import sys; from tallystick.storage.local import LocalStore as S; "
        code += "s = S(sys.argv[1], fsync=False); sys.stdout.write(repr((s.keys_in('o/'), s.list_dirs(''))))"
        return subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, check=True).stdout

    async def held() -> bool:
        put = asyncio.ensure_future(wal.put("o/k", b"content"))
        try:
            await asyncio.to_thread(wait_until, (gate / "waiting").exists, timeout=30, what="the writer's sync")
            assert b"o/k" in (root / ".wal" / "0000000000000001.log").read_bytes()  # written, not synced
            assert stored(root, "o", "k") is None and not put.done()
            assert await asyncio.to_thread(elsewhere) == b"([], [])"
        finally:
            (gate / "go").touch()
        return await put

    try:
        assert asyncio.run(held()) is True
    finally:
        (gate / "go").touch()
    assert stored(root, "o", "k") == b"content"
    assert elsewhere() == b"(['o/k'], ['o'])"
    assert not (root / "o").exists()  # no pack yet: the log holds it


def test_a_write_during_a_sync_is_synced_at_once_by_a_second_sync(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A record written while a sync is held does not wait for it: a second sync starts beside it."""
    gate = tmp_path / "gate"
    gate.mkdir()
    wal = _open(tmp_path / "store", open_logs, failpoints=[f"sync-gate={gate}"])

    def syncs_waiting() -> int:
        return len(list(gate.glob("waiting-*")))

    async def two() -> list[bool]:
        first = asyncio.ensure_future(wal.put("a", b"1"))
        try:
            await asyncio.to_thread(wait_until, lambda: syncs_waiting() == 1, timeout=30, what="the first sync")
            second = asyncio.ensure_future(wal.put("b", b"2"))
            await asyncio.to_thread(wait_until, lambda: syncs_waiting() == 2, timeout=30, what="a second sync")
            assert not first.done() and not second.done()
        finally:
            (gate / "go").touch()
        return [await first, await second]

    try:
        assert asyncio.run(two()) == [True, True]
    finally:
        (gate / "go").touch()
    assert stored(tmp_path / "store", "b") == b"2"


def test_existing_object_is_answered_at_once_without_a_record(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A key whose object file exists gets "already there" without writing the log."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_bytes(b"old")
    wal = _open(tmp_path, open_logs)
    assert _put_all(wal, [("a/b", b"new")]) == [False]
    assert wal.records == 0
    assert stored(tmp_path, "a", "b") == b"old"


def test_rewrite_of_an_existing_object_survives_a_crash_and_replay(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A second write of a stored key is not logged, so a replay after a crash cannot overwrite the first."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=3600)
    assert _put_all(wal, [("c/k", b"first"), ("c/other", b"x")]) == [True, True]
    assert _put_all(wal, [("c/k", b"second"), ("c/new", b"y")]) == [False, True]
    os.kill(wal.helper_pid, signal.SIGKILL)  # a crash: the segments stay for the next open
    wait_until(lambda: wal.failed is not None, timeout=10, what="the server to see the writer gone")
    segments = [p.read_bytes() for p in wal.segment_paths()]
    assert segments and b"second" not in b"".join(segments)
    wal.close()
    reopened = _open(tmp_path, open_logs)
    assert reopened.recovery.records == 3
    assert stored(tmp_path, "c", "k") == b"first"


def test_failed_log_sync_refuses_writes_until_reopened(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A failed fdatasync answers StorageUnavailable, materializes nothing, and refuses later writes."""

    wal = _open(tmp_path, open_logs, failpoints=["sync-eio"])
    failed = r"cannot write the log in .* \(Input/output error\): restart the service"
    with pytest.raises(StorageUnavailable, match=failed):
        _put_all(wal, [("k", b"v")])
    assert stored(tmp_path, "k") is None
    with pytest.raises(StorageUnavailable, match="restart the service"):
        _put_all(wal, [("other", b"v")])
    assert wal.failed is not None
    wal.close()
    reopened = _open(tmp_path, open_logs)
    assert reopened.recovery.records == 1  # written but never acknowledged: stored now, a retry gets 304
    assert _put_all(reopened, [("k", b"again"), ("other", b"v")]) == [False, True]


def test_torn_tail_record_is_dropped(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """Recovery keeps the complete records of a segment and drops a final record cut short."""
    torn = encode_record("a/3", b"three")[:-2]
    _segment(tmp_path, "0000000000000007.log", encode_record("a/1", b"one") + encode_record("a/2", b"two") + torn)
    wal = _open(tmp_path, open_logs)
    assert (wal.recovery.segments, wal.recovery.records, wal.recovery.rewritten) == (1, 2, 2)
    assert wal.recovery.torn_bytes == len(torn)
    assert stored(tmp_path, "a", "1") == b"one"
    assert stored(tmp_path, "a", "2") == b"two"
    assert stored(tmp_path, "a", "3") is None
    assert wal.segment_paths() == []  # replayed ones are gone; the writer starts 8 with the first write


def test_record_with_a_bad_checksum_ends_the_segment(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A flipped byte fails the record's checksum: it and everything after it are dropped."""
    second = bytearray(encode_record("a/2", b"two"))
    second[-1] ^= 0xFF
    data = encode_record("a/1", b"one") + bytes(second) + encode_record("a/3", b"three")
    records, end = decode_records(data)
    assert records == [("a/1", b"one")]
    assert end == len(encode_record("a/1", b"one"))


def test_missing_or_damaged_objects_are_rewritten_from_the_log(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """Recovery writes a missing object, replaces an empty or cut-short one, and leaves a whole one alone."""
    records = {"s/missing": b"m" * 100, "s/empty": b"e" * 100, "s/short": b"x" * 100, "s/whole": b"w" * 100}
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "empty").write_bytes(b"")
    (tmp_path / "s" / "short").write_bytes(b"x" * 40)
    (tmp_path / "s" / "whole").write_bytes(b"w" * 100)
    whole_inode = (tmp_path / "s" / "whole").stat().st_ino
    _segment(tmp_path, "0000000000000001.log", b"".join(encode_record(k, v) for k, v in records.items()))
    wal = _open(tmp_path, open_logs)
    assert (wal.recovery.records, wal.recovery.rewritten) == (4, 3)
    for key, value in records.items():
        assert stored(tmp_path, key) == value
    assert (tmp_path / "s" / "whole").stat().st_ino == whole_inode


def test_segments_are_deleted_once_their_objects_are_durable(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """After a checkpoint the closed segments are gone; the objects stay; close leaves no segment."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05, use_syncfs=False)
    for batch in range(3):
        _put_all(wal, [(f"d{batch}/{i}", b"%d" % i) for i in range(20)])
    wait_until(lambda: wal.checkpoints >= 1 and len(wal.segment_paths()) <= 1, timeout=10, what="a checkpoint")
    assert all(stored(tmp_path, f"d{b}", str(i)) == b"%d" % i for b in range(3) for i in range(20))
    wal.close()
    assert wal.segment_paths() == []


def test_unclean_stop_leaves_segments_that_next_open_replays(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """Records whose objects were lost (as after a crash before the checkpoint) come back at the next open."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=3600)
    assert _put_all(wal, [(f"x/{i}", b"%d" % i) for i in range(10)]) == [True] * 10
    segments = [p.read_bytes() for p in wal.segment_paths()]
    wal.close()
    # lost names and contents, as a power loss before the checkpoint could do
    assert LocalStore(tmp_path, fsync=False).delete_many(f"x/{i}" for i in range(5)) == 5
    _segment(tmp_path, "0000000000000009.log", b"".join(segments))
    reopened = _open(tmp_path, open_logs)
    assert (reopened.recovery.records, reopened.recovery.rewritten) == (10, 5)
    assert all(stored(tmp_path, "x", str(i)) == b"%d" % i for i in range(10))


def test_a_busy_log_writes_into_zeros_written_ahead_which_recovery_reads_as_the_end(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """After a checkpoint the next segment starts as synced zeros; records go over them; a replay stops at them."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    assert _put_all(wal, [(f"z/{i}", b"%d" % i) for i in range(20)]) == [True] * 20
    wait_until((tmp_path / ".wal" / "next.spare").exists, timeout=10, what="zeros written ahead after a checkpoint")
    wait_until(lambda: not wal.segment_paths(), timeout=10, what="the first segment's checkpoint")
    assert _put_all(wal, [(f"y/{i}", b"%d" % i) for i in range(5)]) == [True] * 5
    (segment,) = wal.segment_paths()
    data = segment.read_bytes()
    records = b"".join(encode_record(f"y/{i}", b"%d" % i) for i in range(5))
    assert data.startswith(records) and len(data) >= 1 << 20 and not data[len(records) :].strip(b"\0")
    os.kill(wal.helper_pid, signal.SIGKILL)  # before the checkpoint: the segment stays for the replay
    wait_until(lambda: wal.failed is not None, timeout=10, what="the server to see the writer gone")
    wal.close()
    assert not (tmp_path / "y").exists()  # killed before its checkpoint: only the log holds them
    reopened = _open(tmp_path, open_logs)
    assert (reopened.recovery.records, reopened.recovery.rewritten, reopened.recovery.torn_bytes) == (5, 5, 0)
    assert all(stored(tmp_path, "y", str(i)) == b"%d" % i for i in range(5))
    assert not (tmp_path / ".wal" / "next.spare").exists()


def test_unmaterialized_record_stays_pending_and_in_the_log(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """If an object file cannot be created after the log sync, the write is still durable: 201, then 304."""
    (tmp_path / "blocked").write_bytes(b"a file where a directory should be")
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    assert _put_all(wal, [("blocked/k", b"v")]) == [True]
    assert _put_all(wal, [("blocked/k", b"w")]) == [False]
    _put_all(wal, [("other/k", b"v")])
    wait_until(lambda: wal.checkpoints >= 1, timeout=10, what="a checkpoint")
    assert wal.segment_paths()[0].read_bytes().startswith(encode_record("blocked/k", b"v"))
    wal.close()
    (tmp_path / "blocked").unlink()
    reopened = _open(tmp_path, open_logs)
    assert reopened.recovery.rewritten >= 1
    assert stored(tmp_path, "blocked", "k") == b"v"


def test_dead_helper_fails_writes_until_reopened(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """If the process that writes objects dies, writes get StorageUnavailable until the log is reopened."""
    wal = _open(tmp_path, open_logs)
    assert _put_all(wal, [("h/1", b"one")]) == [True]
    os.kill(wal.helper_pid, signal.SIGKILL)
    wait_until(lambda: wal.failed is not None, timeout=10, what="the server to see the writer gone")
    with pytest.raises(StorageUnavailable, match=r"the process writing objects to .* stopped: restart the service"):
        _put_all(wal, [("h/2", b"two")])
    wal.close()
    reopened = _open(tmp_path, open_logs)
    assert _put_all(reopened, [("h/1", b"again"), ("h/2", b"two")]) == [False, True]


def test_helper_dying_with_a_group_in_flight_keeps_it_in_the_log(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A group synced but not materialized when the helper dies is refused (503) and stored at the next open."""
    wal = _open(tmp_path, open_logs, failpoints=["exit-after-sync"])
    with pytest.raises(StorageUnavailable, match=r"the process writing objects to .* stopped"):
        _put_all(wal, [("f/1", b"one"), ("f/2", b"two")])
    wal.close()
    reopened = _open(tmp_path, open_logs)
    assert reopened.recovery.records == 2
    assert stored(tmp_path, "f", "1") == b"one"
    assert _put_all(reopened, [("f/2", b"again")]) == [False]


def test_second_writer_of_a_directory_is_refused(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """One log per directory: a second open fails with StoreLocked until the first closes; readers are not blocked."""
    first = _open(tmp_path, open_logs)
    with pytest.raises(StoreLocked, match=r"another tallystick server is writing to .*: stop it or give this one"):
        _open(tmp_path, open_logs)
    assert _put_all(first, [("r/k", b"v")]) == [True]
    assert LocalStore(tmp_path).get("r/k") == b"v"
    first.close()
    assert _put_all(_open(tmp_path, open_logs), [("r/k", b"w"), ("r/l", b"v")]) == [False, True]


def test_second_server_on_one_directory_fails_at_start_with_one_line(tmp_path: Path) -> None:
    """``tallystick serve`` on a directory another server writes to exits 1 with a one-line error."""

    def argv(port: str) -> list[str]:
        return [sys.executable, "-m", "tallystick.cli", "serve", "--host", "127.0.0.1", "--port", port]

    common = ["--app", "demo", "--data-dir", str(tmp_path), "--storage", str(tmp_path / "sessions")]
    first = subprocess.Popen(argv("0") + common, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert first.stdout is not None
        assert "listening on" in first.stdout.readline()
        second = subprocess.run(argv("0") + common, capture_output=True, text=True, timeout=60, check=False)
    finally:
        first.kill()
        first.wait(timeout=10)
        if first.stdout is not None:
            first.stdout.close()
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tallystick: error: another tallystick server is writing to ")


def test_sync_and_async_writes_share_the_log(tmp_path: Path) -> None:
    """With the log open, put_if_absent goes through it: create-only holds across both, objects are readable."""
    store = LocalStore(tmp_path)
    store.open_log()
    try:
        results: list[bool] = []

        async def mixed() -> list[bool]:
            threads = [asyncio.to_thread(store.put_if_absent, "m/k", b"sync") for _ in range(5)]
            tasks = [store.put_if_absent_async("m/k", b"async") for _ in range(5)]
            return await asyncio.gather(*threads, *tasks)

        results = asyncio.run(mixed())
        assert results.count(True) == 1
        assert store.get("m/k") in (b"sync", b"async")
        assert store.put_if_absent("m/new", b"x") is True
        assert store.get("m/new") == b"x"
    finally:
        store.close()
    assert not list((tmp_path / ".wal").glob("*.log"))


# --- found by review: each of these failed before its fix --------------------------------------


def test_a_put_that_cannot_be_encoded_leaves_the_answers_in_order(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A write refused before it is queued must not shift the writer's answers onto the wrong waiters."""
    wal = _open(tmp_path, open_logs)

    async def run() -> tuple[list[bool], BaseException | None]:
        first = asyncio.ensure_future(wal.put("o/a", b"a"))
        try:
            await wal.put("o/bad", "not bytes")  # type: ignore[arg-type]
            refused = None
        except TypeError as exc:
            refused = exc
        second = asyncio.ensure_future(wal.put("o/b", b"b"))
        return list(await asyncio.wait_for(asyncio.gather(first, second), 10)), refused

    created, refused = asyncio.run(run())
    assert created == [True, True] and refused is not None
    assert _put_all(wal, [("o/bad", b"now bytes")]) == [True]
    with pytest.raises(ValueError, match="too large for the log"):
        _put_all(wal, [("o/" + "k" * 70_000, b"v")])


def test_close_answers_a_blocking_writer_waiting_on_the_private_loop(tmp_path: Path) -> None:
    """close() while a put_blocking waits for its sync: the writer gets its real answer, not a timeout."""
    gate = tmp_path / "gate"
    gate.mkdir()
    wal = WriteAheadLog(tmp_path / "s", _tmp(tmp_path / "s"), failpoints=[f"sync-gate={gate}"])
    answer: list[Any] = []
    thread = threading.Thread(target=lambda: answer.append(wal.put_blocking("k/1", b"v", timeout=20)))
    thread.start()
    wait_until((gate / "waiting").exists, timeout=30, what="the writer's sync")
    threading.Timer(0.3, (gate / "go").touch).start()
    started = time.monotonic()
    wal.close()
    thread.join(timeout=30)
    assert answer == [True]
    assert time.monotonic() - started < 10
    assert stored(tmp_path, "s", "k", "1") == b"v"


def test_a_pack_deleted_whole_leaves_later_checkpoints_working(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """Per-file syncs: after a deletion removed a whole pack (retention, a user's data), checkpoints and close end."""
    wal = _open(tmp_path, open_logs, use_syncfs=False, checkpoint_seconds=0.2)
    assert _put_all(wal, [("d/1", b"one"), ("d/2", b"two")]) == [True, True]
    wait_until(lambda: wal.checkpoints >= 1 and not wal.segment_paths(), timeout=10, what="a checkpoint")
    assert LocalStore(tmp_path, fsync=False).delete_many(["d/1", "d/2"]) == 2  # its pack goes with them
    assert _put_all(wal, [("d/3", b"three")]) == [True]
    wait_until(lambda: wal.checkpoints >= 2 and not wal.segment_paths(), timeout=10, what="a second checkpoint")
    started = time.monotonic()
    wal.close()
    assert time.monotonic() - started < 5


def test_a_removed_directory_is_made_again(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """The writer remembers directories it made; one removed since (an old partition) is made again."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    assert _put_all(wal, [("p/day/1", b"one")]) == [True]
    wait_until(lambda: wal.checkpoints >= 1 and not wal.segment_paths(), timeout=10, what="a checkpoint")
    shutil.rmtree(tmp_path / "p" / "day")
    assert _put_all(wal, [("p/day/2", b"two"), ("p/day/1", b"again")]) == [True, True]
    assert stored(tmp_path, "p", "day", "2") == b"two"


def test_a_directory_removed_and_made_again_by_another_process_is_the_one_used(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """The writer keeps the names of directories it used; one removed and made again since (a tool writing
    without the log) is read anew: an object there is found ("already there"), a new one lands there."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05)
    assert _put_all(wal, [("p/day/1", b"one")]) == [True]
    wait_until(lambda: wal.checkpoints >= 1 and not wal.segment_paths(), timeout=10, what="a checkpoint")
    shutil.rmtree(tmp_path / "p" / "day")
    (tmp_path / "p" / "day").mkdir()
    (tmp_path / "p" / "day" / "2").write_bytes(b"written by another process")
    assert _put_all(wal, [("p/day/2", b"two"), ("p/day/3", b"three")]) == [False, True]
    assert stored(tmp_path, "p", "day", "2") == b"written by another process"
    assert stored(tmp_path, "p", "day", "3") == b"three"
    assert not wal.failed


def test_a_record_that_cannot_be_replayed_keeps_its_segment_and_the_store_opens(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Recovery writes what it can and keeps the segment of what it cannot, instead of refusing to open."""
    (tmp_path / "blocked").write_bytes(b"a file where a directory should be")
    _segment(tmp_path, "0000000000000003.log", encode_record("blocked/k", b"v") + encode_record("fine/k", b"w"))
    wal = _open(tmp_path, open_logs)
    assert (wal.recovery.records, wal.recovery.rewritten, wal.recovery.unwritable) == (2, 1, 1)
    assert stored(tmp_path, "fine", "k") == b"w"
    assert [p.name for p in wal.segment_paths()] == ["0000000000000003.log"]
    wal.close()
    (tmp_path / "blocked").unlink()
    reopened = _open(tmp_path, open_logs)
    assert reopened.recovery.unwritable == 0
    assert stored(tmp_path, "blocked", "k") == b"v"
    assert reopened.segment_paths() == []


def test_a_checkpoint_whose_sync_fails_keeps_its_segments_for_a_replay(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """A checkpoint whose sync of its packs fails keeps its segments instead of syncing again and deleting them
    (a second sync would not report the pages the first could not write): the objects read back, later
    checkpoints go on, and the next start replays the kept segment."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.05, failpoints=["checkpoint-sync-eio"])
    assert _put_all(wal, [("c/k", b"v")]) == [True]
    wait_until(lambda: wal.checkpoints >= 1, timeout=10, what="a checkpoint")
    kept = [p.name for p in wal.segment_paths()]
    assert len(kept) == 1
    assert stored(tmp_path, "c", "k") == b"v"
    assert _put_all(wal, [("c/j", b"w")]) == [True]
    wait_until(lambda: wal.checkpoints >= 2, timeout=10, what="a second checkpoint")
    assert [p.name for p in wal.segment_paths()] == kept  # the second one synced: its segment went
    wal.close()
    reopened = _open(tmp_path, open_logs)
    assert (reopened.recovery.records, reopened.recovery.rewritten) == (1, 0)
    assert reopened.segment_paths() == []
    assert (stored(tmp_path, "c", "k"), stored(tmp_path, "c", "j")) == (b"v", b"w")


def test_a_kept_segment_is_read_by_readers_of_the_reopened_store(
    tmp_path: Path, open_logs: list[WriteAheadLog]
) -> None:
    """Records recovery could not make into objects (their segment kept) were acknowledged by an earlier run:
    readers of the reopened store find them in the log at once, not only after the new writer's first sync."""
    (tmp_path / "blocked").write_bytes(b"a file where a directory should be")
    _segment(tmp_path, "0000000000000003.log", encode_record("blocked/k", b"v") + encode_record("fine/k", b"w"))
    wal = _open(tmp_path, open_logs)
    assert wal.recovery.unwritable == 1
    wait_until((tmp_path / ".wal" / "synced").exists, timeout=10, what="the writer process to start")
    wait_until(lambda: stored(tmp_path, "blocked", "k") == b"v", timeout=3, what="blocked/k read from the log")
    assert _put_all(wal, [("fine/j", b"x")]) == [True]
    assert stored(tmp_path, "blocked", "k") == b"v"


def test_segment_numbers_go_on_across_restarts(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """A reopened log numbers its segments after those of earlier runs, even ones checkpointed away: a reader
    keeps what it read of a segment by name and inode (which the filesystem reuses), so a name used again could
    show it an old run's keys at the new segment's offsets, and hide the new ones."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=3600)
    assert _put_all(wal, [("a/1", b"one")]) == [True]
    [first] = wal.segment_paths()
    reader = LocalStore(tmp_path, fsync=False)
    assert reader.get("a/1") == b"one"  # from the log
    wal.close()
    for _ in range(2):  # runs that write nothing
        wal = _open(tmp_path, open_logs, checkpoint_seconds=3600)
        wal.close()
    wal = _open(tmp_path, open_logs, checkpoint_seconds=3600)
    assert _put_all(wal, [("a/2", b"two")]) == [True]
    [second] = wal.segment_paths()
    assert int(second.name.partition(".")[0]) > int(first.name.partition(".")[0])
    assert reader.keys_in("a/") == ["a/1", "a/2"]
    assert reader.get("a/2") == b"two"


def _tmp(root: Path) -> Path:
    (root / ".tmp").mkdir(parents=True, exist_ok=True)
    return root / ".tmp"


def test_settle_replays_what_a_stopped_server_left_so_a_delete_is_final(tmp_path: Path) -> None:
    """settle() with no server running makes objects of the log's records and deletes the log: a deleted
    object does not come back at the next start, and no copy of it is left in .wal/."""
    root = tmp_path / "store"
    _segment(root, "0000000000000001.log", encode_record("s/k", b"secret") + encode_record("s/j", b"other"))
    store = LocalStore(root)
    store.settle()
    assert not list((root / ".wal").glob("*.log"))
    assert store.get("s/k") == b"secret"
    assert store.delete("s/k")
    recovery = store.open_log()  # what the next start of a server does
    try:
        assert recovery is not None and recovery.records == 0
        assert stored(root, "s", "k") is None
    finally:
        store.close()
    assert not any(b"secret" in p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_settle_waits_for_the_running_writer_to_checkpoint(tmp_path: Path, open_logs: list[WriteAheadLog]) -> None:
    """settle() while another writer holds the log waits until the segments it saw are checkpointed away."""
    wal = _open(tmp_path, open_logs, checkpoint_seconds=0.2)
    assert _put_all(wal, [(f"s/{i}", b"x") for i in range(5)]) == [True] * 5
    assert wal.segment_paths(), "the writes should be in a segment still"
    LocalStore(tmp_path).settle(timeout=20)
    assert wal.segment_paths() == []


def test_settle_gives_up_with_a_message_when_the_log_stays(tmp_path: Path) -> None:
    """A log held by a writer that never checkpoints makes settle() fail after its timeout, saying what to do."""
    import fcntl

    _segment(tmp_path, "0000000000000001.log", encode_record("s/k", b"v"))
    fd = os.open(tmp_path / ".wal" / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a (stuck) server holds the log
        with pytest.raises(StorageUnavailable, match="still holds 1 segment"):
            LocalStore(tmp_path).settle(timeout=0.3)
    finally:
        os.close(fd)
