"""Every analysis recovers the effects planted in the demo data, on DuckDB and on ClickHouse."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from analysis.conftest import DAYS, END, SEED, SESSIONS, USERS
from analysis.test_planted import check_headline
from tallystick import demo
from tallystick.analysis import Filter, Scope, run
from tallystick.analysis.common_factor import HEAVY_USERS
from tallystick.warehouse.base import Warehouse

T = demo.TRUTHS
APP = Scope(demo.APP)


def test_adoption_is_fast_after_automatic_updates(warehouse: Warehouse, auto_update_day: date) -> None:
    """Releases after the automatic-update date reach 50 % of active users within 5 days; earlier ones take > 7."""
    releases = run(warehouse, "adoption", APP).summary["releases"]
    before = [r for v, r in releases.items() if v != demo.RELEASES[0] and r["first_seen"].date() < auto_update_day]
    after = [r for r in releases.values() if r["first_seen"].date() > auto_update_day and r["days_observed"] >= 10]
    assert len(before) >= 5 and len(after) >= 3
    assert all(r["days_to_50"] is None or r["days_to_50"] > 7 for r in before), before
    assert all(r["days_to_50"] is not None and r["days_to_50"] <= 5 for r in after), after


def test_nudges_recover_upgrade_probability_and_stubborn_share(warehouse: Warehouse, auto_update_day: date) -> None:
    """Before automatic updates: per-nudge upgrade probability within ±0.02 and never-respond share within ±0.06."""
    scope = Scope(demo.APP, until=auto_update_day - timedelta(days=1))
    summary = run(warehouse, "nudges", scope).summary
    assert summary["upgrade_probability_per_nudge"] == pytest.approx(T.nudge_upgrade_probability, abs=0.02)
    assert summary["never_respond_share"] == pytest.approx(T.stubborn_share, abs=0.06)
    assert summary["median_nudges_before_upgrade"] >= 3  # "lots"


def test_buildkit_halves_build_time(warehouse: Warehouse) -> None:
    """The BuildImage median and p90 with BuildKit are half those without: the intervals contain 0.5."""
    ratios = run(warehouse, "spans", APP, span="BuildImage", attribute="buildKit").summary["ratios"]["true"]
    for key in ("median_ratio", "p90_ratio"):
        ratio, lo, hi = ratios[key]
        assert lo <= T.buildkit_ratio <= hi
        assert ratio == pytest.approx(T.buildkit_ratio, abs=0.04)


def test_event_rate_matches_the_sessions_exactly(warehouse: Warehouse, demo_sessions: list[dict[str, Any]]) -> None:
    """The UnknownCommand rate is the share of loaded sessions with that event, and exit code 1 says the same."""
    expected = sum(any(e["type"] == "UnknownCommand" for e in s["events"]) for s in demo_sessions)
    by_event = run(warehouse, "event-rate", APP, event="UnknownCommand").summary
    by_exit = run(warehouse, "event-rate", APP, exit_code=1).summary
    assert by_event["with_outcome"] == by_exit["with_outcome"] == expected
    assert by_event["sessions"] == len(demo_sessions)
    assert 0.02 < by_event["rate"] < 0.035  # the reference design saw 2.6 %


def test_breakdown_shells_fish_and_zsh_lead(warehouse: Warehouse) -> None:
    """Fish and Zsh are the two commonest shells by users, each within ±0.05 of the planted share."""
    shares = run(warehouse, "breakdown", APP, attribute="shell").summary["user_share"]
    assert list(shares)[:2] == ["fish", "zsh"]
    for shell, share in demo.SHELLS:
        assert shares[shell] == pytest.approx(share, abs=0.05)


def test_tab_completion_lowers_unknown_command_by_30_percent(warehouse: Warehouse) -> None:
    """The session-level relative difference's 95 % interval contains −30 % and excludes 0."""
    s = run(warehouse, "feature-impact", APP, feature="tabCompletion", outcome="UnknownCommand").summary
    assert s["relative_difference_lo"] <= T.tab_completion_effect <= s["relative_difference_hi"]
    assert s["relative_difference_hi"] < 0


def test_buildkit_has_no_effect_on_unknown_command(warehouse: Warehouse) -> None:
    """An effect that is not planted is not found: the interval for BuildKit contains 0."""
    s = run(warehouse, "feature-impact", APP, feature="buildKit", outcome="UnknownCommand").summary
    assert s["relative_difference_lo"] <= 0 <= s["relative_difference_hi"]


def test_common_factor_ranks_the_docker_version_first(warehouse: Warehouse) -> None:
    """The planted Docker version is the top factor (lift > 5, in > 80 % of cases); the exit code is a symptom."""
    s = run(warehouse, "common-factor", APP, event=T.bad_docker_error).summary
    top = s["top"]
    assert (top["attribute"], top["value"]) == ("dockerVersion", T.bad_docker_version)
    assert top["lift"] > 5 and top["support"] > 0.8
    assert top["outcome_rate"] == pytest.approx(T.bad_docker_error_rate, abs=0.05)
    assert s["symptoms"] == ["exitCode=3"]
    assert s["significant"] == [f"dockerVersion={T.bad_docker_version}"]  # nothing else: the rest is explained
    assert s["explained"] and set(s["explained"].values()) <= {f"dockerVersion={T.bad_docker_version}", HEAVY_USERS}


