"""Event rate: what share of sessions have an event (or end with an exit code), over time and by version?

The overall rate's interval is a Wilson interval on the effective number of sessions: the
sessions divided by the design effect of their users (``stats.Clustered``), so a few heavy
users who hit the event often do not make it look more certain than it is.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from tallystick.analysis import completeness, words
from tallystick.analysis.outcome import outcome
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import proportion_design_effect_of_sums, wilson

MIN_USERS = 10
MIN_VERSION_SESSIONS = 30  # the headline's "newest version" has at least this many sessions
STANDS_OUT = 1.5  # a version whose rate is this many times the others' (and clearly so) is named


def _per_user_sums(b: Bound, users_sql: str, hits_sql: str | None) -> tuple[int, int, int, int, int, int, int]:
    """(users, users with the outcome, Σn, Σk, Σn², Σk², Σn·k) over users of their sessions n and those with the
    outcome k, added up in SQL (``users_sql`` gives ``u, n, k`` per user, or ``u, n`` when ``hits_sql`` gives
    ``hu, k``: joined to it): one row back instead of one per user, exact integers on every engine."""
    if hits_sql is not None:
        users_sql = f"SELECT u, n, coalesce(k, 0) AS k FROM ({users_sql}) s LEFT JOIN ({hits_sql}) h ON s.u = h.hu"
    row = b.rows(
        "SELECT count(*), sum(CASE WHEN k > 0 THEN 1 ELSE 0 END), sum(n), sum(k), sum(n * n), sum(k * k), sum(n * k) "
        f"FROM ({users_sql}) x"
    )[0]
    g, gk, n, k, nn, kk, nk = (int(v or 0) for v in row)
    return g, gk, n, k, nn, kk, nk


def run(b: Bound, params: dict[str, Any]) -> Report:
    what = outcome(b, params)
    day = session_day = b.dialect.day('"sessionStartTime"')
    event = params.get("event")
    # Sessions per day, version and user from the daily rollup when it can answer (an event outcome: the
    # rollup has no session IDs or exit codes), else from sessions_typed's columns or the JSON (warehouse/rollup.py).
    rolled = b.rollup_where() if event is not None else None
    typed = rolled is None and b.reads_typed(*what.attributes)
    if rolled is not None:
        source, day, count, user = f"sessions_daily WHERE {rolled}", '"day"', 'sum("sessions")', '"userKey"'
    else:
        source = f"{b.sessions_table(typed)} WHERE {b.sessions_where(typed=typed)}"
        count, user = "count(*)", b.user_key(typed)
    if event is not None:
        # The events table alone has day and version: sessions are counted, not joined with events
        # (``child_where`` restricts the events to sessions that pass the filters).
        rows = b.rows(
            f'SELECT {day}, "applicationVersion", {count}, 0 FROM {source} GROUP BY {day}, "applicationVersion"'
        )
        hits = {
            (dd, v): int(k)
            for dd, v, k in b.rows(
                f'SELECT {session_day}, "applicationVersion", count(DISTINCT "sessionId") FROM events '
                f'WHERE {b.child_where(str(event))} GROUP BY {session_day}, "applicationVersion"'
            )
        }
        rows = [(dd, v, n, hits.get((dd, v), 0)) for dd, v, n, _ in rows]
    else:
        rows = b.rows(
            f'SELECT {day}, "applicationVersion", {count}, sum(CASE WHEN {what.on(typed)} THEN 1 ELSE 0 END) '
            f'FROM {source} GROUP BY {day}, "applicationVersion"'
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
    if event is not None:
        users_sql = f"SELECT {user} AS u, {count} AS n FROM {source} GROUP BY {user}"
        hits_sql = (
            f'SELECT {b.user_key()} AS hu, count(DISTINCT "sessionId") AS k FROM events '
            f"WHERE {b.child_where(str(event))} GROUP BY {b.user_key()}"
        )
        sums = _per_user_sums(b, users_sql, hits_sql)
    else:
        sums = _per_user_sums(
            b,
            f"SELECT {user} AS u, count(*) AS n, sum(CASE WHEN {what.on(typed)} THEN 1 ELSE 0 END) AS k "
            f"FROM {source} GROUP BY {user}",
            None,
        )
    users, users_with_outcome, n_sum, k_sum, nn, kk, nk = sums
    design_effect = proportion_design_effect_of_sums((users, n_sum, k_sum, nn, kk, nk))
    n_eff = n_all / design_effect
    lo, hi = wilson(round(k_all / design_effect), max(1, round(n_eff)))
    p = k_all / n_all
    lo, hi = min(lo, p), max(hi, p)
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
            "users": users,
            "users_with_outcome": users_with_outcome,
            "design_effect": design_effect,
            "incomplete_days": sum(1 for dd in by_day if complete.get(dd, 1.0) < 0.99),
            "by_version": {
                r[0]: {"rate": r[3], "rate_lo": r[4], "rate_hi": r[5], "sessions": r[1]} for r in versions.rows
            },
        },
        tables=[versions, daily],
        notes=[
            "intervals are 95 % Wilson intervals; the overall one counts users' sessions as less than independent "
            "(design effect)",
            completeness.note(b),
        ],
        chart=line_chart(
            daily,
            "day",
            "rate",
            title=f"Share of sessions with {what.label}",
            percent=True,
            x_title="day",
            y_title=f"share of sessions with {what.label}",
        ),
    )


def _standing_out(s: dict[str, Any]) -> tuple[str, float, float, float, float] | None:
    """The version whose rate is clearly above the other versions' together, if one is: (version, rate, its
    interval, the others' rate). Intervals count heavy users' sessions as less (the overall design effect) and
    are Bonferroni-adjusted over the versions with enough sessions; the rate must also be 1.5 times the rest."""
    if s["users"] < MIN_USERS:
        return None
    deff = max(1.0, float(s["design_effect"]))
    candidates = {v: r for v, r in s["by_version"].items() if r.get("sessions", 0) >= MIN_VERSION_SESSIONS}
    if len(candidates) < 2:
        return None
    confidence = 1 - 0.05 / len(candidates)
    best: tuple[float, tuple[str, float, float, float, float]] | None = None
    for version, r in candidates.items():
        n, k = r["sessions"], round(r["rate"] * r["sessions"])
        rest_n, rest_k = s["sessions"] - n, s["with_outcome"] - k
        if rest_n <= 0:
            continue
        lo, hi = wilson(round(k / deff), max(1, round(n / deff)), confidence)
        _, rest_hi = wilson(round(rest_k / deff), max(1, round(rest_n / deff)), confidence)
        rest = rest_k / rest_n
        if lo > rest_hi and r["rate"] >= STANDS_OUT * rest and (best is None or lo / max(rest_hi, 1e-9) > best[0]):
            best = (lo / max(rest_hi, 1e-9), (version, r["rate"], lo, hi, rest))
    return best[1] if best else None


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    label = s["outcome"]
    text = (
        f"{words.percent(s['rate'])} of sessions have {label} (95 % interval {words.percent(s['rate_lo'])}–"
        f"{words.percent(s['rate_hi'])}): {words.count(s['with_outcome'])} of {words.count(s['sessions'])} sessions, "
        f"from {words.count(s['users_with_outcome'])} of {words.count(s['users'])} users."
    )
    versions = s["by_version"]
    if len(versions) > 1:
        # The newest version with enough sessions for a rate (a nightly's two sessions give 0 %–80 %).
        enough = [v for v, r in versions.items() if r.get("sessions", MIN_VERSION_SESSIONS) >= MIN_VERSION_SESSIONS]
        latest = (enough or list(versions))[-1]
        v = versions[latest]
        newer = len(versions) - 1 - list(versions).index(latest)
        text += (
            f" In the newest version{f' with {MIN_VERSION_SESSIONS} sessions or more' if newer else ''}, {latest}: "
            f"{words.percent(v['rate'])} ({words.percent(v['rate_lo'])}–{words.percent(v['rate_hi'])})."
        )
        out = _standing_out(s)
        if out is not None:
            version, rate, lo, hi, rest = out
            text += (
                f" {version} stands out: {words.percent(rate)} ({words.percent(lo)}–{words.percent(hi)}) against "
                f"{words.percent(rest)} in the other versions; a version's users can differ (CI runs, early "
                "adopters), so compare it with --where (isCI=false, say) before blaming the version."
            )
    if s["users"] < MIN_USERS:
        # Too few to say more than roughly: said first, not as an afterthought to a precise-looking rate.
        text = f"Too few users ({words.count(s['users'])}) for a firm rate: {text[0].lower()}{text[1:]}"
    elif s["design_effect"] > 2:
        text += " Caveat: a few heavy users account for much of it."
    if s["incomplete_days"]:
        text += " " + words.still_arriving(s["incomplete_days"])
    return text
