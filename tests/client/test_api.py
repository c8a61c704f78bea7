"""The public functions never hurt the host: no raise, no output, no effect before configure."""

from __future__ import annotations

from pathlib import Path

import pytest

import tallystick.client as telemetry
from tallystick.client import _api
from tallystick.schema import _rules


@pytest.fixture(autouse=True)
def _no_active_client():  # type: ignore[no-untyped-def]
    previous = _api.install(None)
    yield
    _api.restore(previous)


def _local(tmp_path: Path, **options: object) -> telemetry.Config:
    """A config that records and queues locally, without process hooks."""
    return telemetry.Config(
        "mytool",
        "1.0.0",
        "http://127.0.0.1:9",
        data_dir=tmp_path,
        environ={"MYTOOL_TELEMETRY": "local"},
        install_hooks=False,
        **options,  # type: ignore[arg-type]
    )


def test_calls_before_configure_do_nothing() -> None:
    """event, span and set_attributes are harmless before configure; a set_consent waits for configure."""
    from tallystick.client import _api

    telemetry.event("Anything", x=1)
    telemetry.set_attributes(y=2)
    with telemetry.span("Work"):
        pass
    assert telemetry.consent() == "unset"
    telemetry.set_consent(True)
    try:
        assert telemetry.consent() == "allowed", "kept for configure (test_commands checks it is stored then)"
    finally:
        _api._pending_consent = _api._NO_CHOICE


