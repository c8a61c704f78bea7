"""How complete each recent day is: sessions arrive on the user's next run, so recent days fill up late.

Method: the delay between a session's end and its ingestion is measured on sessions
that ended at least ``HORIZON_DAYS`` before the latest ingestion (so their delays up to
that horizon have all been seen; clients discard sessions older than 30 days). With F
the share of delays at most x hours, a day D is ``mean over its hours h of F(as_of − h)``
complete: the share of its sessions expected to have arrived by now.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, timedelta
from typing import Any

from tallystick.analysis import words
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import MAX_DELAY_DAYS, Bound

HORIZON_DAYS = 30


def _delays(b: Bound) -> tuple[list[float], list[float], bool]:
    """Delay hours (sorted bin edges) and cumulative shares; whether the horizon could be used.

    Delays are whole seconds (what ClickHouse keeps), binned by the second below a minute, by the minute
    below an hour, by the hour beyond: a session uploaded seconds after it ended is not "an hour late"."""
    d = b.dialect
    cutoff = b.as_of - timedelta(days=HORIZON_DAYS)
    ingested, ended = d.epoch_seconds('"ingestionTime"'), d.epoch_seconds('"sessionEndTime"')
    delay = f"greatest({ingested} - {ended}, 0)"
    base = f'"applicationId" = {d.literal(b.scope.app)} AND "ingestionTime" IS NOT NULL'
    if b.clock_skewed:  # sessions whose client clock was wrong (scope.bind): their delays are not delays
        started = d.epoch_seconds('"sessionStartTime"')
        base += f" AND {ingested} - {started} >= -86400 AND {ingested} - {started} <= {MAX_DELAY_DAYS * 86400}"
    # Each bin by its upper edge in seconds (a delay of at most that); beyond the horizon, one bin.
    edge = (
        "CASE WHEN s < 60 THEN s WHEN s < 3600 THEN CAST(floor((s + 59) / 60) AS BIGINT) * 60 "
        f"ELSE least(CAST(floor((s + 3599) / 3600) AS BIGINT), {HORIZON_DAYS * 24 + 1}) * 3600 END"
    )
    sql = (
        f"SELECT e, count(*) FROM (SELECT {edge} AS e FROM (SELECT {delay} AS s "
        f'FROM sessions WHERE {base} AND "sessionEndTime" < {d.literal(cutoff)}) t) t2 GROUP BY e'
    )
    rows = b.rows(sql)
    full = bool(rows)
    if not rows:  # a young application: every delay seen so far (biased short; said in the notes)
        rows = b.rows(sql.replace(f' AND "sessionEndTime" < {d.literal(cutoff)}', ""))
    counts: dict[int, int] = {}
    for e, n in rows:
        counts[int(e)] = counts.get(int(e), 0) + int(n)
    total = sum(counts.values())
    hours, shares, running = [], [], 0
    for e in sorted(counts):
        running += counts[e]
        hours.append(e / 3600)  # delays of at most e seconds have arrived once e seconds passed
        shares.append(running / total if total else 1.0)
    return hours, shares, full


def _share_arrived(hours: list[float], shares: list[float], elapsed_hours: float) -> float:
    if elapsed_hours <= 0:
        return 0.0
    i = bisect_right(hours, elapsed_hours)
    return shares[i - 1] if i else 0.0


def by_day(b: Bound) -> dict[date, float]:
    """Estimated completeness of every day in the range (1.0 for days long past); cached per bound."""
    cached = b._cache.get("completeness")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    hours, shares, full = _delays(b)
    b._cache["completeness_full"] = full
    b._cache["completeness_delays"] = (hours, shares)
    out: dict[date, float] = {}
    for day in b.days():
        start = datetime(day.year, day.month, day.day)
        age = (b.as_of - start).total_seconds() / 3600
        if age - 24 >= HORIZON_DAYS * 24:
            out[day] = 1.0
            continue
        out[day] = sum(_share_arrived(hours, shares, age - h - 0.5) for h in range(24)) / 24
    b._cache["completeness"] = out
    return out


def note(b: Bound) -> str:
    days = by_day(b)
    partial = [d for d, c in days.items() if c < 0.99]
    text = (
        f"the last {len(partial)} day(s) are incomplete (sessions arrive on the user's next run); "
        "the 'complete' column estimates the share of each day's sessions already in"
        if partial
        else "every day in the range is complete"
    )
    if not b._cache.get("completeness_full", True):
        text += f"; fewer than {HORIZON_DAYS} days of data, so completeness is overestimated"
    return text


def quantile_seconds(hours: list[float], shares: list[float], q: float) -> int | None:
    """The delay (whole seconds, a bin's upper edge) within which a share ``q`` of sessions arrived."""
    for h, s in zip(hours, shares, strict=True):
        if s >= q:
            return round(h * 3600)
    return None


HOUR, DAY = 3600, 86400
WITHIN = (10, 60, 600, HOUR, 2 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY)


def within(seconds: int) -> str:
    """A delay bin's edge in the unit it was counted in: ``a second``, ``12 s``, ``5 min``, ``an hour``,
    ``36 h``, ``129 h (5.4 days)``, ``3 days``."""
    if seconds <= 1:
        return "a second"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return "a minute" if seconds == 60 else f"{seconds // 60} min"
    if seconds == 3600:
        return "an hour"
    if seconds < 2 * DAY:
        return f"{seconds // 3600} h"
    if seconds % DAY:
        return f"{seconds // 3600} h ({seconds / DAY:.1f} days)"
    return f"{seconds // DAY} days"


def run(b: Bound, params: dict[str, Any]) -> Report:
    days = by_day(b)
    hours, shares = b._cache["completeness_delays"]
    rows = [[d, round(c, 4)] for d, c in days.items() if c < 1.0]
    table = Table("days", ["day", "complete"], rows or [[b.until, 1.0]])
    delays = Table(
        "delays",
        ["within", "within_seconds", "share_arrived"],
        [[within(w), w, round(_share_arrived(hours, shares, w / 3600), 4)] for w in WITHIN],
    )
    median = quantile_seconds(hours, shares, 0.5)
    p90 = quantile_seconds(hours, shares, 0.9)
    return Report(
        analysis="completeness",
        title="How complete are recent days?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "as_of": b.as_of,
            "median_delay_seconds": median,
            "p90_delay_seconds": p90,
            "incomplete_days": sum(1 for c in days.values() if c < 0.99),
            "completeness": {d.isoformat(): round(c, 4) for d, c in days.items() if c < 1.0},
            "clock_skewed_sessions": b.clock_left_out,
        },
        tables=[table, delays],
        notes=[
            note(b),
            "delays are measured from session end to ingestion, in whole seconds, and counted by the second "
            "below a minute, by the minute below an hour, by the hour beyond: 'within 5 min' means at most 5 min",
        ],
        chart=line_chart(
            table,
            "day",
            "complete",
            title="Estimated completeness of recent days",
            percent=True,
            x_title="day",
            y_title="share of the day's sessions already in",
            points=True,
        ),
    )


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    median, p90 = s["median_delay_seconds"], s["p90_delay_seconds"]
    if median is None:
        return "Not enough history yet to estimate how complete recent days are."
    within90 = f" (90 % within {within(p90)})" if p90 is not None and p90 != median else ""
    text = f"Half the sessions arrive within {within(median)} of their end{within90}."
    recent = sorted(s["completeness"].items())
    if s["incomplete_days"] and recent:
        day, share = recent[-1]
        text += (
            f" {words.still_arriving(s['incomplete_days']).removesuffix('.')}: "
            f"about {words.percent(share)} of {day}'s sessions are in."
        )
    else:
        text += " Every day in range is complete."
    if s.get("clock_skewed_sessions"):
        text += " " + words.clock_skewed(s["clock_skewed_sessions"])
    return text
