"""Consent: the full matrix of stored choice × override × DO_NOT_TRACK × TTY × CI, and its side effects."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tallystick.client._client import Client
from tallystick.client._config import Config
from tallystick.client._consent import decide, idle
from tallystick.client._queue import file_name
from tallystick.client._session import new_uuid4

STORED = ["unset", "allowed", "disabled"]
OVERRIDES = [None, "0", "1", "local"]
DNT = [None, "1"]
TTY = [True, False]
CI = [True, False]


def documented_outcome(
    stored: str, override: str | None, dnt: str | None, tty: bool, ci: bool
) -> tuple[bool, bool, bool]:
    """The documented rules, restated independently: (records, sends, shows notice)."""
    if dnt:
        return False, False, False
    if override is not None:
        return override in {"1", "local"}, override == "1", False
    return stored == "allowed", stored == "allowed", stored == "unset" and tty and not ci


def _queued_file(queue_dir: Path) -> str:
    """Put a session from an earlier run in the queue; return its ID."""
    queue_dir.mkdir(parents=True, exist_ok=True)
    session_id = new_uuid4()
    tree = {
        "sessionId": session_id,
        "userId": new_uuid4(),
        "sessionStartTime": "2030-01-01T00:00:00Z",
        "sessionEndTime": "2030-01-01T00:00:01Z",
        "applicationId": "mytool",
        "applicationVersion": "1.0.0",
    }
    (queue_dir / file_name(1_900_000_000.0, session_id)).write_text(json.dumps(tree))
    return session_id


MATRIX = list(itertools.product(STORED, OVERRIDES, DNT, TTY, CI))


def _case_id(case: tuple[str, str | None, str | None, bool, bool]) -> str:
    stored, override, dnt, tty, ci = case
    return f"{stored}-env{override or 'None'}-dnt{dnt or 'None'}-{'tty' if tty else 'notty'}-{'ci' if ci else 'noci'}"


@pytest.mark.parametrize("case", MATRIX, ids=[_case_id(c) for c in MATRIX])
def test_consent_matrix(
    case: tuple[str, str | None, str | None, bool, bool], tmp_path: Path, shared_ingest, stream
) -> None:  # type: ignore[no-untyped-def]
    """Each combination records, sends and shows the notice exactly as documented."""
    stored, override, dnt, tty, ci = case
    records, sends, notice = documented_outcome(*case)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if stored != "unset":
        (data_dir / "consent").write_text(stored)
    earlier = _queued_file(data_dir / "queue")
    environ = {"HOME": str(tmp_path)}
    if override is not None:
        environ["MYTOOL_TELEMETRY"] = override
    if dnt is not None:
        environ["DO_NOT_TRACK"] = dnt
    if ci:
        environ["CI"] = "true"
    stderr = stream(tty)
    config = Config(
        "mytool",
        "1.0.0",
        shared_ingest.url,
        data_dir=data_dir,
        environ=environ,
        stderr=stderr,
        install_hooks=False,
        exit_timeout=10,
        ci_exit_timeout=10,
        upload_interval=0,
    )
    client = Client(config)
    client.start()
    client.finish()

    queued = {json.loads(p.read_text())["sessionId"] for p in (data_dir / "queue").glob("*.json")}
    received = set(shared_ingest.counts())
    new = queued - {earlier} | (received - {earlier} if sends else set())
    assert bool(new) == records, "recorded"
    assert (earlier in received) == sends, "sent"
    if sends and ci:
        assert new <= received, "on CI the new session is sent at exit"
    assert ("MYTOOL_TELEMETRY=1" in stderr.text) == notice, "notice"
    if not notice:
        assert stderr.text == ""


@pytest.mark.parametrize("value", ["0", "false", "", "no"], ids=["zero", "false", "empty", "no"])
def test_do_not_track_set_to_false_does_not_count(value: str) -> None:
    """DO_NOT_TRACK=0 (or false/empty/no) leaves the decision to the other rules."""
    assert decide("allowed", {"DO_NOT_TRACK": value}, "MYTOOL", stderr_tty=False, ci=False).record


@pytest.mark.parametrize("value", ["maybe", "disable", "2"], ids=["maybe", "disable", "two"])
def test_unknown_override_values_mean_off(value: str) -> None:
    """An override the client does not understand turns telemetry off, never on."""
    assert not decide("allowed", {"MYTOOL_TELEMETRY": value}, "MYTOOL", stderr_tty=False, ci=False).record


def _client(tmp_path: Path, stderr: object, **options: object) -> Client:
    config = Config(
        "mytool",
        "1.0.0",
        "http://127.0.0.1:9",
        data_dir=tmp_path / "data",
        environ={"HOME": str(tmp_path)},
        stderr=stderr,
        install_hooks=False,
        **options,  # type: ignore[arg-type]
    )
    client = Client(config)
    client.start()
    return client


def test_notice_is_printed_once(tmp_path: Path, stream: Callable[[bool], object]) -> None:
    """The first-run notice appears on the first run only, and nothing is recorded."""
    first, second = stream(True), stream(True)
    client = _client(tmp_path, first)
    assert client.session is None
    client.finish()
    _client(tmp_path, second).finish()
    assert "never" in first.text.lower() and "DO_NOT_TRACK" in first.text  # type: ignore[attr-defined]
    assert second.text == ""  # type: ignore[attr-defined]
    assert not (tmp_path / "data" / "queue").exists()


def test_disabling_deletes_the_queue_and_rotates_the_user_id(tmp_path: Path, stream: Callable[[bool], object]) -> None:
    """set_consent(False) deletes queued and rejected sessions and the user ID; the run records nothing."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "consent").write_text("allowed")
    first = _client(tmp_path, stream(False))
    user_id = first.session.user_id  # type: ignore[union-attr]
    first.finish()
    assert len(list((tmp_path / "data" / "queue").glob("*.json"))) == 1
    second = _client(tmp_path, stream(False))
    second.set_consent(False)
    second.finish()
    assert list((tmp_path / "data" / "queue").glob("*")) == []
    assert not (tmp_path / "data" / "user-id").exists()
    assert (tmp_path / "data" / "consent").read_text() == "disabled"
    second.set_consent(True)
    third = _client(tmp_path, stream(False))
    assert third.session is not None and third.session.user_id != user_id


