"""Timing: percentiles of each span type's duration per version, and which versions got slower.

Each version's median is compared with the previous version's (versions in the order
they were first seen) by a bootstrap interval of the ratio; a version is flagged as a
regression when the whole interval lies above ``1 + --threshold`` (default 10 %).
"""

from __future__ import annotations

from typing import Any

from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.spans import PER_E
from tallystick.analysis.stats import Weighted, bootstrap_ratio

MIN_SPANS = 30


def run(b: Bound, params: dict[str, Any]) -> Report:
    span = params.get("span")
    if span:
        b.require_type("spans", str(span), with_filters=False)  # cheap; the filters' answer is in the rows
    threshold = float(params.get("threshold") or 0.10)
    bin_sql = b.dialect.log_bin('"durationMs"', PER_E)
    rows = b.rows(
        f'SELECT "type", "applicationVersion", {bin_sql} AS bin, count(*) FROM spans '
        f'WHERE {b.child_where(str(span) if span else None)} GROUP BY "type", "applicationVersion", {bin_sql}'
    )
    if not rows:
        if span:
            b.require_type("spans", str(span))
        raise b.empty("spans")
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for t, v, bin_, n in rows:
        groups.setdefault((str(t), str(v)), []).append((int(bin_), int(n)))
    out = []
    regressions = []
    for t in sorted({t for t, _ in groups}):
        previous: tuple[str, Weighted] | None = None
        for version in sorted({v for tt, v in groups if tt == t}, key=lambda v: b.rank.get(v, -1)):
            h = Weighted.of_log_bins(groups[(t, version)], PER_E)
            row: list[Any] = [t, version, h.n, *(round(h.quantile(q), 1) for q in (0.5, 0.9, 0.99))]
            if previous is not None and h.n >= MIN_SPANS and previous[1].n >= MIN_SPANS:
                ratio, lo, hi = bootstrap_ratio(h, previous[1], 0.5, draws=1000, seed=3)
                slower = lo > 1 + threshold
                row += [previous[0], round(ratio, 4), round(lo, 4), round(hi, 4), slower]
                if slower:
                    regressions.append({"span": t, "version": version, "previous": previous[0], "median_ratio": ratio})
            else:
                row += [None, None, None, None, False]
            out.append(row)
            if h.n >= MIN_SPANS:
                previous = (version, h)
    columns = [
        "span",
        "version",
        "spans",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "compared_with",
        "median_ratio",
        "ratio_lo",
        "ratio_hi",
        "regression",
    ]
    table = Table("by_version", columns, out)
    return Report(
        analysis="timing",
        title="How long do operations take, per version?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={"span_types": sorted({t for t, _ in groups}), "regressions": regressions, "threshold": threshold},
        tables=[table],
        notes=[
            "median_ratio compares a version's median with the previous version's (95 % bootstrap interval)",
            f"regression: the whole interval is above {1 + threshold:g}; "
            f"versions with fewer than {MIN_SPANS} spans are not compared",
        ],
        chart=line_chart(table, "version", "p50_ms", "span", title="Median duration per version", x_type="ordinal"),
    )
