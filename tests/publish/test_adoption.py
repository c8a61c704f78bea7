"""'Versions in use' on small data: per week when most of a day's versions have fewer than k users, never a cell
of fewer than k users; the same counts on DuckDB, ClickHouse 18.16 and chDB."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from publish.conftest import load
from tallystick import demo
from tallystick.analysis import Scope, bind
from tallystick.publish.cells import Policy
from tallystick.publish.config import ChartConfig
from tallystick.publish.sections import build
from tallystick.warehouse import open_warehouse

END = datetime(2025, 6, 30, tzinfo=UTC)
TEXT = "The share of active users on each version; versions with fewer than {k} users in a period are other."


@pytest.fixture(scope="module")
def small() -> list[dict[str, Any]]:
    """``tallystick up --demo`` at its default size: 5,000 runs of 125 users over six months, about 20 a day."""
    history, recent = demo.arrived(5000, seed=7, now=END)
    return history + recent


def _weekly(sessions: list[dict[str, Any]]) -> dict[date, dict[str, set[str]]]:
    out: dict[date, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for s in sessions:
        day = datetime.fromisoformat(s["sessionStartTime"]).astimezone(UTC).date()
        out[day - timedelta(days=day.weekday())][s["applicationVersion"]].add(s["userId"])
    return out


def test_small_data_is_drawn_per_week_with_versions_named(warehouse_spec: str, small: list[dict[str, Any]]) -> None:
    """Per day most users would be "other" (fewer than 10 users on their version that day): the chart is
    drawn per week instead, where named versions hold most users; the text says so, and why; every count
    published is at least k and is the week's distinct users of that version (counted here in Python)."""
    warehouse = open_warehouse(warehouse_spec)
    try:
        load(warehouse, small)
        policy = Policy(k=10, round_to=1)
        section = build(bind(warehouse, Scope("demo")), ChartConfig("adoption", {}, "Versions in use", TEXT), policy)
    finally:
        warehouse.close()
    text = section.config.text
    assert text.startswith(TEXT + " Per week: per day, ") and "% of active users would be in other" in text
    per_day_other = int(text.split("per day, ")[1].split(" %")[0])
    assert per_day_other > 50
    weekly = _weekly(small)
    named = total = 0
    for week, cells in section.periods:
        assert week.weekday() == 0 and cells.total == len(set().union(*weekly[week].values()))
        for c in cells.cells:
            assert c.users is None or c.users >= policy.k
            if not c.other:
                assert c.users == len(weekly[week][c.label])
                named += c.users
        total += cells.total
    assert named / total >= 0.5
    assert section.headline and section.headline.startswith(f"In the week from {section.periods[-1][0]}")
