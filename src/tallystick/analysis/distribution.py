"""Distribution of a numeric attribute (e.g. project size): percentiles and a histogram.

Per session by default, or per user (``--per user``: each user's largest value in
the range). Exact values are counted while there are at most ``EXACT_VALUES`` of
them; beyond that values are binned on a log scale (2 % wide).
"""

from __future__ import annotations

import math
from typing import Any

from tallystick.analysis import words
from tallystick.analysis.errors import BadParameter
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import Weighted

EXACT_VALUES = 2000
PER_E = 50
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
FAR = 10  # values above FAR times the 90th percentile are a long tail the headline names,
FAR_SHARE = 0.001  # when at least this share of the sample is there


def _counts(sample: Weighted) -> list[int]:
    return [c - p for c, p in zip(sample.cumulative, [0, *sample.cumulative[:-1]], strict=True)]


def _buckets(sample: Weighted) -> list[list[Any]]:
    """Power-of-two buckets: [0, 1), [1, 2), [2, 4), ..."""
    rows: dict[tuple[float, float], int] = {}
    prev = 0
    for v, c in zip(sample.values, sample.cumulative, strict=True):
        if v < 1:
            key = (-math.inf, 1.0) if v < 0 else (0.0, 1.0)
        else:
            e = math.floor(math.log2(v))
            key = (2.0**e, 2.0 ** (e + 1))
        rows[key] = rows.get(key, 0) + c - prev
        prev = c
    return [[f"{lo:g}–{hi:g}", n, round(n / sample.n, 4)] for (lo, hi), n in sorted(rows.items())]


def run(b: Bound, params: dict[str, Any]) -> Report:
    attribute = params.get("attribute")
    if not attribute:
        raise BadParameter("name the numeric attribute with --attribute, e.g. --attribute projectTasks")
    per = str(params.get("per") or "session")
    if per not in ("session", "user"):
        raise BadParameter(f"--per must be session or user, not {per!r}")
    b.require_attribute(str(attribute))
    typed = b.typed(str(attribute))  # the attribute's own column instead of the JSON (warehouse/rollup.py)
    value = b.typed_attr(str(attribute), number=True) if typed else b.attr(str(attribute), number=True)
    where = b.sessions_where(typed=typed)
    table = "sessions_typed" if typed else "sessions"
    source = (
        f"SELECT {value} AS v FROM {table} WHERE {where}"
        if per == "session"
        else f"SELECT max({value}) AS v FROM {table} WHERE {where} GROUP BY {b.dialect.user_key()}"
    )
    rows = b.rows(f"SELECT v, count(*) FROM ({source}) t WHERE v IS NOT NULL GROUP BY v LIMIT {EXACT_VALUES + 1}")
    binned = len(rows) > EXACT_VALUES
    if binned:
        bin_sql = b.dialect.log_bin("v", PER_E)
        rows = b.rows(
            f"SELECT {bin_sql} AS bin, sign(v) AS s, count(*) FROM ({source}) t "
            f"WHERE v IS NOT NULL GROUP BY {bin_sql}, sign(v)"
        )
        sample = Weighted.of((float(s) * math.exp(int(bn) / PER_E), int(n)) for bn, s, n in rows)
    else:
        sample = Weighted.of((float(v), int(n)) for v, n in rows)
    if not sample.n:
        raise b.empty(f"numeric values of {attribute}")
    quantiles = {f"p{round(q * 100)}": sample.quantile(q) for q in QUANTILES}
    # A long tail (a few monorepos among small projects) the percentiles alone would hide.
    far = FAR * quantiles["p90"]
    beyond = sum(c for v, c in zip(sample.values, _counts(sample), strict=True) if far > 0 and v > far)
    histogram = Table("histogram", ["range", per + "s", "share"], _buckets(sample))
    return Report(
        analysis="distribution",
        title=f"How is {attribute} distributed?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "attribute": attribute,
            "per": per,
            "count": sample.n,
            "mean": sample.mean(),
            **quantiles,
            "max": sample.values[-1],
            "far_share": beyond / sample.n,
        },
        tables=[
            Table("percentiles", ["percentile", "value"], [[k, v] for k, v in quantiles.items()]),
            histogram,
        ],
        notes=[
            "per session, users who run the tool often weigh more; --per user counts each user once (largest value)",
            *(["values are binned on a log scale (2 % wide)"] if binned else []),
        ],
        chart=bar_chart(
            histogram,
            "range",
            "share",
            title=f"Distribution of {attribute}",
            percent=True,
            x_title=str(attribute),
            y_title=f"share of {per}s",
        ),
    )


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    unit = "sessions" if s["per"] == "session" else "users"
    text = (
        f"Half of the {words.count(s['count'])} {unit} have {s['attribute']} at or below {words.number(s['p50'])} "
        f"(middle half {words.number(s['p25'])}–{words.number(s['p75'])}; 90 % at or below {words.number(s['p90'])})."
    )
    if s.get("far_share", 0) >= FAR_SHARE:
        text += (
            f" A long tail: {words.percent(s['far_share'])} of them are over {FAR} times that, up to "
            f"{words.number(s['max'])}, which pulls the mean up to {words.number(s['mean'])}."
        )
    if s["count"] < 30:
        text += f" Caveat: only {words.count(s['count'])} {unit}."
    return text
