"""The overview page's numbers: activity per day, versions over time, errors, completeness.

Completeness: a client uploads a session on the tool's *next* run, so a day's sessions
keep arriving for days after it. From sessions that ended 30 to 90 days before the
latest ingestion (old enough that everything that will arrive has arrived; clients drop
sessions after 30 days) we take the spread of arrival lags, ``ingestionTime -
sessionEndTime``; the expected share of a recent day's sessions that have arrived is the
share of those lags shorter than the day's age. No estimate without enough such
history (at least ``MIN_LAG_SAMPLES``), e.g. when data was back-filled in one go.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from tallystick.dashboard.reader import Connection

MIN_LAG_SAMPLES = 50
COMPLETE = 0.95
MAX_VERSIONS = 12
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


def arrival_lags(con: Connection, app: str, asof: datetime) -> list[float]:
    """Arrival lags in days of sessions that ended 30-90 days before ``asof``, sorted."""
    sql = con.sql
    arrived, ended = sql.epoch_seconds('"ingestionTime"'), sql.epoch_seconds('"sessionEndTime"')
    lag = f"({arrived} - {ended})"
    result = con.query(
        f"SELECT {lag} / 86400.0 AS lag FROM sessions "
        'WHERE "applicationId" = ? AND "ingestionTime" IS NOT NULL '
        f'AND "sessionEndTime" BETWEEN ? AND ? {sql.sample_rows(20000)}',
        [app, asof - timedelta(days=90), asof - timedelta(days=30)],
    )
    return sorted(max(0.0, float(r[0])) for r in result.rows if r[0] is not None and r[0] <= 30)


def completeness(lags: list[float], day: date, asof: datetime) -> float:
    """Expected share of ``day``'s sessions that have arrived by ``asof``."""
    if not lags:
        return 1.0
    middle = datetime(day.year, day.month, day.day, 12)
    age = (asof - middle).total_seconds() / 86400
    if age >= 30:
        return 1.0
    return bisect_right(lags, max(age, 0.0)) / len(lags)


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
    lags = arrival_lags(con, app, asof) if asof else []
    if len(lags) < MIN_LAG_SAMPLES:
        lags = []
        result.completeness_note = "Not enough history yet to estimate how complete recent days are."
    else:
        result.completeness_note = (
            f"Shaded: days likely still missing sessions (fewer than {COMPLETE:.0%} arrived, estimated from "
            f"{len(lags):,} arrival lags); sessions arrive on each user's next run."
        )
    for d, sessions, users in daily:
        share = completeness(lags, d, asof) if asof else 1.0
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
    result.errors = [
        {"week": w.isoformat(), "type": t, "share": round(int(n) / weekly[w], 5)} for w, t, n in errors if weekly.get(w)
    ]
    return result
