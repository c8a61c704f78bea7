"""tallystick.testing.capture: tool authors assert on their own telemetry."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

import tallystick.client as telemetry
from tallystick.client import _api
from tallystick.schema import validation_errors
from tallystick.testing import capture

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mytool.py"


def _example():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("mytool_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mytool_example"] = module
    spec.loader.exec_module(module)
    return module


def test_capture_records_the_example_tools_telemetry(capsys: pytest.CaptureFixture[str]) -> None:
    """The example tool's own configure call is adopted; its events and spans are captured, nothing written."""
    mytool = _example()
    with capture() as captured:
        assert mytool.main(["hello", "Ada"]) == 0
    assert capsys.readouterr().out == "Hello, Ada!\n"
    assert captured.events_of("UpdateNudgeShown")[0]["attributes"] == {"latestVersion": "2.1"}
    assert [s["type"] for s in captured.spans] == ["LoadConfig", "Greet"]
    session = captured.session()
    assert session["applicationId"] == "mytool" and session["attributes"]["command"] == "hello"
    assert validation_errors(session) == []


def test_capture_is_strict() -> None:
    """Inside capture a name the contract forbids raises InvalidData at the call."""
    with capture(), pytest.raises(telemetry.InvalidData, match="UpdateNudgeShown"):
        telemetry.event("update nudge shown")
    with capture(), pytest.raises(telemetry.InvalidData):
        telemetry.set_attributes(**{"my-attribute": 1})


def test_capture_checks_the_tools_configuration() -> None:
    """A bad application ID or version in the tool's configure call raises ConfigError under capture."""
    with capture(), pytest.raises(telemetry.ConfigError, match="version"):
        telemetry.configure(telemetry.Config("mytool", "one point oh", "https://telemetry.example.org"))


def test_capture_restores_the_previous_client() -> None:
    """After the block the client active before it is active again."""
    before = _api.active()
    with capture():
        pass
    assert _api.active() is before


def test_nested_capture_leaves_the_outer_one_capturing(tmp_path: Path) -> None:
    """After an inner capture ends, the outer one still captures: configure is adopted, events land in it."""
    with capture() as outer:
        with capture() as inner:
            telemetry.event("Inner")
        telemetry.configure(
            telemetry.Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, install_hooks=False)
        )
        telemetry.event("Outer")
    assert [e["type"] for e in inner.events] == ["Inner"]
    assert [e["type"] for e in outer.events] == ["Outer"]
    assert outer.session()["applicationId"] == "mytool"
    assert list(tmp_path.iterdir()) == []


def test_span_decorator_and_failure_flag() -> None:
    """@span times each call; an exception inside marks the span failed and still propagates."""

    @telemetry.span("Work", size=3)
    def work(fail: bool) -> int:
        if fail:
            raise ValueError("no")
        return 1

    with capture() as captured:
        assert work(False) == 1
        with pytest.raises(ValueError, match="no"):
            work(True)
    assert [s.get("attributes") for s in captured.spans_of("Work")] == [{"size": 3}, {"size": 3, "failed": True}]


@pytest.mark.parametrize(
    ("argv", "code", "failed"),
    [
        (["--version"], 0, False),
        (["--help"], 0, False),
        (["go"], None, False),
        (["stop"], 3, True),
        (["bogus"], 2, True),
        (["quit"], "bye", True),
    ],
    ids=["version", "help", "exit-none", "exit-3", "usage-error", "exit-message"],
)
def test_a_span_ended_by_a_successful_exit_is_not_failed(
    argv: list[str], code: object, failed: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A span around an argparse entry point: --help, --version and sys.exit(0) are not failures, the rest are."""
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--version", action="version", version="1.0")
    parser.add_argument("command", choices=["go", "stop", "quit"])

    def main() -> None:
        args = parser.parse_args(argv)
        sys.exit({"go": None, "stop": 3, "quit": "bye"}[args.command])

    with capture() as captured, pytest.raises(SystemExit) as exited, telemetry.span("Run"):
        main()
    capsys.readouterr()
    assert exited.value.code == code
    assert captured.spans_of("Run")[0].get("attributes") == ({"failed": True} if failed else None)


def test_record_exception_keeps_no_message() -> None:
    """record_exception adds an Error event with the type and frames only."""
    with capture() as captured:
        try:
            raise PermissionError("/home/someone/secret")
        except PermissionError as error:
            telemetry.record_exception(error)
    (error_event,) = captured.events_of("Error")
    assert error_event["attributes"]["exceptionType"] == "PermissionError"
    assert "secret" not in str(error_event)
