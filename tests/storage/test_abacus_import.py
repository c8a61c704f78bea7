"""``tallystick import``: an Abacus bucket on a real S3 server (moto) into Tallystick's storage, once."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from batect_sessions import corpus
from tallystick.storage import Store, open_store
from tallystick.storage.abacus import Checkpoint, checkpoint_name, import_abacus
from tallystick.storage.base import StorageUnavailable
from tallystick.storage.layout import decode_session, parse_key
from tallystick.storage.local import LocalStore

RECEIVED = "2020-09-01T10:11:12.123456789Z"


def _abacus_object(tree: dict[str, Any]) -> tuple[str, bytes]:
    """The key and text Abacus stores: compact JSON with the time it received the session."""
    stored = dict(tree, ingestionTime=RECEIVED)
    key = f"v1/{tree['applicationId']}/{tree['applicationVersion']}/{tree['sessionId']}.json"
    return key, json.dumps(stored, separators=(",", ":")).encode()


def _seed(bucket: Store) -> list[dict[str, Any]]:
    """The corpus in Abacus's layout, plus five objects that must be skipped, each for its own reason."""
    sessions = corpus()
    for tree in sessions:
        assert bucket.put_if_absent(*_abacus_object(tree))
    other = dict(sessions[1], events=[{"type": "Image Built", "time": sessions[1]["sessionStartTime"]}])
    bad_key, bad = _abacus_object(other)
    bucket.put_if_absent(bad_key.replace("v1/", "v1/batect-invalid/", 1).replace("/batect/", "/"), bad)
    bucket.put_if_absent("v1/batect/0.80.0/not-json.json", b"{not json")
    bucket.put_if_absent("v1/README.txt", b"sessions below")
    moved_key, moved = _abacus_object(sessions[2])
    bucket.put_if_absent(moved_key.replace(sessions[2]["applicationVersion"], "9.9.9"), moved)
    bucket.put_if_absent("v1/batect/0.80.0/" + sessions[3]["sessionId"] + ".json", b"\xff\xfe")
    return sessions


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tallystick.cli", "import", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _stored(dest: Path) -> dict[str, dict[str, Any]]:
    store = LocalStore(dest, fsync=False)
    found = {}
    for info in store.list("sessions/"):
        assert parse_key(info.key) is not None
        found[info.key] = json.loads(gzip.decompress(store.get(info.key)))
        decode_session(store.get(info.key))
    return found


