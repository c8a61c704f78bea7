"""Consent that keeps up with collection: a new version's new items are withheld and announced until allowed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tallystick.client._client import Client
from tallystick.client._config import Config

V1 = {"attributes": {"projectSize": "Number of files in the project."}, "events": {"UpdateNudgeShown": "Nudged."}}
V2 = {"attributes": {**V1["attributes"], "gitBranchCount": "Number of git branches."}, "events": V1["events"]}


class Stderr:
    """A terminal's stderr (the notice shows only on one)."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def _run(data_dir: Path, version: str, declared: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    """One run of the tool: records both attributes and the event; (stderr text, the session it queued)."""
    stderr = Stderr()
    config = Config(
        "mytool",
        version,
        "http://127.0.0.1:9",
        data_dir=data_dir,
        environ={"HOME": str(data_dir.parent), **(environ or {})},
        stderr=stderr,
        install_hooks=False,
        local_only=True,
        consent_command="mytool telemetry",
        **declared,
    )
    client = Client(config)
    client.start()
    assert client.session is not None
    client.session.set_attributes({"projectSize": 3, "gitBranchCount": 7})
    client.session.add_event("UpdateNudgeShown", {})
    client.finish()
    files = sorted((data_dir / "queue").glob("*.json"))
    session = json.loads(files[-1].read_text())
    for f in files:
        f.unlink()
    return stderr.text, session, client


def _allow(data_dir: Path, declared: dict[str, Any]) -> None:
    config = Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=data_dir, install_hooks=False, **declared)
    client = Client(config)
    client.data_dir = str(data_dir)
    client.set_consent(True)


def test_same_collection_shows_no_new_notice(tmp_path: Path) -> None:
    """Allowed under v1, a run of v1 (or a later version collecting the same) shows nothing and records all."""
    data_dir = tmp_path / "data"
    _allow(data_dir, V1)
    for version in ("1.0.0", "1.1.0"):
        text, session, _ = _run(data_dir, version, V1)
        assert text == ""
        assert session["attributes"]["projectSize"] == 3
        assert "gitBranchCount" not in session["attributes"]  # undeclared in v1: never recorded
        assert [e["type"] for e in session["events"]] == ["UpdateNudgeShown"]


def test_a_new_attribute_shows_the_notice_again_and_is_withheld_until_allowed(tmp_path: Path) -> None:
    """v2 declares gitBranchCount: the notice lists it (once), it is withheld, and recorded once allowed."""
    data_dir = tmp_path / "data"
    _allow(data_dir, V1)
    text, session, _ = _run(data_dir, "2.0.0", V2)
    assert "mytool now collects more than when you allowed" in text
    assert "attribute gitBranchCount: Number of git branches." in text
    assert "projectSize" not in text  # only what is new
    assert "`mytool telemetry allow`" in text
    assert "gitBranchCount" not in session["attributes"]
    assert session["attributes"]["projectSize"] == 3  # what was covered is still recorded
    assert session["attributes"]["telemetryDropsNotConsented"] == 1

    text, session, _ = _run(data_dir, "2.0.0", V2)
    assert text == "", "the notice is shown once for each change"
    assert "gitBranchCount" not in session["attributes"]

    status = subprocess.run(
        [sys.executable, "-m", "tallystick.client", "show", "--app", "mytool", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["notCoveredByConsent"] == ["attribute gitBranchCount"]

    allowed = subprocess.run(
        [sys.executable, "-m", "tallystick.client", "allow", "--app", "mytool", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "allowed" in allowed.stdout
    text, session, _ = _run(data_dir, "2.0.0", V2)
    assert text == ""
    assert session["attributes"]["gitBranchCount"] == 7


def test_a_per_run_override_covers_what_is_declared(tmp_path: Path) -> None:
    """MYTOOL_TELEMETRY=1 records every declared item for that run, and shows no notice."""
    data_dir = tmp_path / "data"
    _allow(data_dir, V1)
    text, session, _ = _run(data_dir, "2.0.0", V2, {"MYTOOL_TELEMETRY": "1"})
    assert text == "" and session["attributes"]["gitBranchCount"] == 7


def test_allowing_in_the_tool_covers_the_new_items_for_the_rest_of_the_run(tmp_path: Path) -> None:
    """set_consent(True) during a run covers the tool's collection at once."""
    data_dir = tmp_path / "data"
    _allow(data_dir, V1)
    stderr = Stderr()
    config = Config(
        "mytool",
        "2.0.0",
        "http://127.0.0.1:9",
        data_dir=data_dir,
        environ={"HOME": str(tmp_path)},
        stderr=stderr,
        install_hooks=False,
        local_only=True,
        **V2,
    )
    client = Client(config)
    client.start()
    assert client.session is not None
    client.session.set_attributes({"gitBranchCount": 1})
    client.set_consent(True)
    client.session.set_attributes({"gitBranchCount": 2})
    assert client.session.to_dict()["attributes"]["gitBranchCount"] == 2  # type: ignore[index]
