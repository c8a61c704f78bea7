"""Span comparison: does an attribute change how long an operation takes?

Durations of one span type are split by an attribute's value (the span's own
attribute if spans carry it, else the session's). For each value: median and p90,
and their ratio to the baseline value's, with a percentile bootstrap interval.
Durations are binned on a log scale in SQL (0.5 % wide bins), so the answer is the
same on every engine and costs one grouped scan however many spans there are.
"""

from __future__ import annotations

import math
from typing import Any

from tallystick.analysis import confounding, words
from tallystick.analysis.common_factor import all_decoded, decoded_texts, typed_columns
from tallystick.analysis.errors import BadParameter
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.scope import confidence as confidence_of
from tallystick.analysis.stats import Weighted, bootstrap_ratio, quantile_design_effect_of_sums, widened_ratio
from tallystick.schema import _rules

PER_E = 200  # log bins per factor e: 0.5 % wide
MAX_VALUES = 20
MIN_USERS = 5
MIN_SPANS = 20
SAMPLE = 4000  # spans whose sessions' attributes are read to check for confounding


def _sampled(b: Bound, span: str, attribute: str, spans: int) -> list[tuple[str, int, int, dict[str, str]]]:
    """About ``SAMPLE`` spans in scope (by session ID) as (attribute value as text, log bin, user, their
    session's attributes as text): the value is the span's own if it has one, else its session's."""
    d = b.dialect
    sample = d.sample('"sessionId"', SAMPLE / max(1, spans))
    own = b.attr(attribute)
    bin_sql = d.log_bin('"durationMs"', PER_E)
    spans_sql = (
        f'SELECT "sessionId" AS id, {own} AS v, {bin_sql} AS bin, {d.user_key()} AS u FROM spans '
        f"WHERE {b.child_where(span, with_filters=False)} AND {sample}"
    )
    sessions = _sampled_typed(b, spans_sql, sample)
    if sessions is None:
        rows = b.rows(
            f"SELECT x.v, x.bin, x.u, s.a FROM ({spans_sql}) x "
            f'JOIN (SELECT "sessionId" AS id, attributes AS a FROM sessions WHERE {b.sessions_where()} AND {sample}) '
            "s ON x.id = s.id"
        )
        sessions = [(v, bin_, u, decoded_texts(a)) for v, bin_, u, a in rows]
    out = []
    for v, bin_, u, attrs in sessions:
        value = _label(v) if v is not None else attrs.get(attribute, "(none)")
        out.append((value, int(bin_), int(u), attrs))
    return out


def _sampled_typed(b: Bound, spans_sql: str, sample: str) -> list[tuple[Any, Any, Any, dict[str, str]]] | None:
    """``_sampled``'s rows with their sessions' attributes from ``sessions_typed``'s text columns instead of the
    JSON (a parse per sampled session), when it can answer as the JSON would (``common_factor._sample_typed``);
    else None."""
    typed = typed_columns(b, "s.")
    if typed is None:
        return None
    names, columns, picked = typed
    rows = b.rows(
        f"SELECT x.v, x.bin, x.u{picked} FROM ({spans_sql}) x "
        f'JOIN (SELECT "sessionId" AS id{columns} FROM {b.sessions_table(True)} '
        f"WHERE {b.sessions_where(typed=True)} AND {sample}) s ON x.id = s.id"
    )
    out = [(r[0], r[1], r[2], {n: str(t) for n, t in zip(names, r[3:], strict=True) if t is not None}) for r in rows]
    return out if all_decoded(t for *_, attrs in out for t in attrs.values()) else None


def _own(b: Bound, span: str, attribute: str) -> str:
    """SQL of the spans in scope as rows ``(v, bin, u)``: the span's own attribute value, log bin of the
    duration, user."""
    d = b.dialect
    bin_sql = d.log_bin('"durationMs"', PER_E)
    return (
        f"SELECT {b.attr(attribute)} AS v, {bin_sql} AS bin, {d.user_key()} AS u FROM spans WHERE {b.child_where(span)}"
    )


def _from_sessions(b: Bound, span: str, attribute: str) -> str:
    """As ``_own``, with the value of the span's session's attribute (for spans that do not carry it)."""
    d = b.dialect
    bin_sql = d.log_bin('"durationMs"', PER_E)
    b.require_attribute(attribute)
    typed = b.reads_typed(attribute)  # the attribute's own column, not the JSON (warehouse/rollup.py)
    value = b.typed_attr(attribute) if typed else b.attr(attribute)
    # The join with the sessions in scope does the filtering: the spans need no filter of their own.
    where = b.child_where(span, with_filters=False)
    return (
        f'SELECT s.v AS v, x.bin AS bin, x.u AS u FROM (SELECT "sessionId" AS id, {bin_sql} AS bin, '
        f"{d.user_key()} AS u FROM spans WHERE {where}) x "
        f'JOIN (SELECT "sessionId" AS id, {value} AS v FROM {b.sessions_table(typed)} '
        f"WHERE {b.sessions_where(typed=typed)}) s ON x.id = s.id"
    )


