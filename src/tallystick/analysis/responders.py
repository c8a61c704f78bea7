"""Where does the update nudge work? Nudged users split by each attribute's value, a cure model per value.

Each nudged user counts once, with their first episode (nudges seen, upgraded or not) and, per attribute,
the value all their nudged sessions share (a user whose sessions differ, two shells say, is left out of
that attribute). Steps:

1. **Which attributes.** Those common-factor would test (``common_factor.sample_sessions``: a sample of the
   sessions in scope by session ID, read alike on every engine), among the sampled nudged sessions:
   attributes with at most ``common_factor.MAX_VALUES_PER_ATTRIBUTE`` values, and of users rather than
   of runs (at most ``MIXED`` of their users have two values there: a shell, not the command run).
2. **Counts.** One grouped SQL query: each user's first episode joined to their values, grouped by
   (nudges, upgraded, one value per attribute): at most a row per nudged user.
3. **Test.** Per attribute, the cure model (``fit_cure_model``, see ``nudges``) fitted to each value's users
   (values with fewer than ``MIN_USERS`` pooled as one group, never named) against one fit to all:
   a likelihood-ratio test, chi-square with 2(V − 1) degrees of freedom; Benjamini–Hochberg over
   the attributes.
4. **Explaining away.** In the strongest significant attribute, the value whose users differ most from
   the rest, by at least ``MIN_DIFFERENCE`` of them upgraded (a difference worth acting on), is named:
   the nudge works *for* its users if they upgrade more often, *except for* them if less often (everyone
   heeds it but Windows users). Of an attribute with two groups, both comparisons are one test: the
   smaller group is named, the one that stands apart. Its users are set aside and the attributes tested
   again among the others. One that no longer differs only went along with the named value (its users
   happened to have it); one that still differs is named too (at most ``MAX_NAMED``).

The test assumes the cure model; upgrades that are not answers to nudges (automatic updates) break it,
and a small difference then looks significant: hence ``MIN_DIFFERENCE``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tallystick.analysis.common_factor import MAX_VALUES_PER_ATTRIBUTE, sample_sessions
from tallystick.analysis.outcome import outcome
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import benjamini_hochberg, chi_square_even_p
from tallystick.warehouse import rollup
from tallystick.warehouse.dialect import kept_fraction

MIN_USERS = 10
ALPHA = 0.05
SAMPLE = 1000  # nudged sessions read for their attribute names
USERS = 20_000  # nudged users above which the cells are counted for a sample of this many (by user ID)
MAX_NAMED = 3
MIXED = 0.1  # an attribute with two values or more in more of its users' sessions describes runs, not users
MIN_DIFFERENCE = 0.1  # a value is named only if its users' share upgraded differs this much from the others'
FOR, EXCEPT = "for", "except"  # the nudge works for a value's users, or for everyone except them
OTHER = "(other)"

Episodes = Counter[tuple[int, bool]]  # (nudges seen, upgraded) -> users
Cells = Counter[tuple[int, bool, tuple[str | None, ...]]]  # ... and the user's value of each attribute


def attributes(b: Bound, event: str) -> list[str]:
    """The attributes to split by: those common-factor tests, among a sample of the nudged sessions."""
    what = outcome(b, {"event": event})
    assert what.count_sql is not None  # an event's outcome always has one
    cases = int(b.rows(what.count_sql)[0][0] or 0)
    if not cases:
        return []
    sessions, _, _ = sample_sessions(b, what, 0, cases, SAMPLE, controls=False)  # the nudged sessions alone
    values: dict[str, set[str]] = defaultdict(set)
    per_user: dict[str, dict[Any, set[str]]] = defaultdict(lambda: defaultdict(set))
    runs = Counter(user for h, user, _ in sessions if h)
    for h, user, attrs in sessions:
        if h and runs[user] > 1:
            for key, text in attrs.items():
                per_user[key][user].add(text)
        if h:
            for key, text in attrs.items():
                values[key].add(text)
    return sorted(k for k, v in values.items() if len(v) <= MAX_VALUES_PER_ATTRIBUTE and of_users(per_user[k]))


def of_users(texts: dict[Any, set[str]]) -> bool:
    """Whether an attribute describes a user rather than a run, from the values of users seen in two runs or
    more: at most ``MIXED`` of them have two values (a shell, not the command run). Values of a run cannot
    say where a user is."""
    several = sum(1 for t in texts.values() if len(t) > 1)
    return several <= MIXED * len(texts)


def cells_sql(b: Bound, event: str, first: str, names: list[str], sample: str | None = None) -> str:
    """Users by (nudges, upgraded, value of each attribute); ``first`` selects each user's episodes as
    ``(u5, n, up, fst)``, ``fst`` = 1 for their first, from ``{nudged}`` (``nudges``: ``u`` a user's key);
    ``sample``: the condition on ``"userId"`` that chose the users in ``{nudged}`` (``user_sample``), if
    any. One JOIN per SELECT (ClickHouse 18.16)."""
    picked = "".join(
        f", CASE WHEN min(a{i}) = max(a{i}) THEN min(a{i}) ELSE NULL END AS v{i}" for i in range(len(names))
    )
    typed = b.typed(*names)  # the attributes' own columns, not the JSON (warehouse/rollup.py)
    attr = b.typed_attr if typed else b.attr
    texts = "".join(f", {attr(n)} AS a{i}" for i, n in enumerate(names))  # each read once, then compared
    events = f"FROM events WHERE {b.child_where(event, with_filters=False)}"
    users = ""
    if sample is not None:
        # The sampled users' sessions picked by their integer keys: comparing 10 million 36-character IDs
        # with the sample's bound took DuckDB 15 times as long as reading the keys.
        events += f" AND {sample}"
        users = f" AND {b.user_key(typed)} IN (SELECT u FROM {{nudged}})"
    nudged = f'"sessionId" IN (SELECT "sessionId" {events})'
    if typed and rollup.session_keyed(b.warehouse):  # integers, not 36-character IDs (as outcome.py's)
        key = b.dialect.user_key('"sessionId"')
        nudged = f"{rollup.SESSION_KEY} IN (SELECT {key} {events})"
    values = (
        f"SELECT u4{picked} FROM (SELECT {b.user_key(typed)} AS u4{texts} FROM {b.sessions_table(typed)} "
        f"WHERE {b.sessions_where(typed=typed)}{users} AND {nudged}) s GROUP BY u4"
    )
    columns = "".join(f", z.v{i}" for i in range(len(names)))
    return (
        f"SELECT g.n, g.up{columns}, count(*) FROM ({first}) g JOIN ({values}) z ON g.u5 = z.u4 WHERE g.fst = 1 "
        f"GROUP BY g.n, g.up{columns}"
    )


def user_sample(b: Bound, users: int) -> tuple[str | None, float]:
    """A condition on ``"userId"`` keeping about ``USERS`` of ``users`` nudged users, the same users on every
    engine (None: all of them, no more than ``USERS``), and the fraction of user IDs it keeps."""
    if users <= USERS:
        return None, 1.0
    fraction = kept_fraction(USERS / users)
    return b.dialect.sample_by('"userId"', [("1 = 1", fraction)], every=True), fraction


def fit_cure_model(episodes: Episodes, iterations: int = 2000) -> tuple[float, float]:
    """(never, p) maximising the likelihood of (nudges, upgraded) observations; see the module docstring."""
    upgraded = sum(c for (_, up), c in episodes.items() if up)
    total = sum(episodes.values())
    if not upgraded:
        return 1.0, 0.0
    never, p = 0.5, 0.1
    for _ in range(iterations):  # bounded; stops early once stable
        cured_mass = 0.0
        exposure = float(sum(c * k for (k, up), c in episodes.items() if up))
        for (k, up), c in episodes.items():
            if up:
                continue
            still = (1 - never) * (1 - p) ** k
            w = never / (never + still) if never + still > 0 else 1.0
            cured_mass += c * w
            exposure += c * (1 - w) * k
        new_never = cured_mass / total
        new_p = upgraded / exposure if exposure else 1.0
        done = abs(new_never - never) < 1e-9 and abs(new_p - p) < 1e-9
        never, p = new_never, new_p
        if done:
            break
    return never, p


def in_order(cells: Cells) -> Cells:
    """``cells`` in one order whatever order the engine returned them in: the fits sum floats in that order,
    and every engine must give the same answer to the last digit."""
    return Counter(dict(sorted(cells.items(), key=lambda item: (item[0][0], item[0][1], repr(item[0][2])))))


def log_likelihood(episodes: Episodes, never: float, p: float) -> float:
    """The cure model's log-likelihood of ``episodes`` (see ``nudges``' module docstring)."""
    total = 0.0
    for (k, up), c in episodes.items():
        chance = (1 - never) * p * (1 - p) ** (k - 1) if up else never + (1 - never) * (1 - p) ** k
        total += c * math.log(max(chance, 1e-300))
    return total


def _fitted(episodes: Episodes) -> float:
    return log_likelihood(episodes, *fit_cure_model(episodes))


def lr_test(groups: list[Episodes]) -> tuple[float, float]:
    """The likelihood-ratio statistic of one cure model per group against one for all, and its p-value."""
    pooled: Episodes = Counter()
    for g in groups:
        pooled.update(g)
    statistic = max(0.0, 2 * (sum(_fitted(g) for g in groups) - _fitted(pooled)))
    return statistic, chi_square_even_p(statistic, 2 * (len(groups) - 1))


def upgraded_share(episodes: Episodes) -> float:
    users = sum(episodes.values())
    return sum(c for (_, up), c in episodes.items() if up) / users if users else 0.0


@dataclass
class Tested:
    """One attribute's test: its values' users' first episodes, the statistic, p and q."""

    attribute: str
    by_value: dict[str, Episodes]
    statistic: float
    p: float
    q: float = 1.0


