"""``tallystick import`` of a store Tallystick wrote: an install's directory moves to a bucket (moto S3)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sessions import body, session
from tallystick.privacy.tombstones import Tombstones
from tallystick.schema import parse_session
from tallystick.storage import open_store
from tallystick.storage._wal import WriteAheadLog
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader


def _import(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tallystick.cli", "import", "--quiet", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def _install(root: Path) -> dict[str, bytes]:
    """A directory as a killed `tallystick serve` leaves it: six sessions acknowledged through the
    write-ahead log, three of whose objects never reached the disk (only the log holds them), and a
    deleted user's tombstone. Returns every object the store holds once its log is replayed."""
    (root / ".tmp").mkdir(parents=True)
    wal = WriteAheadLog(root, root / ".tmp", checkpoint_seconds=3600)
    objects = {}
    for _ in range(6):
        parsed = parse_session(body(session()))
        objects[session_key(parsed)] = encode_session(parsed)

    async def put_all() -> list[bool]:
        return await asyncio.gather(*(wal.put(k, v) for k, v in objects.items()))

    assert asyncio.run(put_all()) == [True] * 6
    segments = b"".join(p.read_bytes() for p in wal.segment_paths())
    wal.close()
    assert LocalStore(root, fsync=False).delete_many(sorted(objects)[:3]) == 3
    (root / ".wal" / "0000000000000009.log").write_bytes(segments)
    when = datetime(2026, 5, 2, tzinfo=UTC)
    tombstone = Tombstones.key("0b7b8ad4-0d1c-4f4e-9d36-2a6b1f0d2c11", when)
    objects[tombstone] = Tombstones.body("0b7b8ad4-0d1c-4f4e-9d36-2a6b1f0d2c11", when)
    assert LocalStore(root).put_if_absent(tombstone, objects[tombstone])
    return objects


def test_an_install_moves_from_its_directory_to_a_bucket(s3_store_url: Callable[..., str], tmp_path: Path) -> None:
    """Every session, those only in the write-ahead log included, and the tombstone arrive byte for byte;
    a second run copies nothing again; the bucket loads into a new warehouse."""
    source = tmp_path / "old" / "sessions"
    objects = _install(source)
    bucket = s3_store_url("sessions")
    result = _import(str(source), "--storage", bucket, "--data-dir", str(tmp_path / "new"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "6 sessions imported, 0 already there, 0 skipped; "
        "1 privacy record (tombstones, erasure requests, rejection counts) copied"
    )
    assert "to load them into the warehouse" in lines[1]
    dest = open_store(bucket)
    try:
        assert {info.key: dest.get(info.key) for info in dest.list("")} == objects
        warehouse = open_warehouse(str(tmp_path / "new" / "warehouse.duckdb"))
        try:
            assert Loader(dest, warehouse, workers=0).run().loaded == 6
        finally:
            warehouse.close()
    finally:
        dest.close()
    again = _import(str(source), "--storage", bucket, "--data-dir", str(tmp_path / "new"), "--restart")
    assert again.stdout.splitlines()[0].startswith("0 sessions imported, 6 already there, 0 skipped")


def test_a_data_directory_given_for_its_sessions_is_named(tmp_path: Path) -> None:
    """The data directory instead of its sessions directory, or a directory of neither layout, is one line."""
    data = tmp_path / "data"
    _install(data / "sessions")
    result = _import(str(data), "--storage", str(tmp_path / "new"), "--data-dir", str(tmp_path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"tallystick: error: {data} looks like a Tallystick data directory: give its sessions directory, "
        f"{data}/sessions\n"
    )
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"\xff\xd8")
    other = _import(str(tmp_path / "photos"), "--storage", str(tmp_path / "new"), "--data-dir", str(tmp_path))
    assert other.returncode == 1
    assert other.stderr.startswith(f"tallystick: error: nothing to import from {tmp_path / 'photos'}: it holds")


def test_a_second_run_copies_privacy_records_written_since_the_first(tmp_path: Path) -> None:
    """A tombstone the source gained after a complete run is copied by the next (its checkpoint is past privacy/)."""
    source = LocalStore(tmp_path / "old", fsync=False)
    parsed = parse_session(body(session()))
    assert source.put_if_absent(session_key(parsed), encode_session(parsed))
    common = ["--storage", str(tmp_path / "new"), "--data-dir", str(tmp_path)]
    assert _import(str(tmp_path / "old"), *common).returncode == 0
    when = datetime(2026, 5, 2, tzinfo=UTC)
    user_id = "0b7b8ad4-0d1c-4f4e-9d36-2a6b1f0d2c11"
    assert source.put_if_absent(Tombstones.key(user_id, when), Tombstones.body(user_id, when))
    again = _import(str(tmp_path / "old"), *common)
    assert again.returncode == 0, again.stderr
    assert LocalStore(tmp_path / "new").get(Tombstones.key(user_id, when)) == Tombstones.body(user_id, when)
