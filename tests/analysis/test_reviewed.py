"""A second round of planted truths (``reviewed.py``), each checked through ``run`` as a maintainer reads it:
the headline names what was planted, claims nothing that was not, and says when there is too little to say."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analysis import reviewed
from analysis.conftest import load
from analysis.test_planted import check_headline
from analysis.test_unseen import _units
from analysis.unseen import END
from tallystick.analysis import Filter, Scope, bind, common_factor, digest, run
from tallystick.analysis.defaults import parameters
from tallystick.warehouse import rollup
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.duckdb import DuckDBWarehouse

E = reviewed.E
NULL_SEEDS = (700, 701, 702)
APPS = (
    "os_python",
    "ci_version",
    "heavy_feature",
    "nudge_shell",
    "windows_regression",
    "withdrawn",
    "ten",
    "old_clients",
    "outliers",
    "skewed",
    "nightlies",
    "non_ascii",
)


def _app(name: str) -> Scope:
    return Scope(name.replace("_", "-"))


@pytest.fixture(scope="module")
def generated() -> dict[str, list[dict[str, Any]]]:
    out = {name: getattr(reviewed, name)() for name in APPS}
    for seed in NULL_SEEDS:
        out[f"null{seed}"] = reviewed.null(seed)
    return out


@pytest.fixture(scope="module")
def warehouse(
    generated: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    """Every population as its own application, loaded through the loader, derived tables refreshed."""
    sessions = []
    for name, population in generated.items():
        for s in population:
            s["applicationId"] = _app(name).app
            sessions.append(s)
    w = DuckDBWarehouse(Path(tmp_path_factory.mktemp("reviewed")) / "reviewed.duckdb")
    load(w, sessions)
    rollup.refresh(w)
    yield w
    w.close()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_an_os_and_python_interaction_is_named_as_both(warehouse: Warehouse) -> None:
    """The error needs Windows and Python 3.13 together: one is the factor, the other is needed with it (the
    headline says so, with both rates), not "explained by it"."""
    r = run(warehouse, "common-factor", _app("os_python"), event=E)
    s = r.summary
    both = {"operatingSystem=Windows", "pythonVersion=3.13.1"}
    assert len(s["significant"]) == 1 and s["significant"][0] in both
    (other,) = both - set(s["significant"])
    assert list(s["together"]) == [other] and other not in s["explained"]
    assert s["together"][other]["rate_with_both"] > 10 * s["together"][other]["rate_with_factor_alone"]
    assert f"It takes {other} as well" in r.headline
    check_headline(r)


def _factors(sessions: list[dict[str, Any]]) -> list[str]:
    sample = common_factor._Sample(_units(sessions), 1.0, 1.0)
    return [t.label() for t in common_factor.explain(sample, 0.05).factors]


def test_users_who_differ_in_how_often_they_fail_are_no_factor() -> None:
    """One user in ten fails a fifth of the time whatever their attributes, and ten heavy users share a flag: with
    no cause, a factor is named in at most one of ten seeds (it was in 4 before the test counted how many users
    the comparison rests on, ``bench/factor_rates.py``); when the flag is a real cause that only the heavy users
    have, it is named in at least eight."""
    seeds = range(3000, 3010)
    false = [f for seed in seeds if (f := _factors(reviewed.varied_users(seed)))]
    assert len(false) <= 1, false
    found = [seed for seed in seeds if "watchMode=true" in _factors(reviewed.varied_users(seed, effect=0.15))]
    assert len(found) >= 8, found


def test_a_versions_errors_from_ci_are_put_on_ci(warehouse: Warehouse) -> None:
    """CI pins 1.1.0 and fails five times as often: the common factor is CI; event-rate says 1.1.0 stands out
    and to compare it outside CI, where its rate is like the other versions'."""
    scope = _app("ci_version")
    assert run(warehouse, "common-factor", scope, event=E).summary["significant"] == ["isCI=true"]
    h = run(warehouse, "event-rate", scope, event=E).headline
    assert "1.1.0 stands out" in h and "compare it with --where (isCI=false, say)" in h
    outside = run(warehouse, "event-rate", Scope(scope.app, where=(Filter("isCI", "false"),)), event=E)
    assert "stands out" not in outside.headline
    rates = outside.summary["by_version"]
    assert all(
        rates["1.1.0"]["rate_lo"] <= v["rate_hi"] and v["rate_lo"] <= rates["1.1.0"]["rate_hi"] for v in rates.values()
    )