def test_allowing_mid_run_starts_recording(tmp_path: Path, stream: Callable[[bool], object]) -> None:
    """set_consent(True) in a run that started without consent records from then on."""
    client = _client(tmp_path, stream(False))
    assert client.session is None
    client.set_consent(True)
    assert client.session is not None
    client.finish()
    assert len(list((tmp_path / "data" / "queue").glob("*.json"))) == 1


def test_local_only_keeps_sessions_and_never_sends(tmp_path: Path, stream: Callable[[bool], object]) -> None:
    """Config(local_only=True) queues sessions and starts no uploader."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "consent").write_text("allowed")
    for _ in range(2):
        client = _client(tmp_path, stream(False), local_only=True)
        assert client.uploader is None
        client.finish()
    assert len(list((tmp_path / "data" / "queue").glob("*.json"))) == 2


def test_debug_prints_the_session_instead_of_queueing(tmp_path: Path, stream: Callable[[bool], object]) -> None:
    """With MYTOOL_TELEMETRY_DEBUG=1 the session goes to stderr, not to the queue or the network."""
    err = stream(False)
    config = Config(
        "mytool",
        "1.0.0",
        "http://127.0.0.1:9",
        data_dir=tmp_path / "data",
        stderr=err,
        install_hooks=False,
        environ={"MYTOOL_TELEMETRY": "1", "MYTOOL_TELEMETRY_DEBUG": "1"},
    )
    client = Client(config)
    client.start()
    client.finish()
    assert '"applicationId": "mytool"' in err.text  # type: ignore[attr-defined]
    assert not (tmp_path / "data" / "queue").exists() or not list((tmp_path / "data" / "queue").iterdir())
    assert os.path.exists(tmp_path / "data" / "user-id")


@pytest.mark.parametrize(
    ("stored", "environ"),
    [
        ("allowed", {"DO_NOT_TRACK": "1"}),
        ("allowed", {"MYTOOL_TELEMETRY": "0"}),
        ("allowed", {"MYTOOL_TELEMETRY": "local"}),
        ("disabled", {}),
        ("unset", {}),
        ("allowed", {"MYTOOL_TELEMETRY_DEBUG": "1"}),
    ],
    ids=["do-not-track", "env-off", "local-only", "stored-disabled", "unset", "debug"],
)
def test_expired_sessions_go_at_start_whatever_the_consent(
    tmp_path: Path, stored: str, environ: dict[str, str]
) -> None:
    """Runs that never upload still delete sessions past 30 days (by the time in their name, or mtime)."""
    now = 2_000_000_000.0
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    if stored != "unset":
        (tmp_path / "consent").write_text(stored)
    old = queue_dir / file_name(now - 31 * 86400, "old")
    fresh = queue_dir / file_name(now - 86400, "fresh")
    odd_old = queue_dir / "no-time-in-this-name.json"
    for path in (old, fresh, odd_old):
        path.write_text("not even JSON: the sweep does not read files")
    os.utime(odd_old, (now - 40 * 86400, now - 40 * 86400))
    config = Config(
        "mytool",
        "1.0.0",
        "http://127.0.0.1:9",
        data_dir=tmp_path,
        environ=environ,
        clock=lambda: now,
        install_hooks=False,
    )
    client = Client(config)
    client.start()
    assert sorted(p.name for p in queue_dir.iterdir()) == [fresh.name]
    assert client.counts.get("expired") == 2
    assert client.uploader is None


IDLE_MATRIX = list(itertools.product(STORED, OVERRIDES, DNT, TTY, CI, [False, True]))


@pytest.mark.parametrize("case", IDLE_MATRIX, ids=[_case_id(c[:5]) + ("-erasure" if c[5] else "") for c in IDLE_MATRIX])
def test_idle_is_said_only_where_the_full_start_does_nothing(
    case: tuple[str, str | None, str | None, bool, bool, bool], tmp_path: Path, stream
) -> None:  # type: ignore[no-untyped-def]
    """``idle`` (configure's cheap path) is True only where a full start records, prints and sends nothing."""
    stored, override, dnt, tty, ci, erasure = case
    if stored != "unset":
        (tmp_path / "consent").write_text(stored)
    if erasure:
        (tmp_path / "erasures").mkdir()
        (tmp_path / "erasures" / f"erasure-0000000000001-{new_uuid4()}.json").write_text("{}")
    environ = {"HOME": str(tmp_path)}
    if override is not None:
        environ["MYTOOL_TELEMETRY"] = override
    if dnt is not None:
        environ["DO_NOT_TRACK"] = dnt
    if ci:
        environ["CI"] = "true"
    config = Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ=environ, stderr=stream(tty))
    said = idle(config)
    records, _, notice = documented_outcome(stored, override, dnt, tty, ci)
    if said:
        assert not records and not notice and not erasure
    else:
        assert records or (stored == "unset" and override is None and not dnt and tty) or erasure
    config.install_hooks = False
    client = Client(config)
    client.start()
    client.finish()
    if said:
        assert client.session is None and config.log.text == ""  # type: ignore[attr-defined]
        assert sorted(p.name for p in tmp_path.iterdir()) == (["consent"] if stored != "unset" else [])


