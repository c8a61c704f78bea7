"""Completeness says how late sessions arrive in the unit that is true: seconds for sessions uploaded seconds
after they ended, not "within an hour"; alike on DuckDB, ClickHouse 18.16 and chDB."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from analysis.conftest import load
from analysis.unseen import Maker, _base
from tallystick.analysis import Scope, run
from tallystick.analysis.completeness import within
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.base import Warehouse


def _arriving(app: str, seed: int, delay_seconds: Any) -> list[dict[str, Any]]:
    """400 sessions over 60 days, each ingested ``delay_seconds(rng)`` after it ended."""
    m = Maker(seed, app=app)
    return [
        m.session(u, t, delay_hours=delay_seconds(m.rng) / 3600)
        for u, t in m.runs(m.users(40, lambda rng, i: _base(rng)), 400)
    ]


def _mixed(rng: Any) -> float:
    """Half within half a minute, 40 % after 3 to 50 minutes, a tenth after 5 to 30 hours."""
    r = rng.random()
    if r < 0.5:
        return rng.uniform(1, 30)
    return rng.uniform(180, 3000) if r < 0.9 else rng.uniform(5 * 3600, 30 * 3600)


POPULATIONS = {
    "prompt": lambda: _arriving("prompt", 31, lambda rng: rng.uniform(2, 20)),
    "mixed": lambda: _arriving("mixed", 32, _mixed),
}


@pytest.fixture(scope="module")
def populations() -> dict[str, list[dict[str, Any]]]:
    return {name: build() for name, build in POPULATIONS.items()}


@pytest.fixture(scope="module", params=["duckdb", "clickhouse", "chdb"])
def engine(
    request: pytest.FixtureRequest, populations: dict[str, list[dict[str, Any]]], tmp_path_factory: Any
) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        spec = str(Path(tmp_path_factory.mktemp("completeness")) / "w.duckdb")
    elif request.param == "clickhouse":
        spec = request.getfixturevalue("clickhouse_server").spec("completeness")
    else:
        spec = f"chdb://{request.getfixturevalue('chdb_dir')}?database=completeness"
    warehouse = open_warehouse(spec)
    load(warehouse, [s for p in populations.values() for s in p])
    yield warehouse
    drop = getattr(warehouse, "drop_database", None)
    if drop:
        drop()
    warehouse.close()


def _seconds(text: str) -> int:
    return math.floor(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _quantile(sessions: list[dict[str, Any]], q: float) -> int:
    """The delay (whole seconds, as the engines keep times) within which a share ``q`` arrived, rounded up to
    the second below a minute, the minute below an hour, the hour beyond; from sessions that ended 30 days
    or more before the last arrival."""
    last = max(_seconds(s["ingestionTime"]) for s in sessions)
    old = [s for s in sessions if _seconds(s["sessionEndTime"]) < last - 30 * 86400]
    delays = sorted(max(0, _seconds(s["ingestionTime"]) - _seconds(s["sessionEndTime"])) for s in old)
    d = delays[math.ceil(q * len(delays)) - 1]
    return d if d < 60 else (-(-d // 60) * 60 if d < 3600 else -(-d // 3600) * 3600)


@pytest.mark.parametrize("name", list(POPULATIONS))
def test_delays_are_said_in_seconds_minutes_or_hours_as_they_are(
    engine: Warehouse, populations: dict[str, list[dict[str, Any]]], name: str
) -> None:
    """Sessions uploaded 2 to 20 s after they ended arrive "within 12 s", not "within an hour"; with a tail
    of minutes and hours the 90th percentile is said in minutes; the delays table goes from 10 s up."""
    report = run(engine, "completeness", Scope(name))
    s, headline = report.summary, report.headline or ""
    median, p90 = _quantile(populations[name], 0.5), _quantile(populations[name], 0.9)
    assert (s["median_delay_seconds"], s["p90_delay_seconds"]) == (median, p90)
    assert median < 30 and f"Half the sessions arrive within {median} s of their end" in headline
    if name == "prompt":
        assert p90 <= 20 and (p90 == median or f"(90 % within {p90} s)" in headline)
    else:
        assert 60 < p90 < 3600 and p90 % 60 == 0 and f"(90 % within {p90 // 60} min)" in headline
    assert "hour" not in headline
    delays = next(t for t in report.tables if t.name == "delays")
    assert delays.rows[0][:2] == ["10 s", 10] and delays.rows[-1][2] == 1.0


def test_delays_read_in_their_unit() -> None:
    """Each bin edge in the unit it was counted in."""
    hours = (1, 2, 36, 48, 72, 129, 720, 721)
    assert [within(s) for s in (1, 12, 60, 300, *(h * 3600 for h in hours))] == [
        "a second",
        "12 s",
        "a minute",
        "5 min",
        "an hour",
        "2 h",
        "36 h",
        "2 days",
        "3 days",
        "129 h (5.4 days)",
        "30 days",
        "721 h (30.0 days)",
    ]
