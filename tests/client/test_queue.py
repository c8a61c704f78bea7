"""The on-disk queue: atomic files, caps, expiry, corrupt files, drop counts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tallystick.client._queue import Queue, file_name


def make(
    data_dir: Path, max_files: int = 100, max_bytes: int = 10**6, now: float = 2_000_000_000.0
) -> tuple[Queue, dict[str, int]]:
    counts: dict[str, int] = {}

    def count(reason: str, n: int) -> None:
        counts[reason] = counts.get(reason, 0) + n

    queue = Queue(
        str(data_dir),
        max_files=max_files,
        max_bytes=max_bytes,
        max_age_seconds=30 * 86400,
        clock=lambda: now,
        count=count,
    )
    return queue, counts


def session_body(session_id: str, size: int = 0) -> bytes:
    return json.dumps({"sessionId": session_id, "pad": "x" * size}).encode()


def test_put_writes_one_private_file_and_no_temp_files(tmp_path: Path) -> None:
    """A queued session is one 0600 JSON file; no temp file is left behind."""
    queue, _ = make(tmp_path)
    assert queue.put(file_name(1.0, "a"), session_body("a"))
    names = os.listdir(queue.directory)
    assert names == [file_name(1.0, "a")]
    assert os.stat(os.path.join(queue.directory, names[0])).st_mode & 0o777 == 0o600


def test_count_cap_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    """Past max_files the oldest sessions go first, each counted as queueFull."""
    queue, counts = make(tmp_path, max_files=3)
    for i in range(5):
        queue.put(file_name(1000.0 + i, f"s{i}"), session_body(f"s{i}"))
    assert [e.name for e in queue.entries()] == [file_name(1000.0 + i, f"s{i}") for i in (2, 3, 4)]
    assert counts == {"queueFull": 2}


def test_byte_cap_drops_the_oldest_and_refuses_a_giant(tmp_path: Path) -> None:
    """Past max_bytes the oldest go; a session bigger than the cap itself is refused and counted."""
    queue, counts = make(tmp_path, max_bytes=3000)
    for i in range(4):
        queue.put(file_name(1000.0 + i, f"s{i}"), session_body(f"s{i}", 900))
    assert queue.depth()[1] <= 3000
    assert not queue.put(file_name(2000.0, "big"), session_body("big", 5000))
    assert counts == {"queueFull": 1, "tooBig": 1}


def test_sweep_deletes_expired_sessions_and_stale_temp_files(tmp_path: Path) -> None:
    """Sessions older than 30 days and temp files older than an hour are deleted; fresh ones stay."""
    now = 2_000_000_000.0
    queue, counts = make(tmp_path, now=now)
    queue.put(file_name(now - 31 * 86400, "old"), session_body("old"))
    queue.put(file_name(now - 86400, "new"), session_body("new"))
    stale = Path(queue.directory) / ".tmp-1-abc-x.json"
    stale.write_text("{")
    os.utime(stale, (now - 7200, now - 7200))
    fresh = Path(queue.directory) / ".tmp-2-def-y.json"
    fresh.write_text("{")
    os.utime(fresh, (now, now))
    queue.sweep()
    assert sorted(os.listdir(queue.directory)) == sorted([fresh.name, file_name(now - 86400, "new")])
    assert counts == {"expired": 1}


def test_corrupt_and_half_written_files_are_deleted_when_read(tmp_path: Path) -> None:
    """Unparseable files, non-objects and objects without a session ID are deleted and counted."""
    queue, counts = make(tmp_path)
    os.makedirs(queue.directory)
    for i, content in enumerate([b'{"sessionId": "abc", "use', b"\x00\xff", b"[1, 2]", b'{"id": 1}', b""]):
        (Path(queue.directory) / file_name(100.0 + i, f"c{i}")).write_bytes(content)
    assert [queue.load(e, 10**6) for e in queue.entries()] == [None] * 5
    assert queue.entries() == []
    assert counts == {"corrupt": 5}


def test_strangers_in_the_queue_directory_are_ignored(tmp_path: Path) -> None:
    """Files that are not sessions (no .json suffix, dot files) are not listed."""
    queue, _ = make(tmp_path)
    os.makedirs(queue.directory)
    for name in ("notes.txt", ".hidden.json", ".tmp-1-x-y.json"):
        (Path(queue.directory) / name).write_text("{}")
    assert queue.entries() == []


def test_drops_and_the_schedule_survive_between_runs(tmp_path: Path) -> None:
    """Unreported drop counts and the upload schedule are kept on disk; added counts merge; garbage reads as nothing."""
    from tallystick.client import _queue

    queue, _ = make(tmp_path)
    queue.write_drops({"queueFull": 2})
    queue.add_drops({"queueFull": 1, "corrupt": 1})
    _queue.write_state(str(tmp_path), _queue.UploadState(123.5, 2, "timeout"))
    again, _ = make(tmp_path)
    assert again.read_drops() == {"queueFull": 3, "corrupt": 1}
    state = _queue.read_state(str(tmp_path))
    assert (state.next, state.failures, state.outcome) == (123.5, 2, "timeout")
    Path(queue.drops_path).write_text("[oops")
    Path(_queue.state_path(str(tmp_path))).write_text("soon")
    assert again.read_drops() == {}
    assert _queue.read_state(str(tmp_path)).next == 0.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3000)), min_size=1, max_size=25),
    st.integers(1, 8),
    st.integers(500, 20_000),
)
def test_caps_always_hold_and_the_newest_is_kept(
    tmp_path_factory, puts: list[tuple[int, int]], max_files: int, max_bytes: int
) -> None:  # type: ignore[no-untyped-def]
    """Property: after any sequence of writes the queue is within both caps and holds the last one written."""
    queue, counts = make(tmp_path_factory.mktemp("q"), max_files=max_files, max_bytes=max_bytes)
    written = 0
    for i, (_when, size) in enumerate(puts):
        name = file_name(float(10**6 + i), f"s{i}")  # later writes are newer
        if queue.put(name, session_body(f"s{i}", size)):
            written += 1
            assert queue.entries()[-1].name == name
        count, total = queue.depth()
        assert count <= max_files and total <= max_bytes
    assert written - counts.get("queueFull", 0) == queue.depth()[0]
