"""Timing: percentiles of each span type's duration per version, and which versions got slower.

Each version's median is compared with the previous version's (versions in the order
they were first seen) by a bootstrap interval of the ratio; a version is flagged as a
regression when the whole interval lies above ``1 + --threshold`` (default 10 %).
The interval is widened for users with many spans (``stats.quantile_design_effect``, at the
span type's overall median), and a
version is compared only with ``MIN_SPANS`` spans from ``MIN_USERS`` users on each side.
Above ``USER_SAMPLE`` spans of a type and version, that design effect and the number of users are
estimated from the spans of a sample of the users (``_users_sampled``).
"""

from __future__ import annotations

import math
from typing import Any

from tallystick.analysis import words
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.spans import PER_E, median_bin
from tallystick.analysis.stats import Weighted, bootstrap_ratio, quantile_design_effect_of_sums, widened_ratio
from tallystick.warehouse.dialect import kept_fraction

MIN_SPANS = 30
MIN_USERS = 5
USER_ID = '"userId"'
USER_SAMPLE = 25_000  # spans per type and version above which the design effect is estimated on a sample of users


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
    overall = _per_type(groups)
    cases = " ".join(f"WHEN {b.dialect.literal(t)} THEN {median_bin(h)}" for t, h in overall.items())
    cases90 = " ".join(
        f"WHEN {b.dialect.literal(t)} THEN {round(math.log(h.quantile(0.9)) * PER_E)}" for t, h in overall.items()
    )
    user = b.dialect.user_key()
    per_user = (
        f'SELECT "type" AS t, "applicationVersion" AS v, count(*) AS n, '
        f'sum(CASE WHEN {bin_sql} <= (CASE "type" {cases} ELSE 0 END) THEN 1 ELSE 0 END) AS c, '
        f'sum(CASE WHEN {bin_sql} <= (CASE "type" {cases90} ELSE 0 END) THEN 1 ELSE 0 END) AS c9 FROM spans '
        f"WHERE {b.child_where(str(span) if span else None)} AND {_users_sampled(b, groups)} "
        f'GROUP BY "type", "applicationVersion", {user}'
    )
    clusters, tail_clusters = _design_effects(b, per_user, {k: h.n for k, h in hists.items()})
    out = []
    regressions: list[dict[str, Any]] = []
    tail_regressions: list[dict[str, Any]] = []
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
                if not slower:
                    effects90 = (tail_clusters.get((t, version), 1.0), tail_clusters.get((t, previous[0]), 1.0))
                    found = _tail(t, (version, h), previous, ratio, effects=effects90, threshold=threshold)
                    tail_regressions += [found] if found else []
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
    # Versions with too few spans of some type to be compared.
    few = {k[1] for k, h in hists.items() if h.n < MIN_SPANS or clusters.get(k, (1.0, 0))[1] < MIN_USERS}
    latest = _latest({v for _, v in groups}, few, b.rank)
    summary = {
        "span_types": sorted({t for t, _ in groups}),
        "regressions": regressions,
        "tail_regressions": tail_regressions,
        "threshold": threshold,
        "comparisons": compared,
        "too_few": len(few),
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
            f"above {USER_SAMPLE:,} spans of a type and version, users and the widening are estimated from the "
            "spans of a sample of the users (users to three significant figures)",
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


def _per_type(groups: dict[tuple[str, str], list[tuple[int, int]]]) -> dict[str, Weighted]:
    """Each span type's durations over every version."""
    merged: dict[str, list[tuple[int, int]]] = {}
    for (t, _), bins in groups.items():
        merged.setdefault(t, []).extend(bins)
    return {t: Weighted.of_log_bins(bins, PER_E) for t, bins in sorted(merged.items())}


def _users_sampled(b: Bound, groups: dict[tuple[str, str], list[tuple[int, int]]]) -> str:
    """A condition keeping, of each (type, version) with more than ``USER_SAMPLE`` spans, the spans of a sample
    of its users (by user ID, the same on every engine) of about ``USER_SAMPLE`` spans; every span of the
    others. A design effect is a ratio of two variances of the same spans, so the sampled users' spans
    estimate it as all spans do, only less precisely (``tests/analysis/test_timing_sample.py``), at a
    fraction of the cost: one group per user, type and version was most of timing's time (4.95 million
    groups of 21.7 million spans in ``bench/analysis.py``)."""
    d = b.dialect
    by_type: dict[str, list[tuple[str, float]]] = {}
    for (t, v), bins in sorted(groups.items()):
        n = sum(c for _, c in bins)
        by_type.setdefault(t, []).append((f'"applicationVersion" = {d.literal(v)}', min(1.0, USER_SAMPLE / n)))
    # Per type first, then per version within it: most spans are dropped by one comparison of the user ID.
    whens = " ".join(
        f'WHEN "type" = {d.literal(t)} THEN {d.sample_by(USER_ID, fractions, every=True)}'
        for t, fractions in by_type.items()
    )
    return f"(CASE {whens} ELSE 1 = 1 END)"


def _design_effects(
    b: Bound, per_user: str, spans: dict[tuple[str, str], int]
) -> tuple[dict[tuple[str, str], tuple[float, int]], dict[tuple[str, str], float]]:
    """Per (type, version): the design effect at the median and the number of users; the design effect at the
    90th percentile. ``per_user``: SQL of rows (t, v, n, c, c9) per user, c and c9 their spans at or below
    the type's median and 90th percentile, of all users or of a sample of them (``_users_sampled``): then the
    number of users is estimated, as the sampled users over the fraction of user IDs sampled. ``spans``: all
    spans per (type, version)."""
    clusters: dict[tuple[str, str], tuple[float, int]] = {}
    tail_clusters: dict[tuple[str, str], float] = {}
    for t, v, g, n, c, nn, cc, nc, c9, cc9, nc9 in b.rows(
        f"SELECT t, v, count(*), sum(n), sum(c), sum(n * n), sum(c * c), sum(n * c), sum(c9), sum(c9 * c9), "
        f"sum(n * c9) FROM ({per_user}) x GROUP BY t, v"
    ):
        moments = (int(g), int(n), int(c or 0), int(nn), int(cc or 0), int(nc or 0))
        kept = kept_fraction(USER_SAMPLE / spans.get((str(t), str(v)), 1))
        users = int(g) if kept >= 1 else _estimated(int(g) / kept)
        clusters[(str(t), str(v))] = (quantile_design_effect_of_sums(moments), users)
        tail = (int(g), int(n), int(c9 or 0), int(nn), int(cc9 or 0), int(nc9 or 0))
        tail_clusters[(str(t), str(v))] = quantile_design_effect_of_sums(tail)
    return clusters, tail_clusters


def _estimated(x: float) -> int:
    """An estimated count, to three significant figures."""
    digits = max(0, len(str(round(x))) - 3)
    return int(round(x, -digits))


def _tail(
    span: str,
    now: tuple[str, Weighted],
    previous: tuple[str, Weighted],
    median_ratio: float,
    *,
    effects: tuple[float, float],
    threshold: float,
) -> dict[str, Any] | None:
    """The slowest tenth compared too: a slowdown in a part of the sessions (CI only, one system) may leave the
    median almost where it was. A tail regression when the 90th percentile's interval lies above the threshold."""
    h, before = now[1], previous[1]
    ratio, lo, hi = widened_ratio(bootstrap_ratio(h, before, 0.9, draws=1000, seed=4), effects)
    if lo <= 1 + threshold:
        return None
    return {
        "span": span,
        "version": now[0],
        "previous": previous[0],
        "p90_ratio": ratio,
        "ratio_lo": lo,
        "ratio_hi": hi,
        "median_ratio": median_ratio,
        "p90_ms": h.quantile(0.9),
        "previous_p90_ms": before.quantile(0.9),
    }


def _latest(versions: set[str], few: set[str], rank: dict[str, int]) -> str:
    """The newest version with enough spans to say something: a nightly with two spans is not "the latest"."""
    return max(versions - few or versions, key=lambda v: rank.get(v, -1))


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    latest = ", ".join(f"{t} {words.duration(ms)}" for t, ms in s["latest_median_ms"].items())
    now = f" Median durations in {s['latest_version']}: {latest}." if latest else ""
    if not s["comparisons"]:
        return f"Not enough data to say whether a version got slower: no two versions have enough spans.{now}"
    regressions = s["regressions"]
    tails = [
        f"{r['span']}'s slowest tenth got slower in {r['version']}: its 90th percentile is {r['p90_ratio']:.2f} times "
        f"{r['previous']}'s (95 % interval {r['ratio_lo']:.2f}–{r['ratio_hi']:.2f}; "
        f"{words.duration(r['p90_ms'])} against {words.duration(r['previous_p90_ms'])}), its median "
        f"{r['median_ratio']:.2f} times: a slowdown in only some of the sessions (in CI, or on one system, "
        f"say): comparing {r['span']} by attribute within {r['version']} tells which."
        for r in s.get("tail_regressions", [])[:2]
    ]
    if not regressions:
        if tails:
            return (
                f"No version's median got slower by more than {words.percent(s['threshold'])}. But "
                + " ".join(tails)
                + now
            )
        steps = f"{s['comparisons']} version step{'s' if s['comparisons'] != 1 else ''} compared"
        if s.get("too_few"):
            steps += f"; {words.count(s['too_few'])} with fewer than {MIN_SPANS} spans or {MIN_USERS} users not"
        return f"No version got slower by more than {words.percent(s['threshold'])} ({steps}).{now}"
    said = [
        f"{r['span']} got slower in {r['version']}: its median is {r['median_ratio']:.2f} times {r['previous']}'s "
        f"(95 % interval {r['ratio_lo']:.2f}–{r['ratio_hi']:.2f}; {words.duration(r['median_ms'])} against "
        f"{words.duration(r['previous_median_ms'])})."
        for r in regressions[:3]
    ]
    more = f" {len(regressions) - 3} more in the table." if len(regressions) > 3 else ""
    return " ".join(said) + more + "".join(f" {t}" for t in tails) + now