def _test(cells: Cells, names: list[str]) -> list[Tested]:
    tested = []
    for i, name in enumerate(names):
        by_value: dict[str, Episodes] = defaultdict(Counter)
        for (k, up, values), c in cells.items():
            if values[i] is not None:
                by_value[values[i]][(k, up)] += c  # type: ignore[index]
        groups = {v: e for v, e in by_value.items() if sum(e.values()) >= MIN_USERS}
        rest: Episodes = Counter()
        for v, e in by_value.items():
            if v not in groups:
                rest.update(e)
        if sum(rest.values()) >= MIN_USERS:
            groups[OTHER] = rest
        if len(groups) < 2:
            continue
        statistic, p = lr_test(list(groups.values()))
        tested.append(Tested(name, dict(sorted(groups.items())), statistic, p))
    for t, q in zip(tested, benjamini_hochberg([t.p for t in tested]), strict=True):
        t.q = q
    return tested


@dataclass
class Named:
    """A value the nudge works for (``direction`` FOR) or for everyone but (EXCEPT): its users' and the
    others' share upgraded after their first nudges."""

    attribute: str
    value: str
    users: int
    upgraded: float
    others: int
    others_upgraded: float
    q: float
    direction: str = FOR

    def label(self) -> str:
        return f"{self.attribute}={self.value}"