@pytest.mark.parametrize(
    ("app_id", "version", "url"),
    [
        ("My Tool", "1.0.0", "https://x.example"),
        ("mytool", "latest", "https://x.example"),
        ("mytool", "1.0.0", "ftp://x"),
    ],
    ids=["bad-app-id", "bad-version", "bad-url"],
)
def test_a_bad_configuration_turns_telemetry_off_silently(
    app_id: str, version: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside strict mode a bad configuration records nothing and prints nothing."""
    config = telemetry.Config(
        app_id, version, url, data_dir=tmp_path, environ={"MYTOOL_TELEMETRY": "1"}, install_hooks=False
    )
    telemetry.configure(config)
    telemetry.event("Thing")
    client = _api.active()
    assert client is not None and client.session is None
    assert capsys.readouterr() == ("", "")


def test_a_bad_configuration_raises_in_strict_mode(tmp_path: Path) -> None:
    """Strict mode reports a bad configuration as ConfigError."""
    config = telemetry.Config(
        "mytool", "latest", "https://x.example", data_dir=tmp_path, strict=True, install_hooks=False
    )
    with pytest.raises(telemetry.ConfigError, match="SemVer or PEP 440"):
        telemetry.configure(config)


def test_bad_names_in_production_are_counted_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad event name outside strict mode is dropped, counted in the session, and nothing is printed."""
    config = telemetry.Config(
        "mytool",
        "1.0.0",
        "http://127.0.0.1:9",
        data_dir=tmp_path,
        environ={"MYTOOL_TELEMETRY": "local"},
        install_hooks=False,
    )
    telemetry.configure(config)
    telemetry.event("not a name")
    client = _api.active()
    assert client is not None
    client.finish()
    (path,) = (tmp_path / "queue").glob("*.json")
    assert '"telemetryDropsInvalidName":1' in path.read_text()
    assert capsys.readouterr() == ("", "")


def test_internal_failures_are_swallowed_and_counted(tmp_path: Path) -> None:
    """If recording itself breaks, the call returns normally and the failure is counted."""
    config = telemetry.Config(
        "mytool",
        "1.0.0",
        "http://127.0.0.1:9",
        data_dir=tmp_path,
        environ={"MYTOOL_TELEMETRY": "local"},
        install_hooks=False,
        clock=lambda: 1_700_000_000.0,
    )
    telemetry.configure(config)
    client = _api.active()
    assert client is not None and client.session is not None
    client.session._events = None  # type: ignore[assignment]
    client.session._spans = None  # type: ignore[assignment]
    telemetry.event("Thing")
    with telemetry.span("Work"):
        pass
    assert client.counts == {"internalError": 2}


def test_configuring_again_finishes_the_previous_session(tmp_path: Path) -> None:
    """A second configure call queues the first session and starts a new one."""
    for _ in range(2):
        telemetry.configure(
            telemetry.Config(
                "mytool",
                "1.0.0",
                "http://127.0.0.1:9",
                data_dir=tmp_path,
                environ={"MYTOOL_TELEMETRY": "local"},
                install_hooks=False,
            )
        )
    assert len(list((tmp_path / "queue").glob("*.json"))) == 1


@pytest.mark.parametrize("config", [None, "mytool", 42], ids=["none", "str", "int"])
def test_configure_with_no_config_does_not_raise(config: object, capsys: pytest.CaptureFixture[str]) -> None:
    """configure(None) or any non-Config returns quietly: telemetry stays off, nothing printed."""
    telemetry.configure(config)  # type: ignore[arg-type]
    telemetry.event("Thing")
    assert capsys.readouterr() == ("", "")


def test_a_value_utf8_cannot_encode_loses_only_itself(tmp_path: Path) -> None:
    """A lone surrogate (os.fsdecode of a non-UTF-8 file name) is dropped and counted; the session is queued."""
    import json
    import os

    telemetry.configure(_local(tmp_path))
    telemetry.event("Opened", fileName=os.fsdecode(b"caf\xe9.txt"), size=3)
    client = _api.active()
    assert client is not None
    client.finish()
    (path,) = (tmp_path / "queue").glob("*.json")
    session = json.loads(path.read_text())
    (opened,) = [e for e in session["events"] if e["type"] == "Opened"]
    assert opened["attributes"] == {"size": 3}
    # Counted: in this session if caught when recorded, else carried over to the next one.
    assert client.queue is not None
    reported = session["attributes"].get("telemetryDropsInvalidAttribute", 0)
    assert reported + client.queue.read_drops().get("invalidAttribute", 0) == 1


def test_scrub_uses_the_configured_environment(tmp_path: Path) -> None:
    """scrub() knows the home, user and host names of Config.environ, not only of os.environ."""
    environ = {"MYTOOL_TELEMETRY": "local", "HOME": "/srv/homes/zed-the-user", "USER": "zed-the-user"}
    telemetry.configure(
        telemetry.Config(
            "mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ=environ, install_hooks=False
        )
    )
    out = telemetry.scrub("zed-the-user could not read /srv/homes/zed-the-user/notes.txt")
    assert "zed-the-user" not in out and out.endswith("~/notes.txt")


def test_scrub_before_configure_and_on_bad_input_never_raises() -> None:
    """scrub() works before configure; given something that is not text it withholds it instead of raising."""
    assert telemetry.scrub("from 10.1.2.3") == "from <ip>"
    assert telemetry.scrub(None) == "<redacted>"  # type: ignore[arg-type]


def test_strict_mode_refuses_a_lone_surrogate() -> None:
    """Under capture (strict) a value UTF-8 cannot encode raises InvalidData at the call."""
    import os

    from tallystick.testing import capture

    with capture(), pytest.raises(telemetry.InvalidData, match="surrogate"):
        telemetry.event("Opened", fileName=os.fsdecode(b"caf\xe9.txt"))


def test_the_encoder_drops_what_slipped_past_the_checks(tmp_path: Path) -> None:
    """Should an unencodable value reach the session anyway, the encoder drops that value, not the session."""
    import json

    telemetry.configure(_local(tmp_path))
    client = _api.active()
    assert client is not None and client.session is not None
    client.session._attributes["fileName"] = "caf\udce9.txt"  # as if recorded before the rule existed
    client.finish()
    (path,) = (tmp_path / "queue").glob("*.json")
    assert "fileName" not in json.loads(path.read_text())["attributes"]
    assert client.queue is not None and client.queue.read_drops() == {"invalidAttribute": 1}


def test_an_off_run_stays_dormant_until_a_consent_function_needs_the_client(tmp_path: Path) -> None:
    """DO_NOT_TRACK: configure makes no client; consent() and set_consent() then make it and work as before."""
    config = telemetry.Config(
        "mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ={}, install_hooks=False
    )
    telemetry.configure(config)
    assert _api._active is None and _api._dormant is config
    telemetry.event("Thing")  # nothing to record into, nothing made
    assert _api._active is None
    assert telemetry.consent() == "unset"
    assert _api._active is not None and _api._dormant is None, "made on first use"
    telemetry.set_consent(True)
    assert (tmp_path / "consent").read_text() == "allowed"
    client = _api.active()
    assert client is not None and client.session is not None, "allowing starts recording this run"


def test_configure_with_telemetry_off_imports_almost_nothing(tmp_path: Path) -> None:
    """DO_NOT_TRACK=1: importing and configuring loads only _api, _config and _consent of the client."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import tallystick.client as t\n"
        f"t.configure(t.Config('mytool', '1.0.0', 'http://127.0.0.1:9', data_dir={str(tmp_path)!r}))\n"
        "with t.span('Work'):\n"
        "    t.event('Thing', n=1)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('tallystick'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DO_NOT_TRACK": "1", "PYTHONPATH": str(Path(telemetry.__file__).parents[2])}
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == [
        "tallystick",
        "tallystick.client",
        "tallystick.client._api",
        "tallystick.client._config",
        "tallystick.client._consent",
    ]
    assert list(tmp_path.iterdir()) == [], "nothing written"


@pytest.mark.parametrize(("upload", "starter"), [("later", []), ("due", ["tallystick.client._spawn"])])
def test_a_recording_run_loads_only_what_records_and_queues(tmp_path: Path, upload: str, starter: list[str]) -> None:
    """MYTOOL_TELEMETRY=1: the session is queued, and neither json nor the upload machinery loads in the tool.

    With an upload due, the exit loads only what starts the upload process (which then fails to connect).
    """
    import subprocess
    import sys
    import time

    if upload == "later":
        (tmp_path / "upload-state").write_text(f"{time.time() + 3600:.3f} 0 sent\n")
    (tmp_path / "version-checked").write_text("mytool 1.0.0")  # not the first run: the version's regex is skipped
    user_id, secret = "1b4e28ba-2fa1-4d3b-883f-0016d3cca427", "ab" * 32  # nor are the user ID and secret made
    (tmp_path / "user-id").write_text(user_id)
    (tmp_path / "erasure-secret").write_text(f"{user_id} {secret} {_rules.erasure_commitment(user_id, secret)}\n")
    code = (
        "import sys\n"
        "preloaded = set(sys.modules)\n"
        "import tallystick.client as t, tallystick.client._api as api\n"
        f"t.configure(t.Config('mytool', '1.0.0', 'http://127.0.0.1:9', data_dir={str(tmp_path)!r}))\n"
        "with t.span('Work'):\n"
        "    t.event('Thing', n=1)\n"
        "api._at_exit()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('tallystick'))))\n"
        "print(' '.join(sorted(m for m in ('json', 're', 'uuid', 'datetime', 'platform', 'subprocess', 'typing',"
        " 'socket', 'ssl', 'threading') if m in sys.modules and m not in preloaded)))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "MYTOOL_TELEMETRY": "1", "PYTHONPATH": str(Path(telemetry.__file__).parents[2])}
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True)
    modules, stdlib = result.stdout.split("\n")[:2]
    assert modules.split() == [
        "tallystick",
        "tallystick.client",
        "tallystick.client._api",
        "tallystick.client._client",
        "tallystick.client._config",
        "tallystick.client._consent",
        "tallystick.client._queue",
        "tallystick.client._session",
        *starter,
        "tallystick.schema",
        "tallystick.schema._rules",
    ], result.stderr
    assert stdlib == ""
    assert len(list((tmp_path / "queue").glob("*.json"))) == 1, "the session was queued"
