"""The demo generator: valid wire sessions, deterministic, the promised size."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tallystick import demo
from tallystick.schema import parse_session

END = datetime(2025, 6, 30, tzinfo=UTC)


def test_sessions_are_valid_and_deterministic() -> None:
    """Every session passes the wire contract, and a seed gives the same sessions."""
    first = list(demo.generate(500, seed=4, end=END))
    assert first == list(demo.generate(500, seed=4, end=END))
    assert len(first) == 500
    for s in first:
        parse_session(json.dumps(s).encode())
    assert [s["sessionStartTime"] for s in first] == sorted(s["sessionStartTime"] for s in first)


def test_arrivals_leave_out_sessions_not_yet_uploaded() -> None:
    """With arrivals, each session is ingested at the user's next run, before the end."""
    sessions = list(demo.generate(2000, seed=4, end=END, arrivals=True))
    assert 1000 < len(sessions) < 2000
    assert all(s["sessionEndTime"] <= s["ingestionTime"] < "2025-06-30" for s in sessions)


def test_no_session_arrives_later_than_a_client_keeps_it() -> None:
    """As ``tallystick up --demo`` stores them (six months, its default size): no session is ingested more than
    30 days after it ended (the client discards queued sessions then), though users pausing for weeks upload
    some close to that."""
    history, recent = demo.arrived(5000, seed=7, now=END)
    lags = [
        (datetime.fromisoformat(s["ingestionTime"]) - datetime.fromisoformat(s["sessionEndTime"])).total_seconds()
        for s in history + recent
    ]
    assert max(lags) <= 30 * 86400
    assert sum(lag > 14 * 86400 for lag in lags) >= 10