@dataclass
class Found:
    tested: list[Tested]
    named: list[Named] = field(default_factory=list)
    explained: dict[str, str] = field(default_factory=dict)  # attribute -> the value that explained it


def _standout(t: Tested) -> Named | None:
    """The value of ``t`` whose users differ most from the rest, by at least ``MIN_DIFFERENCE`` either way."""
    values = [v for v in t.by_value if v != OTHER]
    if len(t.by_value) == 2 and len(values) == 2:  # one test whichever is named: the smaller group
        values = [min(values, key=lambda v: (sum(t.by_value[v].values()), v))]
    best: tuple[float, Named] | None = None
    for value in values:
        mine = t.by_value[value]
        rest: Episodes = Counter()
        for v, e in t.by_value.items():
            if v != value:
                rest.update(e)
        share, others = upgraded_share(mine), upgraded_share(rest)
        if abs(share - others) < MIN_DIFFERENCE:
            continue
        statistic, _ = lr_test([mine, rest])
        named = Named(
            t.attribute,
            value,
            sum(mine.values()),
            share,
            sum(rest.values()),
            others,
            t.q,
            FOR if share > others else EXCEPT,
        )
        if best is None or statistic > best[0]:
            best = (statistic, named)
    return best[1] if best else None


def find(cells: Cells, names: list[str], alpha: float = ALPHA) -> Found:
    """Test every attribute, then name values one at a time, each among the users without the ones before."""
    first = _test(cells, names)
    found = Found(first)
    current = first
    significant = {t.attribute for t in first if t.q < alpha}
    while len(found.named) < MAX_NAMED:
        candidates = sorted((t for t in current if t.q < alpha), key=lambda t: (t.p, -t.statistic))
        named = next((n for t in candidates if (n := _standout(t)) is not None), None)
        if named is None:
            break
        found.named.append(named)
        i = names.index(named.attribute)
        cells = Counter({key: c for key, c in cells.items() if key[2][i] != named.value})
        current = _test(cells, names)
        still = {t.attribute for t in current if t.q < alpha}
        for attribute in significant - still - set(found.explained) - {n.attribute for n in found.named}:
            found.explained[attribute] = named.label()
    return found


def summary(found: Found) -> dict[str, Any]:
    def listed(direction: str) -> list[dict[str, Any]]:
        return [
            {
                "attribute": n.attribute,
                "value": n.value,
                "users": n.users,
                "upgraded_share": round(n.upgraded, 4),
                "others": n.others,
                "others_upgraded_share": round(n.others_upgraded, 4),
                "q": n.q,
            }
            for n in found.named
            if n.direction == direction
        ]

    return {"works_for": listed(FOR), "works_except_for": listed(EXCEPT), "explained": dict(found.explained)}
