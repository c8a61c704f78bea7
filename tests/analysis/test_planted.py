"""Planted truths in seeded populations unlike the demo: each analysis finds what was planted and nothing else,
and its headline says exactly what its numbers say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from analysis.conftest import load
from analysis.populations import POPULATIONS, Population, generate
from tallystick.analysis import Scope, adoption, completeness, run, words
from tallystick.analysis.report import Report
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.duckdb import DuckDBWarehouse

APP = Scope("tool")
ALL = [pytest.param(p, id=p.name) for p in POPULATIONS]
WITH_CAUSE = [pytest.param(p, id=p.name) for p in POPULATIONS if p.cause is not None]
WITHOUT = [pytest.param(p, id=p.name) for p in POPULATIONS if p.cause is None]
Loaded = dict[str, Warehouse]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Each population's warehouse, loaded on first use."""
    warehouses: Loaded = {}
    yield warehouses
    for warehouse in warehouses.values():
        warehouse.close()


@pytest.fixture
def planted(
    population: Population, loaded: Loaded, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Population, Warehouse]:
    if population.name not in loaded:
        warehouse = DuckDBWarehouse(Path(tmp_path_factory.mktemp("planted")) / f"{population.name}.duckdb")
        load(warehouse, generate(population))
        loaded[population.name] = warehouse
    return population, loaded[population.name]


@pytest.mark.parametrize("population", ALL)
def test_common_factor_names_the_planted_cause_and_nothing_else(planted: tuple[Population, Warehouse]) -> None:
    """The planted cause is the only significant value, though its heavy users drag their other attributes
    along; the values a session-only test would flag are shown as explained; the exit code is a symptom."""
    p, warehouse = planted
    report = run(warehouse, "common-factor", APP, event=p.error)
    s = report.summary
    if p.cause_label is None:
        assert s["significant"] == [] and s["top"] is None
        assert report.headline.startswith("No attribute value stands out")
        return
    assert s["significant"] == [p.cause_label]
    assert f"{s['top']['attribute']}={s['top']['value']}" == p.cause_label
    assert all(by in (p.cause_label, "a few heavy users", "too few users") for by in s["explained"].values())
    assert s["symptoms"] == ["exitCode=3"]
    assert p.cause_label in report.headline.split(":")[0]


@pytest.mark.parametrize("population", WITH_CAUSE)
def test_common_factor_would_mislead_counting_sessions_only(planted: tuple[Population, Warehouse]) -> None:
    """The populations are built to mislead: counting sessions as independent, values other than the cause
    look significant — the analysis shows them as explained, not as factors."""
    p, warehouse = planted
    table = run(warehouse, "common-factor", APP, event=p.error).table("factors")
    naive = [r for r in table.records() if r["explained_by"]]
    assert naive, "the population no longer misleads a session-only test"
    assert not any(r["significant"] for r in naive)


@pytest.mark.parametrize("population", ALL)
def test_feature_impact_recovers_the_planted_effect(planted: tuple[Population, Warehouse]) -> None:
    """The relative difference's interval contains the planted effect, and excludes 0 when one is planted."""
    p, warehouse = planted
    report = run(warehouse, "feature-impact", APP, feature=p.feature, outcome=p.outcome)
    s = report.summary
    assert s["relative_difference_lo"] <= p.feature_effect <= s["relative_difference_hi"]
    if p.feature_effect == 0:
        assert report.headline.startswith("No clear difference")
    else:
        assert not s["relative_difference_lo"] <= 0 <= s["relative_difference_hi"]


@pytest.mark.parametrize("population", ALL)
def test_spans_recover_the_planted_ratio(planted: tuple[Population, Warehouse]) -> None:
    """The median ratio's interval contains the planted ratio, and excludes 1 when one is planted."""
    p, warehouse = planted
    report = run(warehouse, "spans", APP, span=p.span, attribute=p.span_attribute)
    _, lo, hi = report.summary["ratios"]["true"]["median_ratio"]
    assert lo <= p.span_ratio <= hi
    if p.span_ratio == 1:
        assert report.headline.startswith("No clear difference")
    else:
        assert not lo <= 1 <= hi


@pytest.mark.parametrize("population", ALL)
def test_timing_flags_only_the_planted_regression(planted: tuple[Population, Warehouse]) -> None:
    """A version planted 60 % slower is the only regression; without one, none is claimed."""
    p, warehouse = planted
    s = run(warehouse, "timing", APP).summary
    found = [(r["span"], r["version"]) for r in s["regressions"]]
    assert found == ([(p.span, p.slower_version)] if p.slower_version else [])


@pytest.mark.parametrize("population", WITHOUT)
def test_no_effect_population_claims_nothing(planted: tuple[Population, Warehouse]) -> None:
    """Where nothing is planted, no analysis's headline claims an effect."""
    p, warehouse = planted
    headlines = [
        run(warehouse, "common-factor", APP, event=p.error).headline,
        run(warehouse, "feature-impact", APP, feature=p.feature, outcome=p.outcome).headline,
        run(warehouse, "spans", APP, span=p.span, attribute=p.span_attribute).headline,
        run(warehouse, "timing", APP).headline,
    ]
    for text in headlines:
        assert text.startswith(("No attribute value stands out", "No clear difference", "No version got slower"))


# --- headlines against the numbers they summarise ------------------------------------------------------------