def test_import_moves_a_bucket_once_and_a_second_run_adds_nothing(
    s3_store_url: Callable[..., str], tmp_path: Path
) -> None:
    """Every valid session arrives as Abacus kept it; skips are counted by reason; re-runs add nothing."""
    source = s3_store_url()
    sessions = _seed(open_store(source))
    data = tmp_path / "data"
    first = _run_cli(source, "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    assert f"{len(sessions)} sessions imported, 0 already there, 5 skipped" in first.stdout
    for reason in (
        "not a valid session (events: pattern)",
        "not UTF-8 JSON",
        "not an Abacus session key",
        "key does not match",
    ):
        assert reason in first.stdout
    assert "read " in first.stderr  # progress
    stored = _stored(data / "sessions")
    assert len(stored) == len(sessions)
    by_id = {s["sessionId"]: s for s in stored.values()}
    for tree in sessions:
        kept = by_id[tree["sessionId"]]
        assert kept.pop("ingestionTime") == RECEIVED  # when Abacus received it, not when we imported it
        assert kept == tree  # nanosecond timestamps, offsets, stack traces: as Abacus kept them

    second = _run_cli(source, "--data-dir", str(data))
    assert second.returncode == 0, second.stderr
    assert "0 sessions imported, 0 already there, 0 skipped" in second.stdout
    assert "resumed after" in second.stdout
    again = _run_cli(source, "--data-dir", str(data), "--restart", "--quiet")
    assert again.returncode == 0, again.stderr
    assert f"0 sessions imported, {len(sessions)} already there, 5 skipped" in again.stdout
    assert again.stderr == ""
    assert _stored(data / "sessions").keys() == stored.keys()


def test_interrupted_import_resumes_after_its_checkpoint(s3_store_url: Callable[..., str], tmp_path: Path) -> None:
    """Killed mid-way (here: interrupted after the second checkpoint), the next run goes on from there."""
    source_url = s3_store_url()
    source = open_store(source_url)
    sessions = _seed(source)
    dest = LocalStore(tmp_path / "sessions", fsync=False)
    checkpoint = Checkpoint(tmp_path / checkpoint_name(source.url), source.url)
    calls = []

    def stop_on_second(stats: Any) -> None:
        calls.append(stats.done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_abacus(source, dest, checkpoint=checkpoint, progress=stop_on_second, checkpoint_every=3)
    done_before = len(list(dest.list("sessions/")))
    assert 0 < done_before <= len(sessions)  # the pool may have written keys past the checkpoint: harmless
    resumed = import_abacus(source, dest, checkpoint=checkpoint, checkpoint_every=3)
    assert resumed.resumed_after is not None
    assert resumed.imported + done_before == len(sessions)
    assert resumed.done < len(sessions) + 5
    assert len(list(dest.list("sessions/"))) == len(sessions)


def test_import_refuses_its_own_storage_as_source(tmp_path: Path) -> None:
    """Naming Tallystick's storage as the source is one error line, not a traceback."""
    data = tmp_path / "data"
    (data / "sessions").mkdir(parents=True)
    result = _run_cli(str(data / "sessions"), "--data-dir", str(data))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "tallystick: error: the source and --storage are the same store: import into Tallystick's own storage"
    ]


def test_import_output_to_a_closed_pipe_is_quiet(s3_store_url: Callable[..., str], tmp_path: Path) -> None:
    """`tallystick import ... | head -0` ends without a traceback."""
    source = s3_store_url()
    _seed(open_store(source))
    code = (
        "import sys; from tallystick.cli import main; sys.exit(main(['import', sys.argv[1], '--data-dir', sys.argv[2],"
        " '--quiet']))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, source, str(tmp_path / "data")], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0
    assert b"Traceback" not in err


class _Watched:
    """The S3 source, counting how many reads run at once; optionally failing the read of one key.

    The failure is injected (moto cannot be told to fail one object's read); every other call is
    the real S3 protocol server's answer."""

    def __init__(self, store: Store, fail: str | None = None) -> None:
        self.store, self.fail, self.url = store, fail, store.url
        self.running = self.most = 0
        self.lock = threading.Lock()

    def list(self, prefix: str, start_after: str | None = None) -> Any:
        return self.store.list(prefix, start_after=start_after)

    def get(self, key: str) -> bytes:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.01)  # a bucket's latency, so that reads overlap when they may
            if key == self.fail:
                raise StorageUnavailable("the bucket stopped answering")
            return self.store.get(key)
        finally:
            with self.lock:
                self.running -= 1


def test_import_reads_several_objects_at_once_and_counts_them_in_key_order(
    s3_store_url: Callable[..., str], tmp_path: Path
) -> None:
    """The pool reads up to `readers` objects at once; counts, examples and checkpoint equal a one-at-a-time run's."""
    source = open_store(s3_store_url())
    _seed(source)
    runs = {}
    for readers in (1, 4):
        watched = _Watched(source)
        dest = LocalStore(tmp_path / f"sessions-{readers}", fsync=False)
        checkpoint = Checkpoint(tmp_path / f"checkpoint-{readers}.json", source.url)
        stats = import_abacus(watched, dest, checkpoint=checkpoint, readers=readers)  # type: ignore[arg-type]
        runs[readers] = (watched.most, stats.summary(), stats.examples, stats.last_key, checkpoint.last_key())
    assert runs[1][0] == 1
    assert 1 < runs[4][0] <= 4
    assert runs[4][1:] == runs[1][1:]
    assert runs[4][3] == max(info.key for info in source.list("v1/"))


def test_a_failed_read_leaves_a_checkpoint_before_it_and_the_next_run_finishes(
    s3_store_url: Callable[..., str], tmp_path: Path
) -> None:
    """A read failing part-way ends the run with its error, a checkpoint short of that key; a re-run does the rest."""
    source = open_store(s3_store_url())
    sessions = _seed(source)
    keys = sorted(info.key for info in source.list("v1/"))
    failing = keys[len(keys) // 2]
    dest = LocalStore(tmp_path / "sessions", fsync=False)
    checkpoint = Checkpoint(tmp_path / "checkpoint.json", source.url)
    with pytest.raises(StorageUnavailable):
        import_abacus(_Watched(source, fail=failing), dest, checkpoint=checkpoint, readers=4)  # type: ignore[arg-type]
    saved = checkpoint.last_key()
    assert saved is not None and saved < failing  # saved on the way out, short of the failed key
    resumed = import_abacus(source, dest, checkpoint=checkpoint, readers=4)
    assert resumed.resumed_after == saved
    assert len(list(dest.list("sessions/"))) == len(sessions)


def test_readers_option_is_bounded_and_defaults_to_the_pool_size(tmp_path: Path) -> None:
    """`--readers 0` is one error line; the CLI's default is the module's."""
    from tallystick.cli import abacus_import
    from tallystick.storage import abacus

    assert abacus_import.READERS == abacus.READERS
    result = _run_cli(str(tmp_path / "bucket"), "--data-dir", str(tmp_path / "data"), "--readers", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["tallystick: error: --readers must be between 1 and 64"]
