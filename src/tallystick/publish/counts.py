"""Distinct users in scope, in total and per period: the exact denominators minimum cell counts need.

The analyses report users per cell; the totals a cell is checked against (and that a reader
could difference the cells with) are counted here, with the analyses' own scope SQL
(``Bound``), so every warehouse the analyses support answers them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from tallystick.analysis.scope import Bound


def as_date(value: Any) -> date:
    """A period key as the analyses give it (date or timestamp) as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def users(b: Bound) -> int:
    """Distinct users in scope."""
    return int(b.rows(f"SELECT count(DISTINCT {b.user_key()}) FROM sessions WHERE {b.sessions_where()}")[0][0])


def users_per_period(b: Bound, every: str) -> dict[date, int]:
    """Distinct users in scope per ``day``, ``week`` or ``month`` (periods as the analyses truncate them)."""
    period = b.dialect.trunc(every, '"sessionStartTime"')  # type: ignore[arg-type]
    rows = b.rows(
        f"SELECT {period}, count(DISTINCT {b.user_key()}) FROM sessions WHERE {b.sessions_where()} GROUP BY {period}"
    )
    return {as_date(p): int(n) for p, n in rows}


def users_per_period_and_version(b: Bound, every: str) -> dict[date, dict[str, int]]:
    """Distinct users in scope per ``day``, ``week`` or ``month`` and version (as adoption counts a day's)."""
    period = b.dialect.trunc(every, '"sessionStartTime"')  # type: ignore[arg-type]
    rows = b.rows(
        f'SELECT {period}, "applicationVersion", count(DISTINCT {b.user_key()}) FROM sessions '
        f'WHERE {b.sessions_where()} GROUP BY {period}, "applicationVersion"'
    )
    out: dict[date, dict[str, int]] = {}
    for p, version, n in rows:
        out.setdefault(as_date(p), {})[str(version)] = int(n)
    return out
