"""The overview's numbers: version order and the completeness estimate."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.conftest import Served
from tallystick.dashboard.overview import completeness, version_key


def test_versions_sort_by_number_with_prereleases_first() -> None:
    """1.10 comes after 1.9, and a release candidate before its release."""
    versions = ["1.10.0", "1.9.0", "2.0.0rc1", "2.0.0", "1.9.0.post1", "2.0.0-beta.1"]
    assert sorted(versions, key=version_key) == ["1.9.0", "1.9.0.post1", "1.10.0", "2.0.0-beta.1", "2.0.0rc1", "2.0.0"]


def test_completeness_is_the_share_of_lags_shorter_than_the_day_age() -> None:
    """A day 1.5 days old has the arrived share of lags up to 1.5 days; old days are complete."""
    lags = [0.1, 0.5, 1.0, 2.0, 10.0]
    asof = datetime(2026, 3, 10, 0, 0)
    assert completeness(lags, date(2026, 3, 8), asof) == 3 / 5
    assert completeness(lags, date(2026, 3, 9), asof) == 2 / 5
    assert completeness(lags, date(2026, 1, 1), asof) == 1.0
    assert completeness([], date(2026, 3, 9), asof) == 1.0


def test_overview_says_how_it_estimated_completeness(served: Served) -> None:
    """The overview page states how the shading was estimated."""
    status, _, body = served.request("GET", "/")
    assert status == 200 and b"arrival lags" in body
