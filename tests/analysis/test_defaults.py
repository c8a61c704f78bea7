"""What ``tallystick report`` (no name) runs for a tool instrumented the way docs/instrument-your-tool.md says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis.conftest import load
from analysis.unseen import Maker, Session
from tallystick.analysis import Scope, bind, run
from tallystick.analysis.defaults import parameters
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.duckdb import DuckDBWarehouse

APP = "argtool"


def _argparse_tool(seed: int = 21) -> list[Session]:
    """An argparse tool recording ``command`` and ``exitCode``, ``UnknownCommand`` on usage errors, update
    nudges on a fifth of its runs and its own ``hooks`` count, with the client's ``telemetryMs`` beside them."""
    m = Maker(seed, app=APP)
    out = []
    for u, t in m.runs(m.users(80, lambda rng, i: {"shell": rng.choice(["bash", "zsh"])}), 800):
        roll = m.rng.random()
        code = 2 if roll < 0.1 else 1 if roll < 0.13 else 0
        events = [("UnknownCommand", {})] if code == 2 and m.rng.random() < 0.5 else []
        if m.rng.random() < 0.2:
            events.append(("UpdateNudgeShown", {"latestVersion": "9.0.0"}))
        command = m.rng.choice(["run", "install", "validate-config", None])  # None: `argtool telemetry show`
        attrs = {
            "exitCode": code,
            "telemetryMs": m.rng.uniform(1, 30),  # in every session, unlike the tool's own attributes
            "telemetryQueueDepth": m.rng.randint(0, 3),
            "telemetryUploadError": m.rng.choice(["network", "timeout"]),
        }
        if command is not None:
            attrs["command"] = command
        if command == "run":
            attrs["hooks"] = m.rng.randint(1, 9)
        out.append(m.session(u, t, attrs=attrs, events=events, spans=[("Run", 40.0, {})]))
    return out


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    return _argparse_tool()


@pytest.fixture(scope="module")
def warehouse(sessions: list[Session], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    w = DuckDBWarehouse(Path(tmp_path_factory.mktemp("defaults")) / "defaults.duckdb")
    load(w, sessions)
    yield w
    w.close()


def test_a_failing_exit_code_is_the_outcome_not_the_update_nudge(warehouse: Warehouse, sessions: list[Session]) -> None:
    """No error event: the error analyses ask about the commonest failing exit code, never UpdateNudgeShown."""
    chosen = parameters(bind(warehouse, Scope(APP)))
    assert chosen["event-rate"] == chosen["common-factor"] == {"exit_code": 2}
    report = run(warehouse, "event-rate", Scope(APP), **chosen["event-rate"])
    failing = sum(1 for s in sessions if s["attributes"]["exitCode"] == 2)
    assert report.summary["with_outcome"] == failing
    assert "of sessions have exitCode=2" in report.headline


def test_the_clients_own_attributes_are_never_picked(warehouse: Warehouse) -> None:
    """telemetryMs and the other telemetry* attributes answer nothing about the tool: hooks and command are picked."""
    chosen = parameters(bind(warehouse, Scope(APP)))
    assert chosen["distribution"] == {"attribute": "hooks"}
    assert chosen["breakdown"] == {"attribute": "shell"}
    for name, params in chosen.items():
        assert not any(str(v).startswith("telemetry") for v in params.values()), name
        run(warehouse, name, Scope(APP), **params)


def test_an_exit_code_outcome_is_not_its_own_factor(warehouse: Warehouse) -> None:
    """common-factor --exit-code 2 never names exitCode=2 (the outcome itself) as a factor or a symptom."""
    report = run(warehouse, "common-factor", Scope(APP), exit_code=2)
    assert "exitCode" not in {label.split("=", 1)[0] for label in report.summary["symptoms"]}
    assert "exitCode" not in {row["attribute"] for row in report.table("factors").records()}
    assert "exitCode=2 comes with it" not in report.headline
