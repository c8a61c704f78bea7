"""A weekly digest a maintainer reads without opening the dashboard: what changed since the previous period.

Four sections, each from the built-in analyses:

1. **The newest release**: when it was first seen, the share of the last day's active users
   on it, how many days it took to reach half of them (``adoption``), and any operation
   that got slower in it than in the release before (``timing``'s regressions, and its slowest tenth's).
2. **Error rates that moved**: for each error-like event type (``Error``, ``…Error``,
   ``…Failed``, ``…Exception``), the share of sessions with it this period and the previous
   one (``event-rate``, intervals counting users), listed when the difference is beyond
   both intervals' uncertainty (|z| > 1.96 on the difference). A tool with no such event
   gets the same for its three commonest non-zero ``exitCode`` values.
3. **Timings that moved**: each span type's median this period over the previous one, with
   a bootstrap interval widened for heavy users (as ``timing`` does) and Bonferroni-adjusted
   over span types; listed when the interval excludes 1 and the change is at least 5 %.
4. **Still arriving**: ``completeness``'s answer (recent days fill up as users run the tool again).

``markdown`` and ``html`` render it; the HTML file is self-contained (inline SVG charts).
"""

from __future__ import annotations

import html as html_lib
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tallystick.analysis import words
from tallystick.analysis.adoption import newest as adoption_newest
from tallystick.analysis.errors import AnalysisError, EmptyRange
from tallystick.analysis.report import Table, _jsonable
from tallystick.analysis.scope import Bound, Scope, bind
from tallystick.analysis.spans import PER_E, design_effects, median_bin
from tallystick.analysis.stats import Weighted, bootstrap_ratio, widened_ratio
from tallystick.warehouse.base import Queryable

ERROR_SUFFIXES = ("Error", "Failed", "Exception")
MIN_CHANGE = 0.05  # a timing change smaller than this is not news, however certain


@dataclass
class Digest:
    """What changed in ``period`` (inclusive dates) against the ``previous`` one of the same length."""

    app: str
    period: tuple[date, date]
    previous: tuple[date, date]
    release: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)  # every error type; "moved": up/down/None
    timings: list[dict[str, Any]] = field(default_factory=list)  # every span type; "moved": slower/faster/None
    arriving: str = ""
    adoption_curve: list[dict[str, Any]] = field(default_factory=list)  # day, share of active users on the release

    def headlines(self) -> list[str]:
        """The digest in a few sentences, most important first."""
        out = []
        r = self.release
        if r:
            text = f"The newest release, {r['version']} (first seen {r['first_seen']}), is on "
            text += f"{words.percent(r['user_share'])} of the last day's active users"
            days = r["days_to_50"]
            text += f"; it reached half of them in {days} day{'s' if days != 1 else ''}." if days is not None else "."
            out.append(text)
            for reg in r["regressions"]:
                out.append(
                    f"{reg['span']} got slower in {r['version']}: its median is {reg['median_ratio']:.2f} times "
                    f"{reg['previous']}'s (95 % interval {reg['ratio_lo']:.2f}–{reg['ratio_hi']:.2f})."
                )
            for reg in r.get("tail_regressions", []):
                out.append(
                    f"{reg['span']}'s slowest tenth got slower in {r['version']}: its 90th percentile is "
                    f"{reg['p90_ratio']:.2f} times {reg['previous']}'s (95 % interval {reg['ratio_lo']:.2f}–"
                    f"{reg['ratio_hi']:.2f}), its median {reg['median_ratio']:.2f} times: some of the sessions only."
                )
        moved = [e for e in self.errors if e["moved"]]
        for e in moved:
            out.append(
                f"{e['type']} went {e['moved']}: {words.percent(e['rate'])} of sessions this period against "
                f"{words.percent(e['previous_rate'])} the period before."
            )
        if self.errors and not moved:
            out.append("No error rate moved beyond its uncertainty since the previous period.")
        slower = [t for t in self.timings if t["moved"]]
        for t in slower:
            out.append(
                f"{t['span']} got {t['moved']} since the previous period: median {words.duration(t['median_ms'])} "
                f"against {words.duration(t['previous_median_ms'])} ({t['ratio']:.2f}×, interval "
                f"{t['ratio_lo']:.2f}–{t['ratio_hi']:.2f})."
            )
        if self.timings and not slower:
            out.append("No operation's median moved beyond its uncertainty since the previous period.")
        if self.arriving:
            out.append(self.arriving)
        return out


