"""The overview's numbers: version order and the completeness estimate."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.conftest import Served
from tallystick.dashboard.overview import version_key


def test_versions_sort_by_number_with_prereleases_first() -> None:
    """1.10 comes after 1.9, and a release candidate before its release."""
    versions = ["1.10.0", "1.9.0", "2.0.0rc1", "2.0.0", "1.9.0.post1", "2.0.0-beta.1"]
    assert sorted(versions, key=version_key) == ["1.9.0", "1.9.0.post1", "1.10.0", "2.0.0-beta.1", "2.0.0rc1", "2.0.0"]


def test_overview_completeness_is_the_analysis_one(served: Served) -> None:
    """Each day's completeness on the overview is the completeness analysis's estimate for that day."""
    from tallystick.analysis import completeness
    from tallystick.analysis.scope import Scope, bind
    from tallystick.dashboard.overview import overview
    from tallystick.dashboard.reader import Reader

    reader = Reader(served.warehouse)
    shown = {d["day"]: d["complete"] for d in reader.run(lambda con: overview(con, "demo")).daily}
    expected = reader.run(lambda con: completeness.by_day(bind(con.warehouse, Scope("demo"))))
    assert any(v < 1 for v in shown.values()), "the demo's recent days should be incomplete"
    assert shown == {day: round(expected.get(date.fromisoformat(day), 1.0), 3) for day in shown}


def test_overview_says_how_it_estimated_completeness(served: Served) -> None:
    """The overview page states how the shading was estimated."""
    status, _, body = served.request("GET", "/")
    assert status == 200 and b"arrival lags" in body


def test_overview_errors_have_every_week_for_every_type(served: Served) -> None:
    """Each error type has a row for every week with sessions, 0 where it had none (a line dips, never bridges)."""
    from tallystick.dashboard.overview import overview
    from tallystick.dashboard.reader import Reader

    errors = Reader(served.warehouse).run(lambda con: overview(con, "demo")).errors
    weeks = {row["week"] for row in errors}
    types = {row["type"] for row in errors}
    assert len(types) >= 2
    assert sorted((row["week"], row["type"]) for row in errors) == sorted((w, t) for w in weeks for t in types)
    assert any(row["share"] == 0 for row in errors), "some week of the demo has no event of some error type"
