"""From analyses to publishable sections: each built-in analysis's report, cut down to cells of >= k users.

Only analyses whose tables count *distinct users* per cell can be checked against a minimum
cell count: ``breakdown`` (users per attribute value, overall or per period), ``adoption``
(active users per version per day), ``distribution`` with ``per = "user"`` (users per
bucket) and ``feature-impact`` (users per group, and of them those with the outcome). The
others count sessions, events or spans, where one heavy user can fill a cell alone; asking
for them is refused with the reason (``Unpublishable``).

Every number a section holds (table rows, chart points, tooltips, the headline sentence)
comes from ``cells.protect`` or, for feature-impact's two-sided shares, the same ``Policy``;
nothing else of the report is kept.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tallystick.analysis import Report, run
from tallystick.analysis.scope import Bound
from tallystick.publish import counts
from tallystick.publish.cells import WITHHELD, Cell, Cells, Policy, percent, protect
from tallystick.publish.config import ChartConfig, check
from tallystick.publish.svg import OTHER_SERIES

_CATCH_ALL = "(other)"  # the label breakdown gives values beyond its top ones over time
MAX_LINES = 8  # named lines plus "other": as many as the palette has colours


@dataclass
class Section:
    """One published chart: its words, its protected cells (``bars``) or cells per period (``lines``)."""

    config: ChartConfig
    kind: str  # bars | lines
    cells: Cells = WITHHELD
    periods: list[tuple[date, Cells]] = field(default_factory=list)
    subject: str = "value"  # what a cell's label is, the data files' first column: "version", "shell", ...
    share: str = "share"  # what a cell's share is of: its period's users, or (feature-impact) its own group
    headline: str | None = None

    @property
    def empty(self) -> bool:
        return not self.cells.cells and not any(c.cells for _, c in self.periods)

    def columns(self) -> list[str]:
        base = [self.subject, "users", self.share, "fewer_than_k"]
        return ["period", *base] if self.kind == "lines" else base

    def rows(self) -> list[list[Any]]:
        """The data behind the chart, one row per published cell (users None: fewer than k)."""

        def row(c: Cell) -> list[Any]:
            return [c.label, c.users, None if c.share is None else round(c.share, 4), c.users is None]

        if self.kind == "lines":
            return [[p.isoformat(), *row(c)] for p, cells in self.periods for c in cells.cells]
        return [row(c) for c in self.cells.cells]

    def series(self) -> list[str]:
        """Labels of the lines, most users first, then ``OTHER_SERIES`` if any period has an "other"."""
        weight: dict[str, float] = defaultdict(float)
        other = False
        for _, cells in self.periods:
            for c in cells.cells:
                if c.other:
                    other = True
                else:
                    weight[c.label] += c.share or 0.0
        return sorted(weight, key=lambda v: (-weight[v], v)) + ([OTHER_SERIES] if other else [])


def _folded(per: dict[date, dict[str, int]]) -> tuple[set[str], dict[date, int]]:
    """The ``MAX_LINES - 1`` values with the highest peak (most users in one period: a new version counts as
    much as an old one), and per period the users of the rest (which go to "other": more lines than
    colours cannot be told apart)."""
    weight: dict[str, int] = defaultdict(int)
    for values in per.values():
        for v, n in values.items():
            weight[v] = max(weight[v], n)
    top = set(sorted(weight, key=lambda v: (-weight[v], v))[: MAX_LINES - 1])
    rest = {p: sum(n for v, n in values.items() if v not in top) for p, values in per.items()}
    return top, rest


def _by(rows: list[dict[str, Any]], key: str, value: str) -> dict[date, dict[str, int]]:
    out: dict[date, dict[str, int]] = defaultdict(dict)
    for r in rows:
        out[counts.as_date(r[key])][str(r[value])] = int(r["users"])
    return out


PERIODS = ("day", "week", "month")
NAMED_ENOUGH = 0.5  # the finest period in which named versions hold at least this share of the users is drawn


def _protected(
    per: dict[date, dict[str, int]], totals: dict[date, int], policy: Policy
) -> tuple[list[tuple[date, Cells]], float]:
    """Each period's protected cells (periods of fewer than k users left out), and the share of the drawn
    periods' users in named cells (from the published, rounded numbers)."""
    kept, rest = _folded(per)
    periods = [
        (p, protect({v: n for v, n in per[p].items() if v in kept}, totals.get(p, 0), policy, other=rest[p]))
        for p in sorted(per)
    ]
    periods = [(p, cells) for p, cells in periods if cells.total is not None]  # a period of < k users is not drawn
    total = sum(cells.total or 0 for _, cells in periods)
    named = sum(c.users or 0 for _, cells in periods for c in cells.named)
    return periods, named / total if total else 0.0