def _periods(until: date, days: int) -> tuple[tuple[date, date], tuple[date, date]]:
    this = (until - timedelta(days=days - 1), until)
    return this, (this[0] - timedelta(days=days), this[0] - timedelta(days=1))


def _release(warehouse: Queryable, scope: Scope) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from tallystick.analysis import run

    adoption = run(warehouse, "adoption", scope)
    releases = adoption.summary["releases"]
    newest = adoption_newest(releases)
    daily = adoption.table("daily").records()
    last = max(r["day"] for r in daily)
    first_seen = releases[newest]["first_seen"]
    curve = [
        {"day": r["day"], "user_share": r["user_share"]}
        for r in daily
        if r["version"] == newest and r["day"] >= first_seen.date()
    ]
    share = sum(r["user_share"] for r in daily if r["day"] == last and r["version"] == newest)
    try:
        timing = run(warehouse, "timing", scope).summary
    except EmptyRange:  # a tool that records no spans still has releases and errors to report
        timing = {"regressions": [], "tail_regressions": []}
    regressions = [r for r in timing["regressions"] if r["version"] == newest]
    tails = [r for r in timing["tail_regressions"] if r["version"] == newest]
    release = {
        "version": newest,
        "first_seen": first_seen.date().isoformat(),
        "days_to_50": releases[newest]["days_to_50"],
        "user_share": share,
        "regressions": regressions,
        "tail_regressions": tails,
    }
    return release, curve


def _errors(warehouse: Queryable, app: str, this: tuple[date, date], before: tuple[date, date]) -> list[dict[str, Any]]:
    from tallystick.analysis import run

    b = bind(warehouse, Scope(app, before[0], this[1]))
    types = sorted(
        str(t)
        for (t,) in b.rows(f'SELECT DISTINCT "type" FROM events WHERE {b.child_where()}')
        if str(t) == "Error" or str(t).endswith(ERROR_SUFFIXES)
    )
    outcomes: list[tuple[str, dict[str, Any]]] = [(event, {"event": event}) for event in types]
    if not outcomes:  # a tool that records its exit status, not error events (docs/instrument-your-tool.md)
        outcomes = [(f"exitCode={code}", {"exit_code": code}) for code in _failing_exit_codes(b)]
    out = []
    for event, params in outcomes:
        rates = []
        for since, until in (this, before):
            try:
                s = run(warehouse, "event-rate", Scope(app, since, until), **params).summary
                rates.append((s["rate"], s["rate_lo"], s["rate_hi"], s["sessions"]))
            except AnalysisError:  # not one in that period
                rates.append((0.0, 0.0, 0.0, 0))
        (rate, lo, hi, n), (prev, plo, phi, pn) = rates
        se = math.hypot((hi - lo) / (2 * 1.96), (phi - plo) / (2 * 1.96))
        moved = None
        if n and pn and se > 0 and abs(rate - prev) / se > 1.96:
            moved = "up" if rate > prev else "down"
        out.append(
            {
                "type": event,
                "rate": rate,
                "rate_lo": lo,
                "rate_hi": hi,
                "previous_rate": prev,
                "previous_lo": plo,
                "previous_hi": phi,
                "sessions": n,
                "moved": moved,
            }
        )
    return out


def _failing_exit_codes(b: Bound, most: int = 3) -> list[int]:
    """The commonest non-zero ``exitCode`` values of the sessions in scope (none without the attribute)."""
    code = b.attr("exitCode")
    rows = b.rows(
        f"SELECT {code}, count(*) FROM sessions WHERE {b.sessions_where()} AND {code} IS NOT NULL GROUP BY {code}"
    )
    counted = [(int(n), int(str(c))) for c, n in rows if str(c).lstrip("-").isdigit() and int(str(c)) != 0]
    return [c for _, c in sorted(counted, key=lambda r: (-r[0], r[1]))[:most]]


