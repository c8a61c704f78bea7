"""Version adoption: how long does it take for a new version to be used?

Per day: the share of active users (and of sessions) on each version; per release
(first seen = its first session from anyone): days until 50 % and 90 % of the day's
active users were on it or a newer version; per day: the share of sessions on
versions first seen in the 30 days before.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from tallystick.analysis import completeness, words
from tallystick.analysis.report import Report, Table, line_chart
from tallystick.analysis.scope import Bound

RECENT_DAYS = 30
LAST_DAYS = 3  # "now", for a release's share of active users: the last days with data, pooled
# A pre-release: PEP 440's a/b/rc/dev (``2.0.0b1``, ``1.4.dev3``) or SemVer's ``-label`` (``2.0.0-beta.1``).
_PRE_RELEASE = re.compile(r"(?i)\d[._-]?(?:a|b|c|rc|alpha|beta|pre|preview)[._-]?\d*$|[._-]dev\d*$|^v?\d+(?:\.\d+)*-")


def is_pre_release(version: str) -> bool:
    return bool(_PRE_RELEASE.search(version))


def newest(releases: dict[str, dict[str, Any]]) -> str:
    """The release first seen last, pre-releases left out unless there is nothing else."""
    final = [v for v in releases if not is_pre_release(v)] or list(releases)
    return max(final, key=lambda v: releases[v]["first_seen"])


def run(b: Bound, params: dict[str, Any]) -> Report:
    d = b.dialect
    day = d.day('"sessionStartTime"')
    rolled = b.rollup_where()
    typed = rolled is None and b.reads_typed()  # a filter the rollup cannot answer: sessions_typed's columns
    where = b.sessions_where(typed=typed)
    user = b.user_key(typed)
    table = b.sessions_table(typed)
    if rolled is not None:
        # One rollup row per user, day, version (and environment); userDayRows = 1 means the row is that
        # user's only one that day, so it counts as one user without a distinct count (see rollup.py).
        counted = b.rows(
            'SELECT "day", "applicationVersion", sum("sessions"), count(*) FILTER (WHERE "userDayRows" = 1), '
            'count(DISTINCT CASE WHEN "userDayRows" > 1 THEN "userKey" END) FROM sessions_daily '
            f'WHERE {rolled} GROUP BY "day", "applicationVersion"'
        )
        by_version = [(dd, v, n, int(single) + int(several)) for dd, v, n, single, several in counted]
        # A user alone on a row that day is on that row's version; the others need their newest version.
        at_least = [(dd, b.rank.get(v, -1), single) for dd, v, _, single, _ in counted if single]
        at_least += b.rows(
            f'SELECT d, r, count(*) FROM (SELECT "day" AS d, "userKey", max({b.rank_sql()}) AS r FROM sessions_daily '
            f'WHERE {rolled} AND "userDayRows" > 1 GROUP BY ALL) t GROUP BY ALL'
        )
    else:
        by_version = b.rows(
            f'SELECT {day} AS d, "applicationVersion", count(*), count(DISTINCT {user}) FROM {table} '
            f'WHERE {where} GROUP BY {day}, "applicationVersion"'
        )
        at_least = b.rows(
            f"SELECT d, r, count(*) FROM (SELECT {day} AS d, {user} AS u, max({b.rank_sql()}) AS r FROM {table} "
            f"WHERE {where} GROUP BY {day}, {user}) t GROUP BY d, r"
        )
    if not by_version:
        raise b.empty()
    sessions_day: dict[date, int] = defaultdict(int)
    for dd, _, n, _ in by_version:
        sessions_day[dd] += int(n)
    users_at_rank: dict[date, dict[int, int]] = defaultdict(dict)
    for dd, r, n in at_least:
        users_at_rank[dd][int(r)] = users_at_rank[dd].get(int(r), 0) + int(n)
    active = {dd: sum(v.values()) for dd, v in users_at_rank.items()}

    def share_at_least(dd: date, rank: int) -> float:
        counts = users_at_rank.get(dd, {})
        return sum(n for r, n in counts.items() if r >= rank) / active[dd] if active.get(dd) else 0.0

    releases_rows = []
    summary_releases: dict[str, dict[str, Any]] = {}
    for rel in b.releases:
        rank = b.rank[rel.version]
        first = rel.first_seen.date()
        reached: dict[float, int | None] = {0.5: None, 0.9: None}
        peak = 0.0
        for dd in sorted(active):
            if dd < first:
                continue
            share = share_at_least(dd, rank)
            peak = max(peak, share)
            for threshold, when in list(reached.items()):
                if when is None and share >= threshold:
                    reached[threshold] = (dd - first).days
        days_seen = (b.until - first).days + 1
        releases_rows.append([rel.version, rel.first_seen, reached[0.5], reached[0.9], round(peak, 4), days_seen])
        summary_releases[rel.version] = {
            "first_seen": rel.first_seen,
            "days_to_50": reached[0.5],
            "days_to_90": reached[0.9],
            "days_observed": days_seen,
            "peak_user_share": peak,
            "last_user_share": _share_now(users_at_rank, rank),
        }
    complete = completeness.by_day(b)
    daily = []
    recent_rows = []
    recent_total = 0
    for dd, version, n, users in sorted(by_version, key=lambda r: (r[0], b.rank.get(r[1], -1))):
        daily.append(
            [dd, version, int(n), round(int(n) / sessions_day[dd], 4), int(users), round(int(users) / active[dd], 4)]
        )
    for dd in sorted(sessions_day):
        cutoff = dd - timedelta(days=RECENT_DAYS)
        recent = sum(
            int(n) for d2, v, n, _ in by_version if d2 == dd and cutoff < b.releases[b.rank[v]].first_seen.date() <= dd
        )
        recent_total += recent
        recent_rows.append([dd, sessions_day[dd], round(recent / sessions_day[dd], 4), round(complete.get(dd, 1.0), 4)])
    daily_table = Table("daily", ["day", "version", "sessions", "session_share", "users", "user_share"], daily)
    total_sessions = sum(sessions_day.values())
    return Report(
        analysis="adoption",
        title="How fast are new versions adopted?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "releases": summary_releases,
            "recent_release_session_share": round(recent_total / total_sessions, 4),
            "active_users_last_day": active[max(active)],
            "incomplete_days": sum(1 for c in complete.values() if c < 0.99),
            "clock_skewed_sessions": b.clock_left_out,
        },
        tables=[
            Table(
                "releases",
                [
                    "version",
                    "first_seen",
                    "days_to_50pct_users",
                    "days_to_90pct_users",
                    "peak_user_share",
                    "days_observed",
                ],
                releases_rows,
            ),
            daily_table,
            Table(
                "recent",
                ["day", "sessions", f"share_on_versions_under_{RECENT_DAYS}_days_old", "complete"],
                recent_rows,
            ),
        ],
        notes=[
            "a release counts as adopted by a user on it or any newer version (newer = first seen later)",
            "days_to_* is empty when the share was not reached in the range",
            completeness.note(b),
        ],
        chart=line_chart(
            _weekly(daily_table),
            "week",
            "user_share",
            "version",
            title="Share of active users per version (weekly)",
            percent=True,
            x_title="week",
            y_title="share of active users",
            color_title="version",
        ),
    )


def _share_now(users_at_rank: dict[date, dict[int, int]], rank: int) -> float:
    """The share of active users on a release or newer over the last days with data, pooled: a release
    withdrawn after its peak has fallen back by then."""
    tail = sorted(users_at_rank)[-LAST_DAYS:]
    active = sum(n for dd in tail for n in users_at_rank[dd].values())
    on = sum(n for dd in tail for r, n in users_at_rank[dd].items() if r >= rank)
    return on / active if active else 0.0


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    releases = s["releases"]
    if not releases:
        return "No release in range."
    newest_version = newest(releases)
    pre = [v for v in releases if releases[v]["first_seen"] > releases[newest_version]["first_seen"]]
    latest = releases[newest_version]
    first = str(latest["first_seen"])[:10]
    if len(releases) == 1:
        return f"Only one version, {newest_version}, is in use: there is no adoption to measure yet."
    if latest["days_to_50"] is not None:
        text = (
            f"The newest release, {newest_version} (first seen {first}), reached half of the active users in "
            f"{latest['days_to_50']} day{'s' if latest['days_to_50'] != 1 else ''}"
        )
    else:
        text = (
            f"The newest release, {newest_version} (first seen {first}), has not yet reached half of the active "
            f"users in {latest['days_observed']} day{'s' if latest['days_observed'] != 1 else ''}"
        )
    now, peak = latest.get("last_user_share"), latest.get("peak_user_share", 0.0)
    if now is not None and peak >= 0.2 and now < peak / 2:
        text += (
            f", but it is now on only {words.percent(now)} of them (down from {words.percent(peak)}): its users "
            "went back to an older version (withdrawn?)"
        )
    earlier = [
        r["days_to_50"]
        for v, r in releases.items()
        if v != newest_version and not is_pre_release(v) and r["days_to_50"] is not None and r["days_to_50"] > 0
    ]
    if earlier:
        low, high = min(earlier), max(earlier)
        text += (
            f"; earlier releases took {low}"
            + (f"–{high}" if high != low else "")
            + (" day." if high == 1 else " days.")
        )
    else:
        text += "."
    if pre:
        shares = ", ".join(
            f"{v} (first seen {str(releases[v]['first_seen'])[:10]}, at most "
            f"{words.percent(releases[v].get('peak_user_share', 0))})"
            for v in pre[:2]
        )
        text += f" Newer pre-releases, on few of the active users: {shares}."
    users = s["active_users_last_day"]
    if users < 20:
        text += f" Caveat: only {words.count(users)} active users on the last day."
    if s.get("incomplete_days"):
        text += " " + words.still_arriving(s["incomplete_days"])
    if s.get("clock_skewed_sessions"):
        text += " " + words.clock_skewed(s["clock_skewed_sessions"])
    return text


def _weekly(daily: Table) -> Table:
    """The daily user shares averaged per week (days with data): one smooth line per version, not 12 jagged."""
    sums: dict[tuple[date, str], list[float]] = defaultdict(lambda: [0.0, 0])
    days_in_week: dict[date, set[date]] = defaultdict(set)
    for r in daily.records():
        week = r["day"] - timedelta(days=r["day"].weekday())
        sums[(week, r["version"])][0] += r["user_share"]
        days_in_week[week].add(r["day"])
    rows = [[w, v, round(total / len(days_in_week[w]), 4)] for (w, v), (total, _) in sorted(sums.items())]
    return Table("weekly", ["week", "version", "user_share"], rows)
