"""The public functions never hurt the host: no raise, no output, no effect before configure."""

from __future__ import annotations

from pathlib import Path

import pytest

import tallystick.client as telemetry
from tallystick.client import _api


@pytest.fixture(autouse=True)
def _no_active_client():  # type: ignore[no-untyped-def]
    previous = _api.install(None)
    yield
    _api.install(previous)


def test_calls_before_configure_do_nothing() -> None:
    """event, span, set_attributes, consent and set_consent are harmless before configure."""
    telemetry.event("Anything", x=1)
    telemetry.set_attributes(y=2)
    with telemetry.span("Work"):
        pass
    telemetry.set_consent(True)
    assert telemetry.consent() == "unset"


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
    assert _api._active is not None and _api._active.session is None
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
    client = _api._active
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
    client = _api._active
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
