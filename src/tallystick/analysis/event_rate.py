"""Event rate: what share of sessions have an event (or end with an exit code), over time and by version?"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from tallystick.analysis import completeness
from tallystick.analysis.outcome import outcome
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import wilson


def run(b: Bound, params: dict[str, Any]) -> Report:
    what = outcome(b, params)
    day = b.dialect.day('"sessionStartTime"')
    event = params.get("event")
    typed = b.reads_typed(*what.attributes)  # filters on sessions_typed's columns, not the JSON (warehouse/rollup.py)
    where = b.sessions_where(typed=typed)
    table = b.sessions_table(typed)
    if event is not None:
        # The events table alone has day and version: sessions are counted, not joined with events
        # (``child_where`` restricts the events to sessions that pass the filters).
        rows = b.rows(
            f'SELECT {day}, "applicationVersion", count(*), 0 FROM {table} WHERE {where} '
            f'GROUP BY {day}, "applicationVersion"'
        )
        hits = {
            (dd, v): int(k)
            for dd, v, k in b.rows(
                f'SELECT {day}, "applicationVersion", count(DISTINCT "sessionId") FROM events '
                f'WHERE {b.child_where(str(event))} GROUP BY {day}, "applicationVersion"'
            )
        }
        rows = [(dd, v, n, hits.get((dd, v), 0)) for dd, v, n, _ in rows]
    else:
        rows = b.rows(
            f'SELECT {day}, "applicationVersion", count(*), sum(CASE WHEN {what.on(typed)} THEN 1 ELSE 0 END) '
            f'FROM {table} WHERE {where} GROUP BY {day}, "applicationVersion"'
        )
    if not rows:
        what.none_found(b)
        raise b.empty()
    by_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    by_version: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for dd, version, n, k in rows:
        for acc, key in ((by_day, dd), (by_version, version)):
            acc[key][0] += int(n)
            acc[key][1] += int(k or 0)
    n_all = sum(v[0] for v in by_day.values())
    k_all = sum(v[1] for v in by_day.values())
    if not k_all:
        what.none_found(b)
    lo, hi = wilson(k_all, n_all)
    complete = completeness.by_day(b)
    daily = Table(
        "daily",
        ["day", "sessions", "with_outcome", "rate", "complete"],
        [[dd, n, k, round(k / n, 5), round(complete.get(dd, 1.0), 4)] for dd, (n, k) in sorted(by_day.items())],
    )
    versions = Table(
        "by_version",
        ["version", "sessions", "with_outcome", "rate", "rate_lo", "rate_hi"],
        [
            [v, n, k, round(k / n, 5), *(round(x, 5) for x in wilson(k, n))]
            for v, (n, k) in sorted(by_version.items(), key=lambda item: b.rank.get(item[0], -1))
        ],
    )
    return Report(
        analysis="event-rate",
        title=f"What share of sessions have {what.label}?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "outcome": what.label,
            "sessions": n_all,
            "with_outcome": k_all,
            "rate": k_all / n_all,
            "rate_lo": lo,
            "rate_hi": hi,
        },
        tables=[versions, daily],
        notes=["intervals are 95 % Wilson intervals", completeness.note(b)],
        chart=line_chart(daily, "day", "rate", title=f"Share of sessions with {what.label}", percent=True),
    )
