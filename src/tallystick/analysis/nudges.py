"""Update-nudge response: how many nudges does a user see before they update?

An *episode* is a user on one version that saw at least one nudge event there; it
ends in an upgrade if the user later has a session on a newer version (newer = first
seen later), else it is censored (the user never upgraded within the range).

Besides the distribution of nudges before an upgrade, a two-part model is fitted to
each user's first episode by maximum likelihood (EM): a share ``never`` of users who
ignore nudges for good, and for the others a constant probability ``p`` of upgrading
after each nudge (so the nudges before upgrading are geometric with mean 1/p).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from tallystick.analysis import responders, words
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.responders import fit_cure_model
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import Weighted

BUCKETS = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, None))


MIN_USERS = 30  # fewer nudged users: too few to tell where the nudge works


def _where(
    b: Bound, event: str, first: str, nudged: Callable[[str], str], users: int
) -> tuple[responders.Found, float]:
    """Which values the nudge works for (``responders``), and the fraction of the ``users`` nudged users it
    looked at; ``first`` selects each user's episodes as ``(u5, n, up, fst)``, ``fst`` = 1 for their first,
    from ``{nudged}``: ``nudged(condition)``, the nudge counts of the users whose ``"userId"`` meets it."""
    names = responders.attributes(b, event)
    if not names:
        return responders.Found([]), 1.0
    sample, fraction = responders.user_sample(b, users)
    cells: responders.Cells = Counter()
    sql = responders.cells_sql(b, event, first, names, sample)
    for row in b.rows(b.dialect.shared(sql, nudged=nudged(sample or "1 = 1"))):
        cells[(int(row[0]), bool(row[1]), tuple(None if v is None else str(v) for v in row[2:-1]))] += int(row[-1])
    return responders.find(responders.in_order(cells), names), fraction


def run(b: Bound, params: dict[str, Any]) -> Report:
    event = str(params.get("event") or "UpdateNudgeShown")
    b.require_type("events", event, with_filters=False)  # cheap; the filters' answer is in the rows
    rank = b.rank_sql()
    user = b.dialect.user_key()
    where = b.child_where(event)

    def nudged_of(users: str) -> str:
        counts = f"SELECT {user} AS u, {rank} AS r, count(*) AS n FROM events"
        return f"{counts} WHERE {where} AND {users} GROUP BY {user}, {rank}"

    nudged = nudged_of("1 = 1")
    rolled = b.rollup_where()  # the daily rollup has each user's versions without a JSON parse (warehouse/rollup.py)
    if rolled is not None:
        latest = f'SELECT "userKey" AS u2, max({rank}) AS mr FROM sessions_daily WHERE {rolled} GROUP BY "userKey"'
    else:
        typed = b.reads_typed()
        latest = (
            f"SELECT {b.user_key(typed)} AS u2, max({rank}) AS mr FROM {b.sessions_table(typed)} "
            f"WHERE {b.sessions_where(typed=typed)} GROUP BY {b.user_key(typed)}"
        )
    # One JOIN per SELECT: ClickHouse 18.16 allows no more. The nudge counts are read twice, computed once.
    episodes_sql = f"SELECT u, r, n, mr FROM {{nudged}} e JOIN ({latest}) m ON e.u = m.u2"
    first_nudged = "SELECT u AS u3, min(r) AS fr FROM {nudged} x GROUP BY u"
    up = "CASE WHEN y.r < y.mr THEN 1 ELSE 0 END"
    is_first = "CASE WHEN y.r = f.fr THEN 1 ELSE 0 END"
    first_sql = (  # each user's episodes, the first marked: read apart with their attributes (``_where``)
        f"SELECT y.u AS u5, y.n AS n, {up} AS up, {is_first} AS fst FROM ({episodes_sql}) y "
        f"JOIN ({first_nudged}) f ON y.u = f.u3"
    )
    rows = b.rows(
        b.dialect.shared(
            f"SELECT y.n, {up}, {is_first}, count(*) FROM ({episodes_sql}) y JOIN ({first_nudged}) f "
            f"ON y.u = f.u3 GROUP BY y.n, {up}, {is_first}",
            nudged=nudged,
        )
    )
    if not rows:
        b.require_type("events", event)
        raise b.empty(f"{event} events")
    episodes: Counter[tuple[int, bool]] = Counter()
    first: Counter[tuple[int, bool]] = Counter()
    for n, up, is_first, c in rows:
        episodes[(int(n), bool(up))] += int(c)
        if is_first:
            first[(int(n), bool(up))] += int(c)
    before = Weighted.of((float(k), c) for (k, up), c in episodes.items() if up)
    users = sum(first.values())
    never_upgraded = sum(c for (_, up), c in first.items() if not up)
    never, p = fit_cure_model(first)
    bucket_rows = []
    for lo, hi in BUCKETS:
        up_count = sum(c for (k, up), c in episodes.items() if up and k >= lo and (hi is None or k <= hi))
        cens = sum(c for (k, up), c in episodes.items() if not up and k >= lo and (hi is None or k <= hi))
        label = f"{lo}" if lo == hi else (f"{lo}-{hi}" if hi else f"{lo}+")
        bucket_rows.append([label, up_count, cens])
    n_up = before.n
    found, fraction = responders.Found([]), 1.0
    if users >= MIN_USERS:
        found, fraction = _where(b, event, first_sql, nudged_of, users)
    summary = {
        "event": event,
        "episodes": sum(episodes.values()),
        "episodes_upgraded": n_up,
        "users_nudged": users,
        "users_never_upgraded_share": round(never_upgraded / users, 4) if users else None,
        "median_nudges_before_upgrade": before.quantile(0.5) if n_up else None,
        "p90_nudges_before_upgrade": before.quantile(0.9) if n_up else None,
        "mean_nudges_before_upgrade": round(before.mean(), 2) if n_up else None,
        "upgrade_probability_per_nudge": round(p, 4),
        "never_respond_share": round(never, 4),
        "expected_nudges_before_upgrade": round(1 / p, 1) if p > 0 else math.inf,
        # Where it works is measured on the nudged users whose ID falls in this share (all below USERS of them).
        "works_for_user_fraction": round(fraction, 6),
    } | responders.summary(found)
    table = Table("nudges_before_upgrade", ["nudges", "episodes_upgraded", "episodes_not_upgraded"], bucket_rows)
    return Report(
        analysis="nudges",
        title="How many update nudges does a user see before updating?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary=summary,
        tables=[
            table,
            Table(
                "by_attribute",
                ["attribute", "values", "statistic", "p_value", "q_value", "named", "explained_by"],
                [
                    [
                        t.attribute,
                        len(t.by_value),
                        round(t.statistic, 3),
                        t.p,
                        t.q,
                        ", ".join(
                            n.value if n.direction == responders.FOR else f"except {n.value}"
                            for n in found.named
                            if n.attribute == t.attribute
                        )
                        or None,
                        found.explained.get(t.attribute),
                    ]
                    for t in sorted(found.tested, key=lambda t: t.p)
                ],
            ),
            Table(
                "model",
                ["quantity", "value"],
                [
                    ["upgrade probability per nudge", summary["upgrade_probability_per_nudge"]],
                    ["share of users who never respond", summary["never_respond_share"]],
                    ["expected nudges before upgrading (responsive users)", summary["expected_nudges_before_upgrade"]],
                ],
            ),
        ],
        notes=[
            "an episode is a user on one version who saw the nudge there; it ends in an upgrade if the user later ran "
            "a newer version within the range",
            "not-upgraded episodes are censored, not failures: the range may end before the user upgrades",
            "the model is fitted to each user's first episode; upgrades for other reasons (automatic updates) look "
            "like responses, so pick a range before such changes to measure nudges alone",
            "works for: the cure model fitted per value of each attribute describing users (likelihood-ratio test, "
            f"false discovery rate {words.percent(responders.ALPHA)} over the attributes); a value is named when its "
            f"users' share upgraded differs from the others' by at least {words.percent(responders.MIN_DIFFERENCE)}: "
            "the nudge works for them if they upgrade more often, for everyone except them if less often; values "
            "that only go along with it are explained away"
            + (
                f"; measured on a sample of about {words.count(responders.USERS)} of the "
                f"{words.count(users)} nudged users, by user ID (the same users on every engine)"
                if fraction < 1
                else ""
            ),
        ],
        chart=bar_chart(
            table,
            "nudges",
            "episodes_upgraded",
            title="Nudges seen before upgrading",
            x_title="nudges seen",
            y_title="users who then upgraded",
        ),
    )


def headline(s: dict[str, Any]) -> str:
    """The answer in words, from the summary alone."""
    if not s["episodes"]:
        return f"No user saw {s['event']}: there is nothing to measure."
    median, p90 = s.get("median_nudges_before_upgrade"), s.get("p90_nudges_before_upgrade")
    if median is None:
        text = f"No user upgraded after seeing {s['event']} yet ({words.count(s['episodes'])} nudged episodes)."
    else:
        within = f" (90 % within {p90:g})" if p90 is not None else ""
        text = f"Users who upgraded after {s['event']} saw a median of {median:g} nudge{'s' if median != 1 else ''} "
        text += f"first{within}."
    probability, never = s.get("upgrade_probability_per_nudge"), s.get("never_respond_share")
    if probability is not None:
        text += f" Each nudge leads to an upgrade {words.percent(probability)} of the time"
        text += f", and an estimated {words.percent(never)} of users never respond." if never is not None else "."
    # "works except for X" says everyone else heeds it; after a "works for" it is where it works less.
    less = "works less for" if s.get("works_for") else "works except for"
    for key, lead in (("works_for", "works for"), ("works_except_for", less)):
        works = s.get(key) or []
        if works:
            w = works[0]
            text += (
                f" The nudge {lead} {words.label(w['attribute'], w['value'])} users: "
                f"{words.percent(w['upgraded_share'])} of them upgraded after their first nudges, against "
                f"{words.percent(w['others_upgraded_share'])} of the others"
            )
            also = [words.label(x["attribute"], x["value"]) for x in works[1:]]
            text += f" (also {', '.join(also)})." if also else "."
    if s["users_nudged"] < MIN_USERS:
        text += f" Caveat: only {words.count(s['users_nudged'])} users were nudged."
    return text
