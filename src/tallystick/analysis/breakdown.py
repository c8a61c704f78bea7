"""Breakdown: what share of users and of sessions has each value of an attribute, overall and over time?"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from tallystick.analysis import completeness, words
from tallystick.analysis.errors import BadParameter
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound
from tallystick.warehouse import rollup

MAX_VALUES = 50
NONE = "(none)"  # sessions without the attribute


Rows = list[tuple[Any, ...]]


def _from_rollup(b: Bound, where: str, attribute: str, unit: str) -> tuple[Rows, Rows, Rows, tuple[Any, ...]]:
    """The four counts from the daily rollup (DuckDB): per day, a row with ``userDayRows = 1`` is its user's
    only row that day, so users are counted without a distinct count except for the few with several rows."""
    value = f'"{attribute}"'
    if unit == "day":
        users = (
            'count(*) FILTER (WHERE "userDayRows" = 1) + count(DISTINCT CASE WHEN "userDayRows" > 1 THEN "userKey" END)'
        )
        period = '"day"'
    else:
        users = 'count(DISTINCT "userKey")'
        period = b.dialect.trunc(unit, '"day"')  # type: ignore[arg-type]
    source = f"sessions_daily WHERE {where}"
    per_period = b.rows(f'SELECT {period}, {value}, sum("sessions"), {users} FROM {source} GROUP BY ALL')
    totals = b.rows(f'SELECT {period}, sum("sessions"), {users} FROM {source} GROUP BY ALL')
    both = b.rows(
        f'SELECT grouping({value}), {value}, sum("sessions"), count(DISTINCT "userKey") FROM {source} '
        f"GROUP BY GROUPING SETS (({value}), ())"
    )
    overall = [(v, n, u) for g, v, n, u in both if g == 0]
    everything = next(((n or 0, u) for g, _, n, u in both if g == 1), (0, 0))
    return per_period, overall, totals, everything


def _missing_by_version(b: Bound, attribute: str, rolled: str | None) -> dict[str, tuple[int, int]]:
    """Per version with sessions lacking the attribute, in release order: (sessions without it, sessions)."""
    if rolled is not None:
        source, total = f"sessions_daily WHERE {rolled}", 'sum("sessions")'
        missing = f'sum(CASE WHEN "{attribute}" IS NULL THEN "sessions" ELSE 0 END)'
    else:
        typed = b.reads_typed(attribute)
        source = f"{b.sessions_table(typed)} WHERE {b.sessions_where(typed=typed)}"
        value = b.typed_attr(attribute) if typed else b.attr(attribute)
        total, missing = "count(*)", b.dialect.count_if(f"{value} IS NULL")
    rows = b.rows(f'SELECT "applicationVersion", {missing}, {total} FROM {source} GROUP BY "applicationVersion"')
    ordered = sorted(rows, key=lambda r: b.rank.get(str(r[0]), -1))
    return {str(v): (int(m), int(t)) for v, m, t in ordered if m}


def run(b: Bound, params: dict[str, Any]) -> Report:
    attribute = params.get("attribute")
    if not attribute:
        raise BadParameter("name the attribute to break down by with --attribute, e.g. --attribute shell")
    b.require_attribute(str(attribute))
    unit = str(params.get("every") or "day")
    if unit not in ("day", "week", "month"):
        raise BadParameter(f"--every must be day, week or month, not {unit!r}")
    d = b.dialect
    rolled = b.rollup_where() if str(attribute) in rollup.ATTRIBUTES else None
    if rolled is not None:
        per_period, overall, totals, (all_sessions, all_users) = _from_rollup(b, rolled, str(attribute), unit)
    else:
        typed = b.reads_typed(str(attribute))  # the attributes' own columns, not the JSON (warehouse/rollup.py)
        source = f"{b.sessions_table(typed)} WHERE {b.sessions_where(typed=typed)}"
        value = b.typed_attr(str(attribute)) if typed else b.attr(str(attribute))
        period = d.trunc(unit, '"sessionStartTime"')  # type: ignore[arg-type]
        users = b.user_key(typed)
        per_period = b.rows(
            f"SELECT {period}, {value}, count(*), count(DISTINCT {users}) FROM {source} GROUP BY {period}, {value}"
        )
        overall = b.rows(f"SELECT {value}, count(*), count(DISTINCT {users}) FROM {source} GROUP BY {value}")
        totals = b.rows(f"SELECT {period}, count(*), count(DISTINCT {users}) FROM {source} GROUP BY {period}")
        all_sessions, all_users = b.rows(f"SELECT count(*), count(DISTINCT {users}) FROM {source}")[0]
    if not per_period:
        raise b.empty()
    missing_versions = _missing_by_version(b, attribute, rolled) if any(r[0] is None for r in overall) else {}
    label = {None: NONE}
    ranked = sorted(overall, key=lambda r: (-int(r[2]), -int(r[1]), str(r[0])))
    top = [r[0] for r in ranked[:MAX_VALUES]]
    overall_rows = [
        [label.get(v, str(v)), int(n), round(int(n) / int(all_sessions), 4), int(u), round(int(u) / int(all_users), 4)]
        for v, n, u in ranked[:MAX_VALUES]
    ]
    period_totals = {p: (int(n), int(u)) for p, n, u in totals}
    complete = completeness.by_day(b)

    def start_of(dd: date) -> date:
        if unit == "week":
            return dd - timedelta(days=dd.weekday())
        return dd.replace(day=1) if unit == "month" else dd

    def period_complete(p: date) -> float:
        days = [c for dd, c in complete.items() if start_of(dd) == p]
        return round(sum(days) / len(days), 4) if days else 1.0

    series: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, 0])
    for p, v, n, u in per_period:
        key = (p, label.get(v, str(v)) if v in top else "(other)")
        series[key][0] += int(n)
        series[key][1] += int(u)  # users of "(other)" may be counted twice; it is a catch-all
    over_time = Table(
        "over_time",
        ["period", "value", "sessions", "session_share", "users", "user_share", "complete"],
        [
            [p, v, n, round(n / period_totals[p][0], 4), u, round(u / period_totals[p][1], 4), period_complete(p)]
            for (p, v), (n, u) in sorted(series.items(), key=lambda item: (item[0][0], item[0][1]))
        ],
    )
    return Report(
        analysis="breakdown",
        title=f"Which values of {attribute} are used?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "attribute": attribute,
            "sessions": int(all_sessions),
            "users": int(all_users),
            "user_share": {r[0]: r[4] for r in overall_rows},
            "session_share": {r[0]: r[2] for r in overall_rows},
            "incomplete_days": sum(1 for c in complete.values() if c < 0.99),
            # Versions whose every session lacks the attribute (older clients, say), with their sessions.
            "versions_without": {v: n for v, (n, total) in missing_versions.items() if n == total},
        },
        tables=[
            Table("overall", ["value", "sessions", "session_share", "users", "user_share"], overall_rows),
            over_time,
        ],
        notes=[
            "a user with several values (e.g. two machines) counts once for each, "
            "so user shares can add up to more than 100 %",
            f"at most {MAX_VALUES} values are shown, by users; the rest are '(other)' over time",
            completeness.note(b),
        ],
        chart=line_chart(
            over_time,
            "period",
            "user_share",
            "value",
            title=f"Share of users by {attribute}",
            percent=True,
            x_title=unit,
            y_title="share of active users",
            color_title=str(attribute),
        ),
    )


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    shares = [(v, x) for v, x in s["user_share"].items() if v != NONE]
    if not shares:
        return f"No session in range has {s['attribute']}."
    lead = ", ".join(f"{words.value(v)} ({words.percent(x)})" for v, x in shares[:3])
    text = (
        f"By users, the commonest values of {s['attribute']} are {lead}, among {words.count(s['users'])} users "
        f"and {words.count(s['sessions'])} sessions."
    )
    if NONE in s["session_share"]:
        # Not a value: sessions that do not say (older clients, another platform); named, not ranked.
        text += (
            f" {words.percent(s['session_share'][NONE])} of sessions (from {words.percent(s['user_share'][NONE])} "
            f"of users) do not have {s['attribute']}"
        )
        versions = list(s.get("versions_without", {}))
        if versions:
            named = ", ".join(versions[:3]) + (f" and {len(versions) - 3} more" if len(versions) > 3 else "")
            text += f"; no session of {named} has it"
        text += "."
    if s["users"] < 30:
        text += (
            f" Caveat: with {words.count(s['users'])} users, each user moves a share by "
            f"{words.percent(1 / s['users'])}."
        )
    return text
