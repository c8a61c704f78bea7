"""Where the update nudge works (``responders``, in the nudges report): named where it was planted, on every
engine, and seldom where nothing was."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis import reviewed
from analysis.conftest import load
from tallystick.analysis import Scope, responders, run, words
from tallystick.analysis.scope import bind
from tallystick.warehouse import open_warehouse, rollup
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.dialect import kept_fraction


def _fish(seed: int) -> list[dict[str, Any]]:
    return reviewed.nudged(seed, lambda a: a["shell"] == "fish", 0.4)


def _windows(seed: int) -> list[dict[str, Any]]:
    return reviewed.nudged(seed, lambda a: a["operatingSystem"] == "Windows", 0.4)


def _but_windows(seed: int) -> list[dict[str, Any]]:
    return reviewed.nudged(seed, lambda a: a["operatingSystem"] != "Windows", 0.4)


def _but_ci(seed: int) -> list[dict[str, Any]]:
    return reviewed.nudged(seed, lambda a: not a["isCI"], 0.4)


def _everyone(seed: int) -> list[dict[str, Any]]:
    return reviewed.nudged(seed, lambda a: True, 0.4)


def _nobody(seed: int) -> list[dict[str, Any]]:
    return reviewed.nudged(seed, lambda a: True, 0.0)


def _named(found: responders.Found) -> tuple[str, ...]:
    return tuple(f"{n.direction} {n.label()}" for n in found.named)


KINDS: list[tuple[str, Callable[[int], list[dict[str, Any]]], range, tuple[str, ...]]] = [
    ("fish only", _fish, range(100, 110), ("for shell=fish",)),
    ("Windows only", _windows, range(200, 210), ("for operatingSystem=Windows",)),
    ("all but Windows", _but_windows, range(500, 510), ("except operatingSystem=Windows",)),
    ("all but CI", _but_ci, range(700, 710), ("except isCI=true",)),
    ("everyone alike", _everyone, range(300, 320), ()),
    ("nobody", _nobody, range(400, 420), ()),
]


def test_planted_values_are_named_and_nulls_seldom() -> None:
    """Over seeded populations (no warehouse: the engines only count, checked below): the value the nudge
    works for is named alone in each of 10 fish-only and 10 Windows-only populations, and the one it works
    for everyone except in each of 10 all-but-Windows and 10 all-but-CI ones (not "works for Linux, also
    Darwin"); where everyone responds alike or nobody does (40 populations together), a value is named in
    at most 3 (``bench/nudge_rates.py`` runs 40 of each kind)."""
    named: dict[str, Counter[tuple[str, ...]]] = {}
    for kind, build, seeds, planted in KINDS:
        named[kind] = Counter(_named(responders.find(*reviewed.nudge_cells(build(seed)))) for seed in seeds)
        if planted:
            assert named[kind] == {planted: len(seeds)}, named
    false = sum(n for kind in ("everyone alike", "nobody") for labels, n in named[kind].items() if labels)
    print(f"named where nothing was planted: {false} of 40", dict(named))
    assert false <= 3, named


def test_a_chance_correlate_of_fish_is_explained_away() -> None:
    """A value only going along with the real one is not named: in fish-only populations, another attribute
    that differs among nudged users by chance (seeds 101 and 108: gitVersion, pythonVersion) no longer
    differs without the fish users, and is listed as explained by shell=fish."""
    explained = 0
    for seed in range(100, 110):
        found = responders.find(*reviewed.nudge_cells(_fish(seed)))
        assert _named(found) == ("for shell=fish",)
        for t in found.tested:
            if t.attribute != "shell" and t.q < responders.ALPHA:
                assert found.explained[t.attribute] == "shell=fish"
                explained += 1
    assert explained >= 2


POPULATIONS = {
    "fish": (_fish, 24),
    "windows": (_windows, 201),
    "but-windows": (_but_windows, 500),
    "everyone": (_everyone, 300),
    "nobody": (_nobody, 400),
}


@pytest.fixture(scope="module")
def populations() -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, (build, seed) in POPULATIONS.items():
        out[name] = build(seed)
        for s in out[name]:
            s["applicationId"] = f"nudge-{name}"
    return out


@pytest.fixture(scope="module", params=["duckdb", "duckdb-rollup", "clickhouse", "chdb"])
def engine(
    request: pytest.FixtureRequest, populations: dict[str, list[dict[str, Any]]], tmp_path_factory: Any
) -> Iterator[Warehouse]:
    """The populations on DuckDB (from ``sessions``, and with its derived tables), ClickHouse 18.16, chDB."""
    if request.param.startswith("duckdb"):
        spec = str(Path(tmp_path_factory.mktemp("responders")) / "w.duckdb")
    elif request.param == "clickhouse":
        spec = request.getfixturevalue("clickhouse_server").spec("responders")
    else:
        spec = f"chdb://{request.getfixturevalue('chdb_dir')}?database=responders"
    warehouse = open_warehouse(spec)
    load(warehouse, [s for p in populations.values() for s in p])
    if request.param == "duckdb-rollup":
        rollup.refresh(warehouse)
    yield warehouse
    drop = getattr(warehouse, "drop_database", None)
    if drop:
        drop()
    warehouse.close()


@pytest.mark.parametrize("name", list(POPULATIONS))
def test_every_engine_counts_as_python_and_says_it(
    engine: Warehouse, populations: dict[str, list[dict[str, Any]]], name: str
) -> None:
    """On each engine the per-attribute tests are those of the cells worked out in Python, to the last
    digit, and the headline says where the nudge works in one sentence, or nothing where it works alike."""
    report = run(engine, "nudges", Scope(f"nudge-{name}"))
    expected = responders.find(*reviewed.nudge_cells(populations[name]))
    table = next(t for t in report.tables if t.name == "by_attribute")
    assert [(r[0], r[1], r[3]) for r in table.rows] == [
        (t.attribute, len(t.by_value), t.p) for t in sorted(expected.tested, key=lambda t: t.p)
    ]
    s = report.summary
    assert s["works_for"] == responders.summary(expected)["works_for"]
    assert s["works_except_for"] == responders.summary(expected)["works_except_for"]
    headline = report.headline or ""
    if name == "fish":
        w = s["works_for"][0]
        assert (w["attribute"], w["value"]) == ("shell", "fish")
        assert "The nudge works for shell=fish users: " in headline
        assert f"{words.percent(w['upgraded_share'])} of them upgraded" in headline
    elif name == "windows":
        assert [(w["attribute"], w["value"]) for w in s["works_for"]] == [("operatingSystem", "Windows")]
        assert "The nudge works for operatingSystem=Windows users" in headline
    elif name == "but-windows":
        assert s["works_for"] == []
        w = s["works_except_for"][0]
        assert [(w["attribute"], w["value"]) for w in s["works_except_for"]] == [("operatingSystem", "Windows")]
        assert w["upgraded_share"] + responders.MIN_DIFFERENCE <= w["others_upgraded_share"]
        assert "The nudge works except for operatingSystem=Windows users: " in headline
        assert f"against {words.percent(w['others_upgraded_share'])} of the others." in headline
        assert next(r for r in table.rows if r[0] == "operatingSystem")[5] == "except Windows"
    else:
        assert s["works_for"] == s["works_except_for"] == []
        assert "works for" not in headline and "works except" not in headline


def test_the_attributes_are_read_from_nudged_sessions_alone(
    engine: Warehouse, populations: dict[str, list[dict[str, Any]]]
) -> None:
    """Which attributes to split by is read from a sample of the nudged sessions only: the queries return no
    more rows than there are nudged sessions (plus their count), not as many others besides."""
    b = bind(engine, Scope("nudge-everyone"))
    returned: list[int] = []
    read = b.rows

    def rows(sql: str) -> list[tuple[Any, ...]]:
        out = read(sql)
        returned.append(len(out))
        return out

    setattr(b, "rows", rows)  # noqa: B010 - counts what the real engine returns
    names = responders.attributes(b, "UpdateNudgeShown")
    nudged = [s for s in populations["everyone"] if s["events"]]
    assert "shell" in names and "operatingSystem" in names
    assert len(nudged) < len(populations["everyone"]) - 500  # others to leave unread
    assert sum(returned) <= len(nudged) + 1, returned


def test_a_sample_of_many_users_is_counted_alike_on_every_engine(
    engine: Warehouse, populations: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``responders.USERS`` nudged users, the cells are those of the users whose ID is below the
    sample's bound, worked out in Python from all sessions (ranks and attributes as before) and counted for
    those users only; the report says it looked at a sample, and still names shell=fish."""
    sessions = populations["fish"]
    nudged = {s["userId"] for s in sessions if any(e["type"] == "UpdateNudgeShown" for e in s["events"])}
    monkeypatch.setattr(responders, "USERS", len(nudged) // 2)
    fraction = kept_fraction(responders.USERS / len(nudged))
    bound = format(round(fraction * 65536), "04x")
    cells, names = reviewed.nudge_cells(sessions, lambda user: user < bound)
    assert 0 < sum(cells.values()) < len(nudged)
    report = run(engine, "nudges", Scope("nudge-fish"))
    expected = responders.find(cells, names)
    table = next(t for t in report.tables if t.name == "by_attribute")
    assert [(r[0], r[1], r[3]) for r in table.rows] == [
        (t.attribute, len(t.by_value), t.p) for t in sorted(expected.tested, key=lambda t: t.p)
    ]
    assert report.summary["works_for"] == responders.summary(expected)["works_for"]
    assert [(w["attribute"], w["value"]) for w in report.summary["works_for"]] == [("shell", "fish")]
    assert report.summary["works_for_user_fraction"] == round(fraction, 6)
    assert any(f"of the {words.count(len(nudged))} nudged users, by user ID" in note for note in report.notes)
