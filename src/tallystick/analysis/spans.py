"""Span comparison: does an attribute change how long an operation takes?

Durations of one span type are split by an attribute's value (the span's own
attribute if spans carry it, else the session's). For each value: median and p90,
and their ratio to the baseline value's, with a percentile bootstrap interval.
Durations are binned on a log scale in SQL (0.5 % wide bins), so the answer is the
same on every engine and costs one grouped scan however many spans there are.
"""

from __future__ import annotations

from typing import Any

from tallystick.analysis.errors import BadParameter
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import Weighted, bootstrap_ratio

PER_E = 200  # log bins per factor e: 0.5 % wide
MAX_VALUES = 20


def histograms(b: Bound, span: str, attribute: str | None) -> dict[str, Weighted]:
    """Duration histograms of ``span`` per attribute value (as text); one group ``all`` without attribute."""
    d = b.dialect
    bin_sql = d.log_bin('"durationMs"', PER_E)
    where = b.child_where(span)
    if attribute is None:
        rows = b.rows(f"SELECT 'all', {bin_sql} AS bin, count(*) FROM spans WHERE {where} GROUP BY {bin_sql}")
    else:  # the spans' own attribute if any span in scope has it (one query tells), else their sessions'
        value = b.attr(attribute)
        sql = f"SELECT {value} AS v, {bin_sql} AS bin, count(*) FROM spans WHERE {where} GROUP BY {value}, {bin_sql}"
        rows = b.rows(sql)
    if attribute is not None and rows and all(v is None for v, _, _ in rows):
        b.require_attribute(attribute)
        typed = b.reads_typed(attribute)  # the attribute's own column, not the JSON (warehouse/rollup.py)
        value = b.typed_attr(attribute) if typed else b.attr(attribute)
        # The join with the sessions in scope does the filtering: the spans need no filter of their own.
        where = b.child_where(span, with_filters=False)
        sql = (
            f'SELECT s.v, x.bin, count(*) FROM (SELECT "sessionId" AS id, {bin_sql} AS bin FROM spans WHERE {where}) x '
            f'JOIN (SELECT "sessionId" AS id, {value} AS v FROM {b.sessions_table(typed)} '
            f"WHERE {b.sessions_where(typed=typed)}) s ON x.id = s.id GROUP BY s.v, x.bin"
        )
        rows = b.rows(sql)
    groups: dict[str, list[tuple[int, int]]] = {}
    for v, bin_, n in rows:
        groups.setdefault("(none)" if v is None else str(v), []).append((int(bin_), int(n)))
    return {v: Weighted.of_log_bins(bins, PER_E) for v, bins in groups.items()}


def run(b: Bound, params: dict[str, Any]) -> Report:
    span = params.get("span")
    attribute = params.get("attribute")
    if not span or not attribute:
        raise BadParameter("name the span type with --span and the attribute to split by with --attribute")
    b.require_type("spans", str(span), with_filters=False)  # cheap; the filters' answer is in the histograms
    groups = histograms(b, str(span), str(attribute))
    if not groups:
        b.require_type("spans", str(span))
    if len(groups) > MAX_VALUES:
        raise BadParameter(f"{attribute!r} has {len(groups)} values; compare an attribute with at most {MAX_VALUES}")
    baseline = params.get("baseline")
    if baseline is None:
        baseline = "false" if "false" in groups else max(groups, key=lambda v: groups[v].n)
    baseline = str(baseline)
    if baseline not in groups:
        raise BadParameter(f"no {span} span has {attribute}={baseline}; values there: {', '.join(sorted(groups))}")
    confidence = float(params.get("confidence") or 0.95)
    base = groups[baseline]
    rows = []
    ratios: dict[str, dict[str, Any]] = {}
    for value in sorted(groups, key=lambda v: (v != baseline, -groups[v].n)):
        g = groups[value]
        row: list[Any] = [value, g.n, round(g.quantile(0.5), 1), round(g.quantile(0.9), 1)]
        if value == baseline:
            row += [1.0, None, None, 1.0, None, None]
        else:
            med = bootstrap_ratio(g, base, 0.5, seed=1, confidence=confidence)
            p90 = bootstrap_ratio(g, base, 0.9, seed=2, confidence=confidence)
            row += [round(x, 4) for x in (*med, *p90)]
            ratios[value] = {"median_ratio": med, "p90_ratio": p90, "n": g.n}
        rows.append(row)
    columns = [
        "value",
        "spans",
        "median_ms",
        "p90_ms",
        "median_ratio",
        "median_lo",
        "median_hi",
        "p90_ratio",
        "p90_lo",
        "p90_hi",
    ]
    table = Table("by_value", columns, rows)
    return Report(
        analysis="spans",
        title=f"Does {attribute} change how long {span} takes?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "span": span,
            "attribute": attribute,
            "baseline": baseline,
            "confidence": confidence,
            "ratios": ratios,
        },
        tables=[table],
        notes=[
            f"ratios are to {attribute}={baseline}; below 1 is faster; "
            f"intervals are {confidence:.0%} percentile bootstrap",
            "durations are binned on a log scale (0.5 % wide), so medians are exact to within 0.5 %",
            "spans of one user are not independent: many spans from a few users make the interval too narrow",
        ],
        chart=bar_chart(table, "value", "median_ms", title=f"Median {span} duration by {attribute}"),
    )
