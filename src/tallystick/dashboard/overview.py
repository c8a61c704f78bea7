"""The overview page's numbers: activity per day, versions over time, errors, completeness.

Completeness is the completeness analysis's (``tallystick.analysis.completeness``): a
client uploads a session on the tool's *next* run, so a day's sessions keep arriving
for days after it; the spread of arrival delays of older sessions says what share of a
recent day's sessions has arrived. One method, one number, on the overview and on the
analysis page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tallystick.dashboard.reader import Connection

COMPLETE = 0.95
MAX_VERSIONS = 12
MAX_EXIT_CODES = 3  # lines of failing exit codes drawn for a tool without error events
ERROR_TYPES_SQL = "(type = 'Error' OR type LIKE '%Error' OR type LIKE '%Failed' OR type LIKE '%Exception')"


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key for SemVer and PEP 440 versions: numbers numerically, a pre-release before its release."""
    match = re.match(r"v?(\d+(?:\.\d+)*)(.*)", version)
    if not match:
        return ((), 0, version)
    numbers = tuple(int(n) for n in match.group(1).split("."))
    rest = match.group(2)
    is_release = 1 if not rest or rest.startswith(("+", ".post")) else 0
    return (numbers, is_release, rest)


@dataclass
class Totals:
    sessions: int = 0
    users: int = 0
    versions: int = 0
    first: datetime | None = None
    last: datetime | None = None
    asof: datetime | None = None
    latest_version: str | None = None


@dataclass
class Overview:
    """Everything the overview shows for one application, as plain data."""

    apps: list[tuple[str, int]]
    app: str | None
    totals: Totals = field(default_factory=Totals)
    daily: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    version_order: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    completeness_note: str = ""


def applications(con: Connection) -> list[tuple[str, int]]:
    """(applicationId, sessions), busiest first."""
    result = con.query(
        'SELECT "applicationId" AS app, count(*) AS n FROM sessions GROUP BY "applicationId" ORDER BY n DESC, app'
    )
    return [(str(r[0]), int(r[1])) for r in result.rows]


def pick_app(apps: list[tuple[str, int]], wanted: str | None) -> str | None:
    names = [a for a, _ in apps]
    if wanted in names:
        return wanted
    return names[0] if names else None


def overview(con: Connection, wanted_app: str | None) -> Overview:
    apps = applications(con)
    app = pick_app(apps, wanted_app)
    result = Overview(apps, app)
    if app is None:
        return result
    row = con.query(
        'SELECT count(*), count(DISTINCT "userId"), count(DISTINCT "applicationVersion"), '
        'min("sessionStartTime"), max("sessionStartTime"), max("ingestionTime") '
        'FROM sessions WHERE "applicationId" = ?',
        [app],
    ).rows[0]
    asof = row[5] or row[4]
    versions = [
        str(r[0])
        for r in con.query('SELECT DISTINCT "applicationVersion" FROM sessions WHERE "applicationId" = ?', [app]).rows
    ]
    versions.sort(key=version_key, reverse=True)
    result.totals = Totals(
        int(row[0]), int(row[1]), int(row[2]), row[3], row[4], asof, versions[0] if versions else None
    )

    SQL = con.sql
    day = SQL.day('"sessionStartTime"')
    daily = con.query(
        f'SELECT {day} AS day, count(*), count(DISTINCT "userId") FROM sessions '
        'WHERE "applicationId" = ? GROUP BY day ORDER BY day',
        [app],
    ).rows
    from tallystick.analysis import completeness
    from tallystick.analysis.scope import Scope, bind

    bound = bind(con.warehouse, Scope(app))
    complete = completeness.by_day(bound)
    if not bound._cache.get("completeness_full", True):
        result.completeness_note = (
            f"Less than {completeness.HORIZON_DAYS} days of history: the shading of recent days, estimated from "
            "the arrival lags seen so far, may be too optimistic."
        )
    else:
        result.completeness_note = (
            f"Shaded: days likely still missing sessions (fewer than {COMPLETE:.0%} arrived, estimated from the "
            "arrival lags of older sessions, as the completeness analysis does); sessions arrive on each user's "
            "next run."
        )
    for d, sessions, users in daily:
        share = complete.get(d, 1.0)
        result.daily.append({"day": d.isoformat(), "sessions": sessions, "users": users, "complete": round(share, 3)})

    week = SQL.trunc("week", '"sessionStartTime"')
    keep = versions[:MAX_VERSIONS]
    rows = con.query(
        f'SELECT {week} AS week, "applicationVersion", count(*) FROM sessions '
        'WHERE "applicationId" = ? GROUP BY week, "applicationVersion" ORDER BY week, "applicationVersion"',
        [app],
    ).rows
    merged: dict[tuple[str, str], int] = {}
    for w, v, n in rows:
        key = (w.isoformat(), v if v in keep else "older")
        merged[key] = merged.get(key, 0) + int(n)
    result.versions = [{"week": w, "version": v, "sessions": n} for (w, v), n in sorted(merged.items())]
    result.version_order = keep + (["older"] if len(versions) > len(keep) else [])

    # Two plain queries joined here: the same on every engine (ClickHouse 18.16 has no WITH subqueries).
    weekly = {
        w: int(n)
        for w, n in con.query(
            f'SELECT {week} AS week, count(*) FROM sessions WHERE "applicationId" = ? GROUP BY week', [app]
        ).rows
    }
    errors = con.query(
        f'SELECT {week} AS week, type, count(DISTINCT "sessionId") FROM events '
        f'WHERE "applicationId" = ? AND {ERROR_TYPES_SQL} GROUP BY week, type ORDER BY week, type',
        [app],
    ).rows
    # Every week with sessions gets a row per type, 0 where it had none: a line drawn per type
    # must dip to zero there, not bridge the week as if it had the neighbours' rate.
    counts = {(w, t): int(n) for w, t, n in errors}
    if not counts:  # a tool that records its exit status, not error events: its failing exit codes
        counts = _failing_exit_codes(con, app, week)
    types = sorted({t for _, t in counts})
    result.errors = [
        {"week": w.isoformat(), "type": t, "share": round(counts.get((w, t), 0) / weekly[w], 5)}
        for w in sorted(weekly)
        for t in types
        if weekly[w]
    ]
    return result


def _failing_exit_codes(con: Connection, app: str, week: str) -> dict[tuple[Any, str], int]:
    """Sessions per week and ``exitCode=N`` label for the three commonest non-zero exit codes (none: empty)."""
    code = con.sql.attribute_text("attributes", "exitCode")
    rows = con.query(
        f'SELECT {week} AS week, {code} AS code, count(*) FROM sessions WHERE "applicationId" = ? '
        f"AND {code} IS NOT NULL GROUP BY week, code",
        [app],
    ).rows
    failing = [(w, str(c), int(n)) for w, c, n in rows if str(c).lstrip("-").isdigit() and int(str(c)) != 0]
    totals: dict[str, int] = {}
    for _, c, n in failing:
        totals[c] = totals.get(c, 0) + n
    kept = sorted(totals, key=lambda c: (-totals[c], c))[:MAX_EXIT_CODES]
    return {(w, f"exitCode={c}"): n for w, c, n in failing if c in kept}
