"""The storage contract, run on every backend against a real server (``store_url`` is parametrized)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from sessions import body, session
from tallystick.schema import Session
from tallystick.storage import ObjectNotFound, Store, open_store
from tallystick.storage.layout import PREFIX, decode_session, encode_session, parse_key, session_key


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.close()


def _session(value: dict[str, object]) -> Session:
    return msgspec.json.decode(body(value), type=Session)


def _keys(store: Store, prefix: str = "", start_after: str | None = None) -> list[str]:
    return [info.key for info in store.list(prefix, start_after=start_after)]


def test_put_if_absent_creates_once_and_keeps_the_first(store: Store) -> None:
    """The first write of a key creates it; a second write reports False and changes nothing."""
    assert store.put_if_absent("a/b.json.gz", b"first") is True
    assert store.put_if_absent("a/b.json.gz", b"second") is False
    assert store.get("a/b.json.gz") == b"first"


def test_async_put_if_absent_is_create_only(store: Store) -> None:
    """The async write has the same create-only answer as the sync one."""

    async def both() -> tuple[bool, bool]:
        return await store.put_if_absent_async("k", b"1"), await store.put_if_absent_async("k", b"2")

    assert asyncio.run(both()) == (True, False)
    assert store.get("k") == b"1"


def test_get_of_a_missing_key_raises_object_not_found(store: Store) -> None:
    """Reading a key nobody wrote raises ObjectNotFound naming the key."""
    with pytest.raises(ObjectNotFound, match="nothing/here"):
        store.get("nothing/here")


def test_delete_reports_whether_the_object_existed(store: Store) -> None:
    """delete answers True once, then False; the key can be created again afterwards."""
    store.put_if_absent("d/x", b"1")
    assert store.delete("d/x") is True
    assert store.delete("d/x") is False
    with pytest.raises(ObjectNotFound):
        store.get("d/x")
    assert store.put_if_absent("d/x", b"2") is True


def test_empty_and_binary_objects_round_trip(store: Store) -> None:
    """Objects are bytes exactly as written, including empty ones."""
    data = bytes(range(256)) * 64
    store.put_if_absent("bin/all-bytes", data)
    store.put_if_absent("bin/empty", b"")
    assert store.get("bin/all-bytes") == data
    assert store.get("bin/empty") == b""
    assert {(i.key, i.size) for i in store.list("bin/")} == {("bin/all-bytes", len(data)), ("bin/empty", 0)}


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", ".hidden/x", "a\\b"], ids=repr)
def test_unsafe_keys_are_rejected(store: Store, key: str) -> None:
    """Keys that are empty, absolute, escaping, ambiguous or reserved raise ValueError."""
    with pytest.raises(ValueError, match="invalid object key"):
        store.put_if_absent(key, b"x")


def test_list_is_in_key_order_and_prefix_is_a_string_prefix(store: Store) -> None:
    """Listing sorts like strings ("a-b" < "a/x" < "a0") and a prefix may end mid-segment."""
    keys = ["a0", "a/x", "a-b", "a.c/y", "app=foo/1", "app=fox/2", "app=bar/3", "b/c/d/e"]
    for key in keys:
        store.put_if_absent(key, key.encode())
    assert _keys(store) == sorted(keys)
    assert _keys(store, "app=fo") == ["app=foo/1", "app=fox/2"]
    assert _keys(store, "a/") == ["a/x"]
    assert _keys(store, "b/c/") == ["b/c/d/e"]
    assert _keys(store, "zzz") == []


def test_list_start_after_returns_only_later_keys(store: Store) -> None:
    """start_after lists what is new since a remembered key, within the prefix."""
    for i in range(6):
        store.put_if_absent(f"p/{i:02d}", b"x")
    store.put_if_absent("q/00", b"x")
    assert _keys(store, "p/", start_after="p/02") == ["p/03", "p/04", "p/05"]
    assert _keys(store, "p/", start_after="p/05") == []


def test_list_dirs_gives_the_next_segments(store: Store) -> None:
    """list_dirs names each sub-directory once, sorted, without objects or bookkeeping."""
    for key in ["s/app=b/date=1/x", "s/app=a/date=2/y", "s/app=a/date=1/z", "s/top"]:
        store.put_if_absent(key, b"x")
    store.check()
    assert store.list_dirs("s/") == ["app=a", "app=b"]
    assert store.list_dirs("s/app=a/") == ["date=1", "date=2"]
    assert store.list_dirs("") == ["s"]
    assert store.list_dirs("missing/") == []


def test_keys_in_lists_a_partition_without_deeper_keys(store: Store) -> None:
    """keys_in gives the keys directly in a partition, sorted; get_listed reads each as get does."""
    for key in ["s/p/b.json.gz", "s/p/a.json.gz", "s/p/deeper/c", "s/q/d"]:
        store.put_if_absent(key, key.encode())
    assert store.keys_in("s/p/") == ["s/p/a.json.gz", "s/p/b.json.gz"]
    assert store.keys_in("s/none/") == []
    assert [store.get_listed(k) for k in store.keys_in("s/p/")] == [b"s/p/a.json.gz", b"s/p/b.json.gz"]
    store.delete("s/p/a.json.gz")
    with pytest.raises(ObjectNotFound):
        store.get_listed("s/p/a.json.gz")


def test_check_passes_and_leaves_nothing_visible(store: Store) -> None:
    """check succeeds on a working store and its probe never shows in listings."""
    store.check()
    store.check()
    assert _keys(store) == []


def test_32_concurrent_writers_of_one_key_exactly_one_wins(store: Store) -> None:
    """32 threads race to create one key: exactly one gets True and its bytes are what is stored."""
    writers = 32
    barrier = threading.Barrier(writers)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = store.put_if_absent("race/one-key", f"writer-{i}".encode() * 100)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    winners = [i for i, created in results.items() if created]
    assert len(results) == writers
    assert len(winners) == 1
    assert store.get("race/one-key") == f"writer-{winners[0]}".encode() * 100


def test_32_concurrent_async_writers_of_one_key_exactly_one_wins(store: Store) -> None:
    """The same race through put_if_absent_async, as the ingest service writes."""

    async def race() -> list[bool]:
        return await asyncio.gather(*(store.put_if_absent_async("race/async", f"{i}".encode()) for i in range(32)))

    results = asyncio.run(race())
    assert results.count(True) == 1
    assert store.get("race/async") == str(results.index(True)).encode()


def test_listing_sees_every_object_exactly_once(store: Store) -> None:
    """1100 sessions over 11 partitions (more than one listing page): each is listed once, in order."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    written: list[str] = []
    values = []
    for i in range(1100):
        day = start + timedelta(days=i % 4)
        values.append(
            session(applicationId=f"app{i % 3}", sessionStartTime=day.isoformat(), sessionEndTime=day.isoformat())
        )
    sessions = [_session(v) for v in values]

    async def write_all() -> None:
        limit = asyncio.Semaphore(32)

        async def one(s: Session) -> None:
            async with limit:
                key = session_key(s)
                assert await store.put_if_absent_async(key, encode_session(s))
                written.append(key)

        await asyncio.gather(*(one(s) for s in sessions))

    asyncio.run(write_all())
    listed = _keys(store, PREFIX)
    assert listed == sorted(written)
    by_partition = [
        key
        for app in store.list_dirs(PREFIX)
        for day in store.list_dirs(f"{PREFIX}{app}/")
        for key in _keys(store, f"{PREFIX}{app}/{day}/")
    ]
    assert by_partition == listed
    assert len(set(listed)) == 1100


def test_stored_session_round_trips_through_the_layout(store: Store) -> None:
    """A session written under its layout key reads back equal, and its key parses back."""
    s = _session(session())
    key = session_key(s)
    assert store.put_if_absent(key, encode_session(s))
    assert decode_session(store.get(key)) == s
    assert parse_key(key) == (s.application_id, s.session_start_time.astimezone(UTC).date(), s.session_id)
    assert uuid.UUID(s.session_id)
