"""Group commit: concurrent durable writes share syncs, stay create-only, and fail safe."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from tallystick.storage import StorageUnavailable
from tallystick.storage._groupcommit import GroupCommit
from tallystick.storage.local import LocalStore


def _parents(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)


async def _put_many(commits: GroupCommit, root: Path, count: int) -> list[bool]:
    tmp = root / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return await asyncio.gather(
        *(commits.put(root / "p" / f"{i}.json", tmp, f"object {i}".encode(), _parents) for i in range(count))
    )


@pytest.mark.parametrize("use_syncfs", [pytest.param(True, id="syncfs"), pytest.param(False, id="fsync-each")])
def test_concurrent_writers_share_syncs(tmp_path: Path, use_syncfs: bool) -> None:
    """200 concurrent writes all land, complete, with far fewer syncs than writes and no temp file left."""
    commits = GroupCommit(tmp_path, use_syncfs=use_syncfs)
    try:
        created = asyncio.run(_put_many(commits, tmp_path, 200))
    finally:
        commits.close()
    assert created == [True] * 200
    assert all((tmp_path / "p" / f"{i}.json").read_bytes() == f"object {i}".encode() for i in range(200))
    assert commits.woken == 2 * 200  # each write waited twice: content, then name
    assert commits.syncs < 200
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_one_winner_per_key_and_the_loser_waits_for_a_sync(tmp_path: Path) -> None:
    """Concurrent writers of one key: exactly one creates it; a later writer gets False after a sync."""
    commits = GroupCommit(tmp_path)
    (tmp_path / ".tmp").mkdir()
    path = tmp_path / "k"

    async def race() -> list[bool]:
        return await asyncio.gather(*(commits.put(path, tmp_path / ".tmp", b"v%d" % i, _parents) for i in range(10)))

    try:
        assert sorted(asyncio.run(race())) == [False] * 9 + [True]
        syncs = commits.syncs
        assert asyncio.run(commits.put(path, tmp_path / ".tmp", b"again", _parents)) is False
        assert commits.syncs > syncs
    finally:
        commits.close()
    assert path.read_bytes().startswith(b"v")


class FailingSync(GroupCommit):
    def _sync(self, paths: set[Path]) -> None:
        raise OSError(errno.EIO, "I/O error")


def test_failed_sync_links_nothing(tmp_path: Path) -> None:
    """When a sync fails, writers get StorageUnavailable, no object name appears, and temp files are removed."""
    commits = FailingSync(tmp_path)
    (tmp_path / ".tmp").mkdir()
    try:
        with pytest.raises(StorageUnavailable, match=r"cannot make writes to .* durable: I/O error"):
            asyncio.run(commits.put(tmp_path / "k", tmp_path / ".tmp", b"v", _parents))
    finally:
        commits.close()
    assert not (tmp_path / "k").exists()
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_closed_committer_refuses_writes(tmp_path: Path) -> None:
    """After close, a write is refused with a message saying to restart."""
    commits = GroupCommit(tmp_path)
    commits.close()
    with pytest.raises(StorageUnavailable, match="closed: restart the service"):
        asyncio.run(commits.durable(()))


def test_local_store_uses_group_commit_for_async_writes(tmp_path: Path) -> None:
    """LocalStore.put_if_absent_async writes durable, readable, create-only objects through group commit."""
    store = LocalStore(tmp_path / "s")

    async def write() -> list[bool]:
        return await asyncio.gather(*(store.put_if_absent_async(f"a/{i % 50}", b"%d" % (i % 50)) for i in range(100)))

    try:
        created = asyncio.run(write())
    finally:
        store.close()
    assert created.count(True) == 50
    assert sorted(info.key for info in store.list("a/")) == sorted(f"a/{i}" for i in range(50))
    assert store.get("a/7") == b"7"