def histograms(b: Bound, source: str) -> dict[str, Weighted]:
    """Duration histograms per attribute value (as text) of the rows of ``source`` (see ``_own``)."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for v, bin_, n in b.rows(f"SELECT v, bin, count(*) FROM ({source}) t GROUP BY v, bin"):
        groups.setdefault(_label(v), []).append((int(bin_), int(n)))
    return {v: Weighted.of_log_bins(bins, PER_E) for v, bins in groups.items()}


def _label(v: Any) -> str:
    return "(none)" if v is None else str(v)


def design_effects(b: Bound, source: str, column: str, medians: dict[Any, float]) -> dict[str, tuple[float, int]]:
    """Each group's ``stats.quantile_design_effect`` at its median (how much its users' repeated spans widen
    the median's uncertainty) and its number of users. ``medians``: the median's log bin per value of
    ``column`` (SQL values)."""
    d = b.dialect
    if not medians:
        return {}
    cases = " ".join(
        f"WHEN {column} {'IS NULL' if v is None else '= ' + d.literal(v)} THEN {int(m)}" for v, m in medians.items()
    )
    # Sums over users added up in SQL (one row per group back, exact integers: the same on every engine), not a
    # row per user: 246,000 rows read into Python took most of the time on 10 million sessions.
    rows = b.rows(
        "SELECT v, count(*), sum(n), sum(c), sum(n * n), sum(c * c), sum(n * c) FROM ("
        f"SELECT {column} AS v, u, count(*) AS n, sum(CASE WHEN bin <= (CASE {cases} ELSE 0 END) THEN 1 ELSE 0 END) "
        f"AS c FROM ({source}) t GROUP BY {column}, u) x GROUP BY v"
    )
    out: dict[str, tuple[float, int]] = {}
    for v, g, n, c, nn, cc, nc in rows:
        sums = (int(g), int(n), int(c or 0), int(nn), int(cc or 0), int(nc or 0))
        out[_label(v)] = (quantile_design_effect_of_sums(sums), int(g))
    return out


def median_bin(h: Weighted) -> int:
    return round(math.log(h.quantile(0.5)) * PER_E)


def run(b: Bound, params: dict[str, Any]) -> Report:
    span = params.get("span")
    attribute = params.get("attribute")
    if not span or not attribute:
        raise BadParameter("name the span type with --span and the attribute to split by with --attribute")
    if not _rules.is_attribute_name(str(attribute)):  # before any SQL is built with it
        raise BadParameter(f"{attribute!r} is not an attribute name (letters and digits, starting with a letter)")
    confidence = confidence_of(params)
    b.require_type("spans", str(span), with_filters=False)  # cheap; the filters' answer is in the histograms
    # The span's own attribute when any span in scope has it, else its session's: the first histogram tells.
    source = _own(b, str(span), str(attribute))
    groups = histograms(b, source)
    if set(groups) == {"(none)"}:
        source = _from_sessions(b, str(span), str(attribute))
        groups = histograms(b, source)
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
    base = groups[baseline]
    clusters = design_effects(
        b, source, "v", {(None if v == "(none)" else v): median_bin(h) for v, h in groups.items()}
    )
    # Every value is compared with one baseline: a Bonferroni correction keeps the chance that any of the
    # intervals misses its truth at 1 − confidence.
    each = 1 - (1 - confidence) / max(1, len(groups) - 1)
    rows = []
    ratios: dict[str, dict[str, Any]] = {}
    for value in sorted(groups, key=lambda v: (v != baseline, -groups[v].n)):
        g = groups[value]
        deff, users = clusters.get(value, (1.0, 0))
        row: list[Any] = [value, g.n, users, round(g.quantile(0.5), 1), round(g.quantile(0.9), 1)]
        if value == baseline:
            row += [1.0, None, None, 1.0, None, None]
        else:
            effects = (deff, clusters.get(baseline, (1.0, 0))[0])
            med = widened_ratio(bootstrap_ratio(g, base, 0.5, seed=1, confidence=each), effects)
            p90 = widened_ratio(bootstrap_ratio(g, base, 0.9, seed=2, confidence=each), effects)
            row += [round(x, 4) for x in (*med, *p90)]
            ratios[value] = {"median_ratio": med, "p90_ratio": p90, "n": g.n, "users": users}
        rows.append(row)
    columns = [
        "value",
        "spans",
        "users",
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
    for value, r in ratios.items():
        r["median_ms"] = groups[value].quantile(0.5)
    _adjust(b, str(span), str(attribute), (ratios, baseline), spans=sum(g.n for g in groups.values()), each=each)
    summary = {
        "span": span,
        "attribute": attribute,
        "baseline": baseline,
        "confidence": confidence,
        "baseline_median_ms": base.quantile(0.5),
        "baseline_users": clusters.get(baseline, (1.0, 0))[1],
        "ratios": ratios,
    }
    return Report(
        analysis="spans",
        title=f"Does {attribute} change how long {span} takes?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary=summary,
        tables=[table],
        notes=[
            f"ratios are to {attribute}={baseline}; below 1 is faster; "
            f"intervals are {confidence:.0%} percentile bootstrap (jointly, for all values: Bonferroni), widened "
            "for users with many spans",
            "durations are binned on a log scale (0.5 % wide), so medians are exact to within 0.5 %",
            "spans of one user are not independent: the interval is stretched by the square root of the design "
            "effect at the median (per-user variance over independent variance), when above 1",
        ],
        chart=bar_chart(
            table,
            "value",
            "median_ms",
            title=f"Median {span} duration by {attribute}",
            x_title=attribute,
            y_title="median duration (ms)",
        ),
        headline=headline(summary),
    )


def _within(s: dict[str, Any], value: str, adjusted: dict[str, Any]) -> str:
    by, ratio, lo, hi = adjusted["attribute"], adjusted["ratio"], adjusted["lo"], adjusted["hi"]
    verdict = "no clear difference" if lo <= 1 <= hi else ("faster" if hi < 1 else "slower")
    return (
        f"sessions with {s['attribute']}={value} differ in {by}, which matters too: within each value of {by}, "
        f"{s['span']} takes {ratio:.2f} times as long with it (geometric means, interval {lo:.2f}–{hi:.2f}): "
        f"{verdict}."
    )


def _adjust(
    b: Bound, span: str, attribute: str, compared: tuple[dict[str, dict[str, Any]], str], *, spans: int, each: float
) -> None:
    """Adds ``adjusted`` to each value's ratios whose interval excludes 1, when the comparison within each value
    of another session attribute moves it beyond that interval (``confounding.py``)."""
    ratios, baseline = compared
    claimed = {v: r for v, r in ratios.items() if not r["median_ratio"][1] <= 1 <= r["median_ratio"][2]}
    if not claimed:  # the check withdraws or turns round a claim, and costs a pass
        return
    sampled = _sampled(b, span, attribute, spans)
    for value, r in claimed.items():
        units = [
            confounding.Unit(u, int(v == value), 1.0, bin_ / PER_E, attrs)
            for v, bin_, u, attrs in sampled
            if v in (value, baseline)
        ]
        adjusted = confounding.strongest(units, {attribute}, log_ratio=False, confidence=each)
        if adjusted is not None:
            r["adjusted"] = {
                "attribute": adjusted.attribute,
                "ratio": adjusted.ratio,
                "lo": adjusted.lo,
                "hi": adjusted.hi,
                "unadjusted": adjusted.crude,
            }


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    span, attribute, baseline = s["span"], s["attribute"], s["baseline"]
    level = words.percent(s["confidence"])
    unknown, same, differ = [], [], []
    for value, r in s["ratios"].items():
        ratio, lo, hi = r["median_ratio"]
        if min(r["users"], s["baseline_users"]) < MIN_USERS or r["n"] < MIN_SPANS:
            unknown.append(f"{words.value(value)} ({words.count(r['n'])} spans from {words.count(r['users'])} users)")
        elif lo <= 1 <= hi:
            same.append((value, lo, hi))
            adjusted = r.get("adjusted")
            if adjusted and not adjusted["lo"] <= 1 <= adjusted["hi"]:
                differ.append(
                    f"No clear difference for {attribute}={words.value(value)} overall. But "
                    + _within(s, value, adjusted)
                )
        else:
            faster = ratio < 1
            adjusted = r.get("adjusted")
            confounded = adjusted is not None and (
                adjusted["lo"] <= 1 <= adjusted["hi"] or (adjusted["hi"] < 1) != faster
            )
            differ.append(
                f"{span} with {attribute}={words.value(value)} {'looks' if confounded else 'is'} "
                f"{'faster' if faster else 'slower'}: "
                f"its median takes {ratio:.2f} times as long as with {attribute}={baseline} ({level} interval "
                f"{lo:.2f}–{hi:.2f}; {words.duration(r['median_ms'])} against "
                f"{words.duration(s['baseline_median_ms'])})."
                + (f" But {_within(s, value, adjusted)}" if confounded and adjusted is not None else "")
            )
    parts = differ[:3]
    if len(differ) > 3:
        parts.append(f"{len(differ) - 3} more values differ too (see the table).")
    if same:
        names = ", ".join(f"{attribute}={words.value(v)}" for v, _, _ in same[:4]) + (", …" if len(same) > 4 else "")
        low, high = min(x[1] for x in same), max(x[2] for x in same)
        parts.append(
            f"{'No clear difference' if not differ else 'No clear difference for'} {names}"
            f"{'' if differ else f' against {attribute}={baseline}'}: "
            f"median ratios within {low:.2f}–{high:.2f} ({level} intervals)."
            if differ
            else f"No clear difference: {span} takes about as long with {names} as with {attribute}={baseline} "
            f"(median ratios within {low:.2f}–{high:.2f}, {level} intervals)."
        )
    if unknown:
        parts.append(f"Not enough data to say for {attribute}={', '.join(unknown[:3])}.")
    return " ".join(parts)