def test_a_flag_of_a_few_heavy_users_is_rare_by_users(warehouse: Warehouse) -> None:
    """watchMode is in most sessions but on only 5 % of users: the headline leads with users."""
    r = run(warehouse, "breakdown", _app("heavy_feature"), attribute="watchMode")
    s = r.summary
    assert s["session_share"]["true"] > 0.5 and s["user_share"]["true"] == pytest.approx(0.05, abs=0.01)
    assert r.headline.startswith("By users") and "true (5 %)" in r.headline
    fi = run(warehouse, "feature-impact", _app("heavy_feature"), feature="watchMode", outcome=E)
    assert fi.headline.startswith("No clear difference")


def test_a_nudge_heeded_in_one_shell_only(warehouse: Warehouse) -> None:
    """fish users update after a nudge with probability 0.4, nobody else ever: split by shell, the model says so."""
    app = _app("nudge_shell").app
    fish = run(warehouse, "nudges", Scope(app, where=(Filter("shell", "fish"),))).summary
    bash = run(warehouse, "nudges", Scope(app, where=(Filter("shell", "bash"),))).summary
    assert 0.3 <= fish["upgrade_probability_per_nudge"] <= 0.5 and fish["never_respond_share"] < 0.15
    assert bash["never_respond_share"] > 0.95


def test_a_slowdown_on_windows_in_one_version(warehouse: Warehouse) -> None:
    """LoadConfig triples in 1.2.0 on Windows only: timing flags 1.2.0 (its slowest tenth), and comparing by OS
    within 1.2.0 names Windows; within 1.1.0 it does not."""
    scope = _app("windows_regression")
    s = run(warehouse, "timing", scope).summary
    assert [(t["span"], t["version"]) for t in s["regressions"] + s["tail_regressions"]] == [("LoadConfig", "1.2.0")]
    within = run(
        warehouse, "spans", Scope(scope.app, versions=("1.2.0",)), span="LoadConfig", attribute="operatingSystem"
    )
    assert "operatingSystem=Windows is slower" in within.headline
    before = run(
        warehouse, "spans", Scope(scope.app, versions=("1.1.0",)), span="LoadConfig", attribute="operatingSystem"
    )
    assert before.headline.startswith("No clear difference")


def test_a_withdrawn_release_is_not_called_adopted(warehouse: Warehouse) -> None:
    """1.2.0 reached most users, then was withdrawn after two days: the headline says it is now on almost none."""
    r = run(warehouse, "adoption", _app("withdrawn"))
    latest = r.summary["releases"]["1.2.0"]
    assert latest["peak_user_share"] > 0.5 and latest["last_user_share"] < 0.05
    assert "but it is now on only" in r.headline and "went back to an older version" in r.headline
    check_headline(r)


def test_the_digest_of_a_tool_without_spans(warehouse: Warehouse) -> None:
    """A tool that records no spans still gets its digest: the withdrawn release on none of the last day's
    users, no timing section, no error."""
    d = digest.build(warehouse, _app("withdrawn").app)
    assert d.release["version"] == "1.2.0" and d.release["user_share"] == 0 and d.timings == []
    assert d.headlines()[0].startswith("The newest release, 1.2.0")


def test_ten_sessions_say_too_few(warehouse: Warehouse) -> None:
    """Ten sessions from four users: every answer says there is too little to say rather than claim."""
    scope = _app("ten")
    chosen = parameters(bind(warehouse, scope))
    heads = {name: run(warehouse, name, scope, **params).headline for name, params in chosen.items()}
    assert heads["event-rate"].startswith("Too few users (4)")
    for name in ("common-factor", "feature-impact", "spans", "timing"):
        assert "Not enough data to say" in heads[name], name
    assert "Caveat: with 4 users" in heads["breakdown"]


def test_sessions_without_an_attribute_are_not_its_commonest_value(warehouse: Warehouse) -> None:
    """1.0.0's clients send no shell: the headline ranks the shells there are and says which version lacks it,
    from the daily rollup and from the sessions alike; the error's cause is still found."""
    app = _app("old_clients").app
    for scope in (Scope(app), Scope(app, where=(Filter("exitCode", "0"),))):
        r = run(warehouse, "breakdown", scope, attribute="shell")
        assert r.headline.startswith("By users, the commonest values of shell are bash")
        assert "(none)" not in r.headline and "do not have shell; no session of 1.0.0 has it" in r.headline
        assert r.summary["versions_without"] == {
            "1.0.0": pytest.approx(r.summary["session_share"]["(none)"] * r.summary["sessions"], abs=1)
        }
        check_headline(r)
    assert run(warehouse, "common-factor", Scope(app), event=E).summary["significant"] == ["dockerVersion=25.0.4"]


def test_a_long_tail_is_named(warehouse: Warehouse) -> None:
    """A few projects of 100,000 tasks among 5-50: the headline says so; hung BuildImage spans (1 %) in every
    version make no regression."""
    r = run(warehouse, "distribution", _app("outliers"), attribute="projectTasks")
    assert "A long tail" in r.headline and "100,000" in r.headline
    check_headline(r)
    assert run(warehouse, "timing", _app("outliers")).headline.startswith("No version got slower")