@pytest.mark.parametrize("environ", [{"DO_NOT_TRACK": "1"}, {"MYTOOL_TELEMETRY": "0"}], ids=["dnt", "env-off"])
def test_idle_sweeps_expired_sessions(tmp_path: Path, environ: dict[str, str]) -> None:
    """The cheap "off" start still deletes queued sessions past their age, and only those."""
    now = 2_000_000_000.0
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    (tmp_path / "consent").write_text("allowed")
    old, fresh = queue_dir / file_name(now - 31 * 86400, "old"), queue_dir / file_name(now - 86400, "fresh")
    for path in (old, fresh):
        path.write_text("{}")
    config = Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ=environ, clock=lambda: now)
    assert idle(config)
    assert sorted(p.name for p in queue_dir.iterdir()) == [fresh.name]


def test_debug_and_strict_are_never_idle(tmp_path: Path) -> None:
    """A debug run says why telemetry is off and a strict one checks its config: both take the full start."""
    for options in (
        {"debug": True},
        {"strict": True},
        {"environ": {"DO_NOT_TRACK": "1", "MYTOOL_TELEMETRY_DEBUG": "1"}},
    ):
        environ = options.pop("environ", {"DO_NOT_TRACK": "1"})
        config = Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ=environ, **options)  # type: ignore[arg-type]
        assert not idle(config), options
