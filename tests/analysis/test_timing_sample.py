"""Timing's widening for users with many spans, estimated on a sample of users above ``USER_SAMPLE`` spans of a
type and version (``timing._users_sampled``): the same answer on every engine, and close to what every user's
spans give, regressions and all. The demo data hold fewer spans per type and version than the real threshold,
so it is lowered here to make every group sampled."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tallystick.analysis import Scope, run, timing
from tallystick.warehouse.base import Warehouse

SAMPLED = 1000  # spans per type and version: most groups of the demo are sampled


def _rows(report: Any) -> dict[tuple[str, str], dict[str, Any]]:
    table = report.tables[0]
    return {(r[0], r[1]): dict(zip(table.columns, r, strict=True)) for r in table.rows}


def test_sampled_users_give_the_same_answer_on_every_engine(
    duckdb_warehouse: Warehouse, clickhouse_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample is chosen by the user ID's first characters, not by an engine's hash: the same users, so
    the same numbers."""
    monkeypatch.setattr(timing, "USER_SAMPLE", SAMPLED)
    on_duckdb = run(duckdb_warehouse, "timing", Scope("demo")).to_dict()
    on_clickhouse = run(clickhouse_warehouse, "timing", Scope("demo")).to_dict()
    assert on_clickhouse["tables"] == on_duckdb["tables"]
    assert on_clickhouse["summary"] == on_duckdb["summary"]


def test_sampled_users_estimate_the_widening_of_all_users(
    duckdb_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most (type, version) sampled, a third to a half of their users (the real threshold samples 25 times as
    many spans, so it errs less): the regressions found are those found with every user; each interval's
    width (log scale, which the design effect's square root stretches) 0.9 to 1.25 times the exact one's
    (the larger of two sides' design effects widens, so sampling noise errs wide more than narrow: measured
    0.95 to 1.18), and the estimated users within 20 % of the counted ones (measured 0.95 to 1.14); the
    estimates differ from the counts (the sample was used)."""
    exact = run(duckdb_warehouse, "timing", Scope("demo"))
    monkeypatch.setattr(timing, "USER_SAMPLE", SAMPLED)
    sampled = run(duckdb_warehouse, "timing", Scope("demo"))
    assert sampled.summary["regressions"] != [] or exact.summary["regressions"] == []
    assert [(r["span"], r["version"]) for r in sampled.summary["regressions"]] == [
        (r["span"], r["version"]) for r in exact.summary["regressions"]
    ]
    rows, exact_rows = _rows(sampled), _rows(exact)
    assert rows.keys() == exact_rows.keys()
    widths = []
    users = []
    for key, row in rows.items():
        want = exact_rows[key]
        if row["spans"] > SAMPLED:
            users.append(row["users"] / want["users"])
        if want["ratio_lo"] is not None:
            widths.append(math.log(row["ratio_hi"] / row["ratio_lo"]) / math.log(want["ratio_hi"] / want["ratio_lo"]))
    assert users and all(0.8 <= u <= 1.25 for u in users), users
    assert any(u != 1 for u in users)
    assert widths and all(0.9 <= w <= 1.25 for w in widths), widths
