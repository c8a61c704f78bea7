"""Timing: percentiles of each span type's duration per version, and which versions got slower.

Each version's median is compared with the previous version's (versions in the order
they were first seen) by a bootstrap interval of the ratio; a version is flagged as a
regression when the whole interval lies above ``1 + --threshold`` (default 10 %).
The interval is widened for users with many spans (``stats.quantile_design_effect``, at the
span type's overall median), and a
version is compared only with ``MIN_SPANS`` spans from ``MIN_USERS`` users on each side.
"""

from __future__ import annotations

from typing import Any

from tallystick.analysis import words
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.spans import PER_E, median_bin
from tallystick.analysis.stats import Weighted, bootstrap_ratio, quantile_design_effect_of_sums, widened_ratio

MIN_SPANS = 30
MIN_USERS = 5


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
    hists = {k: Weighted.of_log_bins(bins, PER_E) for k, bins in groups.items()}
    # Users per (type, version) and how much their repeated spans widen each median's uncertainty: one scan
    # grouped by user, comparing each span with its type's overall median (a CASE over the few types, not over
    # every type and version: 10 times cheaper on a million sessions).
    merged: dict[str, list[tuple[int, int]]] = {}
    for (t, _), bins in groups.items():
        merged.setdefault(t, []).extend(bins)
    cases = " ".join(
        f"WHEN {b.dialect.literal(t)} THEN {median_bin(Weighted.of_log_bins(bins, PER_E))}"
        for t, bins in sorted(merged.items())
    )
    user = b.dialect.user_key()
    per_user = (
        f'SELECT "type" AS t, "applicationVersion" AS v, count(*) AS n, '
        f'sum(CASE WHEN {bin_sql} <= (CASE "type" {cases} ELSE 0 END) THEN 1 ELSE 0 END) AS c FROM spans '
        f'WHERE {b.child_where(str(span) if span else None)} GROUP BY "type", "applicationVersion", {user}'
    )
    clusters: dict[tuple[str, str], tuple[float, int]] = {}
    for t, v, g, n, c, nn, cc, nc in b.rows(
        f"SELECT t, v, count(*), sum(n), sum(c), sum(n * n), sum(c * c), sum(n * c) FROM ({per_user}) x GROUP BY t, v"
    ):
        moments = (int(g), int(n), int(c or 0), int(nn), int(cc or 0), int(nc or 0))
        clusters[(str(t), str(v))] = (quantile_design_effect_of_sums(moments), int(g))
    out = []
    regressions: list[dict[str, Any]] = []
    compared = 0
    for t in sorted({t for t, _ in groups}):
        previous: tuple[str, Weighted] | None = None
        for version in sorted({v for tt, v in groups if tt == t}, key=lambda v: b.rank.get(v, -1)):
            h = hists[(t, version)]
            deff, users = clusters.get((t, version), (1.0, 0))
            row: list[Any] = [t, version, h.n, users, *(round(h.quantile(q), 1) for q in (0.5, 0.9, 0.99))]
            enough = h.n >= MIN_SPANS and users >= MIN_USERS
            if previous is not None and enough:
                before = clusters.get((t, previous[0]), (1.0, 0))[0]
                ratio, lo, hi = widened_ratio(bootstrap_ratio(h, previous[1], 0.5, draws=1000, seed=3), (deff, before))
                slower = lo > 1 + threshold
                row += [previous[0], round(ratio, 4), round(lo, 4), round(hi, 4), slower]
                compared += 1
                if slower:
                    regressions.append(
                        {
                            "span": t,
                            "version": version,
                            "previous": previous[0],
                            "median_ratio": ratio,
                            "ratio_lo": lo,
                            "ratio_hi": hi,
                            "median_ms": h.quantile(0.5),
                            "previous_median_ms": previous[1].quantile(0.5),
                        }
                    )
            else:
                row += [None, None, None, None, False]
            out.append(row)
            if enough:
                previous = (version, h)
    columns = [
        "span",
        "version",
        "spans",
        "users",
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
    latest = max((v for _, v in groups), key=lambda v: b.rank.get(v, -1))
    summary = {
        "span_types": sorted({t for t, _ in groups}),
        "regressions": regressions,
        "threshold": threshold,
        "comparisons": compared,
        "latest_version": latest,
        "latest_median_ms": {t: hists[(t, v)].quantile(0.5) for t, v in sorted(hists) if v == latest},
    }
    return Report(
        analysis="timing",
        title="How long do operations take, per version?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary=summary,
        tables=[table],
        notes=[
            "median_ratio compares a version's median with the previous version's (95 % bootstrap interval, "
            "widened for users with many spans)",
            f"regression: the whole interval is above {1 + threshold:g}; "
            f"versions with fewer than {MIN_SPANS} spans or {MIN_USERS} users are not compared",
        ],
        chart=line_chart(
            table,
            "version",
            "p50_ms",
            "span",
            title="Median duration per version (log scale: every operation on one picture)",
            x_type="ordinal",
            x_title="version",
            y_title="median duration (ms)",
            color_title="operation",
            log=True,
            points=True,
        ),
        headline=headline(summary),
    )


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    latest = ", ".join(f"{t} {words.duration(ms)}" for t, ms in s["latest_median_ms"].items())
    now = f" Median durations in {s['latest_version']}: {latest}." if latest else ""
    if not s["comparisons"]:
        return f"Not enough data to say whether a version got slower: no two versions have enough spans.{now}"
    regressions = s["regressions"]
    if not regressions:
        return (
            f"No version got slower by more than {words.percent(s['threshold'])} "
            f"({s['comparisons']} version steps compared).{now}"
        )
    said = [
        f"{r['span']} got slower in {r['version']}: its median is {r['median_ratio']:.2f} times {r['previous']}'s "
        f"(95 % interval {r['ratio_lo']:.2f}–{r['ratio_hi']:.2f}; {words.duration(r['median_ms'])} against "
        f"{words.duration(r['previous_median_ms'])})."
        for r in regressions[:3]
    ]
    more = f" {len(regressions) - 3} more in the table." if len(regressions) > 3 else ""
    return " ".join(said) + more + now