def check_headline(report: Report) -> None:
    s, h = report.summary, report.headline
    assert h and not re.search(r"\d[eE][-+]?\d", h), h  # no scientific notation
    name = report.analysis
    if name == "feature-impact":
        assert words.percent(s["rate_with"]) in h and words.percent(s["rate_without"]) in h
        adjusted = s["adjusted"]
        if adjusted and not h.startswith("Not enough data"):
            assert f"differ in {adjusted['attribute']}" in h
            if not adjusted["relative_difference_lo"] <= 0 <= adjusted["relative_difference_hi"]:
                assert words.often(adjusted["relative_difference"]) in h
        lo, hi = s["relative_difference_lo"], s["relative_difference_hi"]
        if h.startswith("Not enough data"):
            assert min(s["users_with"], s["users_without"]) < 10 or min(s["outcomes_with"], s["outcomes_without"]) < 10
        elif lo <= 0 <= hi:
            assert h.startswith("No clear difference")
        else:
            assert words.often(s["relative_difference"]) in h
    elif name == "spans":
        for value, r in s["ratios"].items():
            ratio, lo, hi = r["median_ratio"]
            adjusted = r.get("adjusted")
            if f"={value} is faster" in h:
                assert hi < 1 and f"{ratio:.2f}" in h and f"{lo:.2f}–{hi:.2f}" in h
            elif f"={value} is slower" in h:
                assert lo > 1 and f"{ratio:.2f}" in h
            elif f"={value} looks" in h:  # beyond 1, but not within each value of another attribute
                assert not lo <= 1 <= hi and adjusted and f"differ in {adjusted['attribute']}" in h
            else:
                assert lo <= 1 <= hi or "Not enough data" in h
    elif name == "common-factor":
        if s["top"] is None:
            assert h.startswith(("No attribute value stands out", "Not enough data"))
        else:
            t = s["top"]
            assert words.label(t["attribute"], t["value"]) in h and words.percent(t["support"]) in h
            assert words.percent(t["outcome_rate"]) in h and words.percent(s["rate"]) in h
        for symptom in s["symptoms"][:3]:
            assert words.label(*symptom.split("=", 1)) in h
    elif name == "event-rate":
        for key in ("rate", "rate_lo", "rate_hi"):
            assert words.percent(s[key]) in h
        assert words.count(s["with_outcome"]) in h and words.count(s["sessions"]) in h
        assert s["rate_lo"] <= s["rate"] <= s["rate_hi"]
    elif name == "timing":
        for t in s["tail_regressions"][:2]:
            assert f"{t['span']}'s slowest tenth got slower in {t['version']}" in h and f"{t['p90_ratio']:.2f}" in h
        if s["regressions"]:
            r = s["regressions"][0]
            assert f"{r['span']} got slower in {r['version']}" in h and f"{r['median_ratio']:.2f}" in h
        else:
            assert h.startswith(("No version got slower", "No version's median got slower", "Not enough data"))
    elif name == "breakdown":
        value, share = next((v, x) for v, x in s["user_share"].items() if v != "(none)")
        assert f"{words.value(value)} ({words.percent(share)})" in h
    elif name == "distribution":
        assert words.number(s["p50"]) in h and words.number(s["p90"]) in h
    elif name == "adoption":
        newest = adoption.newest(s["releases"])
        assert newest in h
        days = s["releases"][newest]["days_to_50"]
        assert (f"in {days} day" in h) if days is not None else "not yet reached half" in h
    elif name == "completeness" and s["median_delay_seconds"] is not None:
        median = s["median_delay_seconds"]  # a bin's upper edge: "within 5 min", never "5 min late"
        assert f"within {completeness.within(median)} of their end" in h and "median of" not in h


def _reports(p: Population, warehouse: Warehouse) -> list[Report]:
    return [
        run(warehouse, "adoption", APP),
        run(warehouse, "spans", APP, span=p.span, attribute=p.span_attribute),
        run(warehouse, "event-rate", APP, event=p.error),
        run(warehouse, "breakdown", APP, attribute="shell"),
        run(warehouse, "feature-impact", APP, feature=p.feature, outcome=p.outcome),
        run(warehouse, "common-factor", APP, event=p.error),
        run(warehouse, "distribution", APP, attribute="projectSize"),
        run(warehouse, "timing", APP),
        run(warehouse, "completeness", APP),
    ]


@pytest.mark.parametrize("population", ALL)
def test_every_headline_says_what_its_numbers_say(planted: tuple[Population, Warehouse]) -> None:
    """Each analysis's headline carries its summary's numbers, formatted for people, and claims an effect
    exactly when the interval excludes none."""
    p, warehouse = planted
    for report in _reports(p, warehouse):
        check_headline(report)


def test_a_few_users_are_not_enough_to_say(tmp_path: Path) -> None:
    """With three users, feature-impact, spans and common-factor say there is not enough data to say."""
    p = Population(
        "tiny",
        seed=5,
        users=3,
        sessions=40,
        cause=("gitVersion", ("2.39.2", "2.43.0"), "2.39.2"),
        error="CloneFailed",
        error_rate=0.5,
        base_error_rate=0.2,
        feature="sparseCheckout",
        feature_effect=-0.5,
        outcome="DiskFull",
        outcome_rate=0.4,
        span="Checkout",
        span_attribute="shallow",
        span_ratio=0.5,
        heavy_users=0,
    )
    warehouse = DuckDBWarehouse(tmp_path / "tiny.duckdb")
    sessions = generate(p)
    for s in sessions:  # make sure both sides of each split exist
        s["attributes"][p.feature] = s["attributes"][p.span_attribute] = s["sessionId"] < "8"
        s["spans"][0]["attributes"][p.span_attribute] = s["attributes"][p.span_attribute]
    load(warehouse, sessions)
    try:
        reports = _reports(p, warehouse)
        by_name = {r.analysis: r for r in reports}
        assert by_name["feature-impact"].headline.startswith("Not enough data to say")
        assert "Not enough data to say" in by_name["spans"].headline
        assert by_name["common-factor"].summary["significant"] == []
        for report in reports:
            check_headline(report)
    finally:
        warehouse.close()