def _timings(
    warehouse: Queryable, app: str, this: tuple[date, date], before: tuple[date, date]
) -> list[dict[str, Any]]:
    b = bind(warehouse, Scope(app, before[0], this[1]))
    d = b.dialect
    bin_sql = d.log_bin('"durationMs"', PER_E)
    start = d.day('"sessionStartTime"')
    side = f"CASE WHEN {start} >= {d.literal(this[0])} THEN 'now' ELSE 'before' END"
    source = (
        f"SELECT concat(\"type\", '|', {side}) AS v, {bin_sql} AS bin, {d.user_key()} AS u "
        f"FROM spans WHERE {b.child_where()}"
    )
    groups: dict[str, list[tuple[int, int]]] = {}
    for v, bin_, n in b.rows(f"SELECT v, bin, count(*) FROM ({source}) t GROUP BY v, bin"):
        groups.setdefault(str(v), []).append((int(bin_), int(n)))
    hists = {k: Weighted.of_log_bins(bins, PER_E) for k, bins in groups.items()}
    clusters = design_effects(b, source, "v", {k: median_bin(h) for k, h in hists.items()})
    spans = sorted({k.rsplit("|", 1)[0] for k in hists})
    compared = [s for s in spans if f"{s}|now" in hists and f"{s}|before" in hists]
    confidence = 1 - 0.05 / max(1, len(compared))
    out = []
    for span in compared:
        now, prev = hists[f"{span}|now"], hists[f"{span}|before"]
        effects = (clusters.get(f"{span}|now", (1.0, 0))[0], clusters.get(f"{span}|before", (1.0, 0))[0])
        ratio, lo, hi = widened_ratio(bootstrap_ratio(now, prev, 0.5, seed=5, confidence=confidence), effects)
        moved = None
        if (lo > 1 or hi < 1) and abs(ratio - 1) >= MIN_CHANGE:
            moved = "slower" if ratio > 1 else "faster"
        out.append(
            {
                "span": span,
                "median_ms": now.quantile(0.5),
                "previous_median_ms": prev.quantile(0.5),
                "ratio": ratio,
                "ratio_lo": lo,
                "ratio_hi": hi,
                "spans": now.n,
                "moved": moved,
            }
        )
    return out


def build(warehouse: Queryable, app: str, *, until: date | None = None, days: int = 7) -> Digest:
    """The digest of ``app`` for the ``days`` ending ``until`` (default: the last day with sessions)."""
    from tallystick.analysis import run

    scope = Scope(app, until=until)
    last = until or bind(warehouse, scope).until
    this, before = _periods(last, days)
    digest = Digest(app, this, before)
    digest.release, digest.adoption_curve = _release(warehouse, scope)
    digest.errors = _errors(warehouse, app, this, before)
    digest.timings = _timings(warehouse, app, this, before)
    digest.arriving = run(warehouse, "completeness", scope).headline
    return digest


def _period(p: tuple[date, date]) -> str:
    return f"{p[0].isoformat()} to {p[1].isoformat()}"


def markdown(d: Digest) -> str:
    """The digest as Markdown."""
    lines = [f"# {d.app}: digest for {_period(d.period)}", "", f"Compared with {_period(d.previous)}.", ""]
    lines += [f"- {h}" for h in d.headlines()] + [""]
    if d.errors:
        lines += ["## Error rates", "", "| event | this period | previous period | moved |", "|---|---|---|---|"]
        for e in d.errors:
            lines.append(
                f"| {e['type']} | {words.percent(e['rate'])} ({words.percent(e['rate_lo'])}–"
                f"{words.percent(e['rate_hi'])}) | {words.percent(e['previous_rate'])} | {e['moved'] or 'no'} |"
            )
        lines.append("")
    if d.timings:
        lines += [
            "## Timings (median)",
            "",
            "| operation | this period | previous period | ratio | moved |",
            "|---|---|---|---|---|",
        ]
        for t in d.timings:
            lines.append(
                f"| {t['span']} | {words.duration(t['median_ms'])} | {words.duration(t['previous_median_ms'])} | "
                f"{t['ratio']:.2f} ({t['ratio_lo']:.2f}–{t['ratio_hi']:.2f}) | {t['moved'] or 'no'} |"
            )
        lines.append("")
    return "\n".join(lines)