def _adoption(report: Report, b: Bound, chart: ChartConfig, policy: Policy) -> Section:
    """Versions per day; on small data, where most of a day's versions have fewer than k users and would be
    "other", per week or month instead: the finest period in which named versions hold ``NAMED_ENOUGH`` of
    the users (the text says which, and why)."""
    tried: list[tuple[str, list[tuple[date, Cells]], float, dict[date, dict[str, int]]]] = []
    for every in PERIODS:
        if every == "day":
            per = _by(report.table("daily").records(), "day", "version")
        else:
            per = counts.users_per_period_and_version(b, every)
        periods, named = _protected(per, counts.users_per_period(b, every), policy)
        tried.append((every, periods, named, per))
        if named >= NAMED_ENOUGH:
            break
    every, periods, named, per = max(tried, key=lambda t: (t[2] >= NAMED_ENOUGH, -PERIODS.index(t[0]), t[2]))
    section = Section(chart, "lines", periods=periods, subject="version")
    never = {v for values in per.values() for v in values} - {c.label for _, cells in periods for c in cells.named}
    note = f"Per {every}"
    if every != "day":
        note += f": per day, {percent(1 - tried[0][2])} of active users would be in other"
    if never:
        note += (
            f"; {len(never)} version{'s' if len(never) != 1 else ''} never had {policy.k} users in one {every} "
            "and appear only in other"
        )
    section.config = dataclasses.replace(chart, text=f"{chart.text} {note}.".strip())
    latest = next(((p, c) for p, c in reversed(periods) if c.top()), None)
    if latest:
        p, cells = latest
        top = cells.top()
        assert top is not None
        when = f"On {p.isoformat()}" if every == "day" else f"In the {every} from {p.isoformat()}"
        section.headline = f"{when}, {percent(top.share)} of active users ran version {top.label}."
    return section


def _breakdown(report: Report, b: Bound, chart: ChartConfig, policy: Policy) -> Section:
    attribute = str(report.summary["attribute"])
    kind = chart.chart or "bars"
    section = Section(chart, kind, subject=attribute)
    if kind == "bars":
        overall = {str(r["value"]): int(r["users"]) for r in report.table("overall").records()}
        section.cells = protect(overall, counts.users(b), policy)
        top = section.cells.top()
        if top:
            section.headline = f"{chart.title}: {top.label} is the most common, for {percent(top.share)} of users."
        return section
    every = str(chart.params.get("every") or "day")
    per = _by(report.table("over_time").records(), "period", "value")
    totals = counts.users_per_period(b, every)
    kept, rest = _folded({p: {v: n for v, n in values.items() if v != _CATCH_ALL} for p, values in per.items()})
    for p in sorted(per):
        values = {v: n for v, n in per[p].items() if v in kept}
        cells = protect(values, totals.get(p, 0), policy, other=rest[p] + per[p].get(_CATCH_ALL, 0))
        if cells.total is not None:  # a period of < k users is not drawn, not even its date
            section.periods.append((p, cells))
    latest = next(((p, c) for p, c in reversed(section.periods) if c.top()), None)
    if latest:
        p, cells = latest
        top = cells.top()
        assert top is not None
        section.headline = (
            f"{chart.title}: in the {every} from {p.isoformat()}, {top.label} was the most common, "
            f"for {percent(top.share)} of users."
        )
    return section


def _distribution(report: Report, b: Bound, chart: ChartConfig, policy: Policy) -> Section:
    rows = report.table("histogram").records()
    order = [str(r["range"]) for r in rows]
    # Out of every user in scope, as the other charts, with those without a value in "other": a total of
    # only the users with a value would let a reader subtract one from the other.
    total = counts.users(b)
    without = max(0, total - int(report.summary["count"]))
    cells = protect({str(r["range"]): int(r["users"]) for r in rows}, total, policy, other=without)
    named = sorted(cells.named, key=lambda c: order.index(c.label))
    cells = Cells((*named, *(c for c in cells.cells if c.other)), cells.total)
    section = Section(chart, "bars", cells=cells, subject="range")
    top = cells.top()
    if top and cells.total:
        biggest = max(named, key=lambda c: c.users or 0)
        section.headline = (
            f"{chart.title}: {biggest.label} is the commonest range, for {percent(biggest.share)} of users."
        )
    return section


def _feature_impact(report: Report, b: Bound, chart: ChartConfig, policy: Policy) -> Section:
    """Per group (feature on, otherwise): its users and the share of them who had the outcome. The share is
    published only when both those with and those without the outcome are at least k users (else the share
    would give away the few on one side); a group under k users is left out."""
    k = policy.k
    cells = []
    for r in report.table("groups").records():
        users, hit = int(r["users"]), int(r["users_with_outcome"])
        if users < k:
            continue
        if hit < k or users - hit < k:
            cells.append(Cell(str(r["group"]), None, None))
        else:
            cells.append(Cell(str(r["group"]), policy.round(users), policy.round(hit) / policy.round(users)))
    total = protect({}, counts.users(b), policy).total
    outcome = str(report.summary["outcome"])
    if not chart.text:
        chart = dataclasses.replace(chart, text=f"The share of each group's users who had {outcome} at least once.")
    section = Section(chart, "bars", Cells(tuple(cells), total), subject="group", share=f"share_with_{outcome}")
    if len(cells) == 2 and all(c.share is not None for c in cells):
        on, off = cells
        section.headline = (
            f"{chart.title}: {percent(on.share)} of users with {on.label} had {outcome}, "
            f"against {percent(off.share)} of the others."
        )
    return section


def build(b: Bound, chart: ChartConfig, policy: Policy) -> Section:
    """Run ``chart``'s analysis on ``b``'s scope and keep only what ``policy`` lets through."""
    check(chart)
    params = dict(chart.params)
    if chart.analysis == "distribution":
        params.setdefault("per", "user")
    if chart.analysis == "breakdown" and chart.chart == "lines":
        params.setdefault("every", "week")
    report = run(b.warehouse, chart.analysis, b.scope, **params)
    chart = dataclasses.replace(chart, params=params)
    builders = {
        "adoption": _adoption,
        "breakdown": _breakdown,
        "distribution": _distribution,
        "feature-impact": _feature_impact,
    }
    builder = builders[chart.analysis]
    return builder(report, b, chart, policy)
