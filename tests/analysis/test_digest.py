"""The digest finds the demo's planted release and regression, and claims nothing where nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.conftest import load
from analysis.populations import POPULATIONS, generate
from tallystick import demo
from tallystick.analysis import digest
from tallystick.cli import main
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.duckdb import DuckDBWarehouse

T = demo.TRUTHS


def test_digest_reports_the_newest_release_and_its_regression(duckdb_warehouse: Warehouse) -> None:
    """The newest release is the demo's last one, adopted by most active users; its planted LoadConfig
    slowdown is named, and LoadConfig is the only timing that moved since the previous week."""
    d = digest.build(duckdb_warehouse, demo.APP)
    assert d.release["version"] == demo.RELEASES[-1]
    assert d.release["user_share"] > 0.5 and d.release["days_to_50"] is not None
    assert [r["span"] for r in d.release["regressions"]] == [T.slow_span]
    reg = d.release["regressions"][0]
    assert reg["ratio_lo"] <= T.slowdown <= reg["ratio_hi"]
    assert [t["span"] for t in d.timings if t["moved"]] == [T.slow_span]
    assert {e["type"] for e in d.errors} == {"ContainerStartFailed", "Error"}
    assert not [e for e in d.errors if e["moved"]]  # no error rate was planted to change
    lines = d.headlines()
    assert lines[0].startswith(f"The newest release, {demo.RELEASES[-1]}")
    assert f"{T.slow_span} got slower in {T.slow_release}" in lines[1]
    assert "still arriving" in lines[-1]


def test_digest_claims_nothing_where_nothing_changed(tmp_path: Path) -> None:
    """In a population with no effect over time, no error rate and no timing moves."""
    population = next(p for p in POPULATIONS if p.cause is None)
    warehouse = DuckDBWarehouse(tmp_path / "flat.duckdb")
    try:
        load(warehouse, generate(population))
        d = digest.build(warehouse, "tool")
        assert d.release["regressions"] == []
        assert not [t for t in d.timings if t["moved"]] and not [e for e in d.errors if e["moved"]]
        assert "No operation's median moved" in " ".join(d.headlines())
    finally:
        warehouse.close()


def test_digest_command_writes_markdown_and_self_contained_html(
    tmp_path: Path, demo_sessions: list[dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`tallystick digest` writes the Markdown and one HTML file with its charts inline (no network)."""
    spec = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(spec)
    load(warehouse, demo_sessions[-8000:])
    warehouse.close()
    md, page = tmp_path / "digest.md", tmp_path / "digest.html"
    assert main(["digest", "--warehouse", str(spec), "--markdown", str(md), "--html", str(page)]) == 0
    assert md.read_text().startswith("# demo: digest for ")
    text = page.read_text()
    assert text.count("<svg") == 2 and "<script" not in text and "http://" not in text.split("<svg", 1)[0]
    assert main(["digest", "--warehouse", str(spec), "--days", "0"]) == 1
    assert "--days" in capsys.readouterr().err


def test_digest_follows_the_exit_code_of_a_tool_without_error_events(tmp_path: Path) -> None:
    """No error-like event: the digest's error rates are the failing exit codes, and a rise of exitCode=2 is named."""
    from datetime import timedelta

    from analysis.unseen import END, Maker

    m = Maker(31, days=14, app="argtool")
    people = m.users(150, lambda rng, i: {"shell": rng.choice(["bash", "zsh"])})
    sessions = []
    for u, t in m.runs(people, 3000):
        late = t >= END - timedelta(days=7)
        roll = m.rng.random()
        code = 2 if roll < (0.25 if late else 0.05) else 1 if roll > 0.97 else 0
        events = [("UpdateNudgeShown", {"latestVersion": "9.0.0"})] if m.rng.random() < 0.2 else []
        sessions.append(m.session(u, t, version="1.0.0", attrs={"exitCode": code}, events=events))
    warehouse = DuckDBWarehouse(tmp_path / "argtool.duckdb")
    try:
        load(warehouse, sessions)
        d = digest.build(warehouse, "argtool")
    finally:
        warehouse.close()
    assert [(e["type"], e["moved"]) for e in d.errors] == [("exitCode=2", "up"), ("exitCode=1", None)]
    assert any(line.startswith("exitCode=2 went up: ") for line in d.headlines())