def test_clocks_set_wrong_do_not_move_releases_or_the_range(
    warehouse: Warehouse, generated: dict[str, list[dict[str, Any]]]
) -> None:
    """3 % of users' clocks are three years behind or a year ahead: releases are dated when the rest first ran
    them, the range ends at the real last day, only the last day is still arriving, and the headlines count
    the sessions left out."""
    skewed = [
        s
        for s in generated["skewed"]
        if not -1 <= (_time(s["ingestionTime"]) - _time(s["sessionStartTime"])) / timedelta(days=1) <= 31
    ]
    assert skewed
    scope = _app("skewed")
    r = run(warehouse, "adoption", scope)
    first = r.summary["releases"]["1.2.0"]["first_seen"]
    assert abs(first - (END - timedelta(days=20)).replace(tzinfo=None)) < timedelta(days=1)
    assert r.headline.startswith(f"The newest release, 1.2.0 (first seen {first.date()})")
    assert f"Not counted: {len(skewed)} sessions dated by a clock set wrong" in r.headline
    c = run(warehouse, "completeness", scope)
    assert c.summary["incomplete_days"] <= 2 and f"Not counted: {len(skewed)}" in c.headline
    assert bind(warehouse, scope).until == (END - timedelta(days=1)).date()


def test_sessions_merely_late_are_not_called_clock_errors(duckdb_warehouse: Warehouse) -> None:
    """The demo's users who pause for weeks upload sessions weeks late (up to the client's 30 days, after which
    it discards them): none is taken for a wrong clock, nothing is said to be left out."""
    b = bind(duckdb_warehouse, Scope("demo"))
    ((late_days,),) = b.rows(
        'SELECT max(epoch("ingestionTime") - epoch("sessionEndTime")) / 86400 FROM sessions '
        "WHERE \"applicationId\" = 'demo'"
    )
    assert 14 < late_days <= 30.01
    assert b.clock_skewed == 0 and b.clock_left_out == 0
    r = run(duckdb_warehouse, "adoption", Scope("demo"))
    assert r.summary["clock_skewed_sessions"] == 0 and "clock" not in r.headline


def test_nightlies_are_not_the_newest_version(warehouse: Warehouse) -> None:
    """About 150 versions, most of them nightlies with a few sessions each: the rate and medians are given for
    the newest version with enough sessions, the versions too small to compare are counted, and adoption's
    "earlier releases took" counts no nightly (1.1.0.dev0 took 41 days to be overtaken, say)."""
    scope = _app("nightlies")
    er = run(warehouse, "event-rate", scope, event=E)
    assert "In the newest version with 30 sessions or more, 1.1.0:" in er.headline
    check_headline(er)
    ad = run(warehouse, "adoption", scope)
    assert ad.headline.startswith("The newest release, 1.1.0") and "earlier releases took" not in ad.headline
    t = run(warehouse, "timing", scope)
    assert t.summary["latest_version"] == "1.1.0" and t.summary["too_few"] > 100
    assert "with fewer than 30 spans or 5 users not" in t.headline
    check_headline(t)


def test_non_ascii_values_are_named_as_they_are(warehouse: Warehouse) -> None:
    """The error comes with locale=日本語: named, written as sent."""
    r = run(warehouse, "common-factor", _app("non_ascii"), event=E)
    assert r.summary["significant"] == ["locale=日本語"] and "locale=日本語" in r.headline
    assert "русский" in run(warehouse, "breakdown", _app("non_ascii"), attribute="locale").headline


def test_nothing_planted_nothing_claimed(warehouse: Warehouse) -> None:
    """Errors and times independent of everything, three seeds: no factor, no regression, no long tail, and at
    most two of the six 95 % comparisons (feature-impact, spans) claim a difference (0.2 % likely at the
    nominal 5 %, measured at 4 of 80 and 2 of 40 on forty seeds of 2,500 sessions)."""
    claims = []
    for seed in NULL_SEEDS:
        scope = Scope(f"null{seed}")
        chosen = parameters(bind(warehouse, scope))
        assert {"common-factor", "feature-impact", "spans", "timing", "distribution"} <= set(chosen)
        for name, params in chosen.items():
            r = run(warehouse, name, scope, **params)
            check_headline(r)
            h = r.headline
            if name == "common-factor":
                assert h.startswith("No attribute value stands out"), h
            elif name in ("feature-impact", "spans"):
                claims += [] if h.startswith("No clear difference") else [h]
            elif name == "timing":
                assert h.startswith("No version got slower"), h
            elif name == "distribution":
                assert "long tail" not in h, h
            elif name == "event-rate":
                assert "stands out" not in h, h
    assert len(claims) <= 2, claims