def test_common_factor_finds_nothing_for_an_unrelated_error(warehouse: Warehouse) -> None:
    """Generic errors have no planted cause: no Docker version is a significant factor for them."""
    s = run(warehouse, "common-factor", APP, event="Error").summary
    assert not [f for f in s["significant"] if f.startswith("dockerVersion=")]


def test_distribution_of_project_size_per_user(warehouse: Warehouse) -> None:
    """Per user, the median project has about 12 tasks (the planted log-normal's median), ±2."""
    s = run(warehouse, "distribution", APP, attribute="projectTasks", per="user").summary
    assert s["p50"] == pytest.approx(12, abs=2)
    assert s["count"] <= USERS


def test_timing_flags_only_the_planted_regression(warehouse: Warehouse) -> None:
    """Only the newest release's LoadConfig is flagged as slower, about 1.5 times its predecessor's."""
    s = run(warehouse, "timing", APP).summary
    assert s["span_types"] == ["BuildImage", "LoadConfig", "RunTask"]
    assert [(r["span"], r["version"]) for r in s["regressions"]] == [(T.slow_span, T.slow_release)]
    r = s["regressions"][0]
    assert r["ratio_lo"] <= T.slowdown <= r["ratio_hi"]


def test_completeness_estimates_recent_days(warehouse: Warehouse, demo_sessions: list[dict[str, Any]]) -> None:
    """For each of the last 10 days the estimated share already loaded is within ±0.06 of the true share."""
    everything = demo.generate(SESSIONS, users=USERS, days=DAYS, seed=SEED, end=END)
    generated = Counter(s["sessionStartTime"][:10] for s in everything)
    loaded = Counter(s["sessionStartTime"][:10] for s in demo_sessions)
    estimate = run(warehouse, "completeness", APP).summary["completeness"]
    last = END.date() - timedelta(days=1)
    for i in range(10):
        day = (last - timedelta(days=i)).isoformat()
        truth = loaded[day] / generated[day]
        assert estimate[day] == pytest.approx(truth, abs=0.06), (day, truth)
    assert estimate[last.isoformat()] < 0.6


def test_filters_narrow_every_analysis(warehouse: Warehouse) -> None:
    """With shell=fish only fish sessions are counted; the breakdown then has one value."""
    scope = Scope(demo.APP, where=(Filter("shell", "fish"),))
    shares = run(warehouse, "breakdown", scope, attribute="shell").summary["user_share"]
    assert shares == {"fish": 1.0}
    rate = run(warehouse, "event-rate", scope, event="UnknownCommand").summary
    everyone = run(warehouse, "event-rate", APP, event="UnknownCommand").summary
    assert 0.25 * everyone["sessions"] < rate["sessions"] < 0.45 * everyone["sessions"]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        pytest.param("adoption", {}, id="adoption"),
        pytest.param("spans", {"span": "BuildImage", "attribute": "buildKit"}, id="spans"),
        pytest.param("event-rate", {"event": "UnknownCommand"}, id="event-rate"),
        pytest.param("breakdown", {"attribute": "shell"}, id="breakdown"),
        pytest.param("feature-impact", {"feature": "tabCompletion", "outcome": "UnknownCommand"}, id="feature-impact"),
        pytest.param("feature-impact", {"feature": "buildKit", "outcome": "UnknownCommand"}, id="no-impact"),
        pytest.param("common-factor", {"event": "ContainerStartFailed"}, id="common-factor"),
        pytest.param("common-factor", {"event": "Error"}, id="no-common-factor"),
        pytest.param("distribution", {"attribute": "projectTasks"}, id="distribution"),
        pytest.param("timing", {}, id="timing"),
        pytest.param("completeness", {}, id="completeness"),
    ],
)
def test_demo_headlines_say_what_the_numbers_say(warehouse: Warehouse, name: str, params: dict[str, Any]) -> None:
    """Every analysis's headline on the demo carries its numbers and claims an effect only where one is."""
    check_headline(run(warehouse, name, APP, **params))


def test_demo_headlines_answer_the_seed_questions(warehouse: Warehouse) -> None:
    """BuildKit: about twice as fast; the odd error: one Docker version; tab completion: fewer unknown commands."""
    spans = run(warehouse, "spans", APP, span="BuildImage", attribute="buildKit").headline
    assert spans.startswith("BuildImage with buildKit=true is faster")
    factor = run(warehouse, "common-factor", APP, event=T.bad_docker_error).headline
    assert factor.startswith(f"{T.bad_docker_error} is concentrated in sessions with dockerVersion=25.0.4")
    impact = run(warehouse, "feature-impact", APP, feature="tabCompletion", outcome="UnknownCommand").headline
    assert impact.startswith("Sessions with tabCompletion=true have UnknownCommand") and "less often" in impact