def charts(d: Digest) -> list[dict[str, Any]]:
    """Vega-Lite specs: the newest release's adoption, and each span's median ratio with its interval."""
    specs: list[dict[str, Any]] = []
    if d.adoption_curve:
        specs.append(
            {
                "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
                "title": f"Share of active users on {d.release['version']}",
                "width": 560,
                "height": 220,
                "data": {"values": _jsonable(d.adoption_curve)},
                "mark": {"type": "line", "point": len(d.adoption_curve) < 14},
                "encoding": {
                    "x": {"field": "day", "type": "temporal", "title": "day"},
                    "y": {
                        "field": "user_share",
                        "type": "quantitative",
                        "title": "share of active users",
                        "axis": {"format": "%"},
                        "scale": {"domain": [0, 1]},
                    },
                },
            }
        )
    if d.timings:
        table = Table(
            "t",
            ["span", "ratio", "ratio_lo", "ratio_hi"],
            [[t["span"], t["ratio"], t["ratio_lo"], t["ratio_hi"]] for t in d.timings],
        )
        specs.append(
            {
                "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
                "title": "Median this period over the previous one (1 = unchanged)",
                "width": 560,
                "height": 40 + 28 * len(d.timings),
                "data": {"values": _jsonable(table.records())},
                "layer": [
                    {
                        "mark": "point",
                        "encoding": {
                            "y": {"field": "span", "type": "nominal", "title": "operation"},
                            "x": {
                                "field": "ratio",
                                "type": "quantitative",
                                "title": "ratio of medians",
                                "scale": {"zero": False},
                            },
                        },
                    },
                    {
                        "mark": "rule",
                        "encoding": {
                            "y": {"field": "span", "type": "nominal"},
                            "x": {"field": "ratio_lo", "type": "quantitative"},
                            "x2": {"field": "ratio_hi"},
                        },
                    },
                ],
            }
        )
    return specs


def html(d: Digest) -> str:
    """The digest as one self-contained HTML file: inline CSS and SVG charts, no network."""
    import vl_convert

    esc = html_lib.escape
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",  # a phone's width, not 980 px
        f"<title>{esc(d.app)}: digest for {esc(_period(d.period))}</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#1d2733}"
        "table{border-collapse:collapse;width:100%;margin:0.5rem 0 1.5rem}td,th{text-align:left;padding:0.3rem 0.5rem;"
        "border-bottom:1px solid #d9dee4}li{margin:0.3rem 0}.moved{color:#a4461b;font-weight:600}"
        "figure{margin:1rem 0}figure svg{max-width:100%;height:auto}"
        # On a phone: charts shrink to the width, tables tighten.
        "@media (max-width:480px){table{font-size:13px}td,th{padding:0.3rem 0.25rem}}</style>",
        f"<h1>{esc(d.app)}: digest for {esc(_period(d.period))}</h1>",
        f"<p>Compared with {esc(_period(d.previous))}.</p><ul>",
        *(f"<li>{esc(h)}</li>" for h in d.headlines()),
        "</ul>",
    ]
    for spec in charts(d):
        parts.append(f"<figure>{vl_convert.vegalite_to_svg(spec)}</figure>")
    if d.errors:
        parts.append(
            "<h2>Error rates</h2><table><tr><th>event</th><th>this period</th><th>previous</th><th>moved</th></tr>"
        )
        for e in d.errors:
            moved = f"<span class=moved>{e['moved']}</span>" if e["moved"] else "no"
            parts.append(
                f"<tr><td>{esc(e['type'])}</td><td>{words.percent(e['rate'])}</td>"
                f"<td>{words.percent(e['previous_rate'])}</td><td>{moved}</td></tr>"
            )
        parts.append("</table>")
    if d.timings:
        parts.append(
            "<h2>Timings (median)</h2><table><tr><th>operation</th><th>this period</th><th>previous</th>"
            "<th>ratio</th><th>moved</th></tr>"
        )
        for t in d.timings:
            moved = f"<span class=moved>{t['moved']}</span>" if t["moved"] else "no"
            parts.append(
                f"<tr><td>{esc(t['span'])}</td><td>{words.duration(t['median_ms'])}</td>"
                f"<td>{words.duration(t['previous_median_ms'])}</td><td>{t['ratio']:.2f}</td><td>{moved}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts) + "\n"
