"""A second round of planted truths, written from the analyses' docs alone (``unseen.py`` was the first).

Each builder returns sessions in wire format (dicts), deterministic for its seed, made with ``unseen``'s
``Maker``: an error needing Windows and Python 3.13 together, a version whose errors are its CI runs', a
flag a few heavy users leave on, a nudge only fish users heed (``nudged``: only the users it picks;
``nudge_cells`` counts them as ``responders`` does, from the sessions alone), a span that regressed on
Windows only, a last release withdrawn after two days, populations where nothing happens, ten sessions,
old clients without some environment keys, span times with hung outliers, clocks set years wrong, nightly
builds (about 150 versions), non-ASCII values, and users who differ a lot in how often they fail while a
few heavy ones share a flag.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from analysis.unseen import Maker, Session, User, _base, pick
from tallystick.analysis import responders
from tallystick.analysis.common_factor import MAX_VALUES_PER_ATTRIBUTE, decoded_texts

E = "ContainerStartFailed"


def _build(
    m: Maker,
    u: User,
    t: Any,
    failed: bool,
    *,
    sigma: float = 0.5,
    version: str | None = None,
    span_attrs: dict[str, Any] | None = None,
    **attrs: Any,
) -> Session:
    """A session with or without the error (and its exit code), with a BuildImage span (log-normal ``sigma``)."""
    ms = m.rng.lognormvariate(math.log(3000), sigma)
    return m.session(
        u,
        t,
        version=version,
        events=[(E, {})] if failed else [],
        spans=[("BuildImage", ms, span_attrs or {})],
        attrs={"exitCode": 3 if failed else 0, **attrs},
    )


def _error(m: Maker, u: User, t: Any, p: float, *, version: str | None = None, **attrs: Any) -> Session:
    return _build(m, u, t, m.rng.random() < p, version=version, **attrs)


def os_python(seed: int = 21) -> list[Session]:
    """ContainerStartFailed in 30 % of sessions on Windows with Python 3.13, 1 % everywhere else."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(300, lambda rng, i: _base(rng)), 2500):
        a = u.attrs
        both = a["operatingSystem"] == "Windows" and a["pythonVersion"] == "3.13.1"
        out.append(_error(m, u, t, 0.3 if both else 0.01))
    return out


def ci_version(seed: int = 22) -> list[Session]:
    """CI runs fail five times as often (10 % against 2 %) whatever the version; CI pins 1.1.0 for the whole
    range while people move on, so 1.1.0's error rate is high only because CI runs it."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(200, lambda rng, i: {**_base(rng), "isCI": rng.random() < 0.25}), 2000):
        ci = u.attrs["isCI"]
        version = "1.1.0" if ci else m.version_at(t)
        out.append(_error(m, u, t, 0.10 if ci else 0.02, version=version))
    return out


def heavy_feature(seed: int = 23) -> list[Session]:
    """``watchMode`` is on for 5 % of users, each running the tool 40 times as often as others: most sessions
    have it, few users do. It changes nothing."""
    m = Maker(seed)
    people = m.users(200, lambda rng, i: {**_base(rng), "watchMode": i < 10})
    for u in people:
        if u.attrs["watchMode"]:
            u.weight *= 40
    return [_error(m, u, t, 0.03) for u, t in m.runs(people, 1500)]


def nudge_shell(seed: int = 24) -> list[Session]:
    """Releases every 15 days; outdated users see ``UpdateNudgeShown`` on each run. fish users update after
    a nudge with probability 0.4; nobody else ever updates."""
    return nudged(seed, lambda a: a["shell"] == "fish", 0.4)


def nudged(seed: int, heeds: Callable[[dict[str, Any]], bool], p: float) -> list[Session]:
    """As ``nudge_shell``, with the users who update after a nudge (with probability ``p``) chosen by their
    attributes: ``lambda a: a["operatingSystem"] == "Windows"`` for Windows users only (15 % of users),
    ``lambda a: True`` for everyone alike."""
    m = Maker(seed, days=90, versions=("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"))
    people = m.users(200, lambda rng, i: _base(rng), spread=0.5)
    installed = {u.id: 0 for u in people}
    out = []
    for u, t in m.runs(people, 2000):
        latest = m.versions.index(m.version_at(t))
        events = [("UpdateNudgeShown", {})] if installed[u.id] < latest else []
        out.append(m.session(u, t, version=m.versions[installed[u.id]], events=events))
        if events and heeds(u.attrs) and m.rng.random() < p:
            installed[u.id] = latest
    return out


def nudge_cells(
    sessions: list[dict[str, Any]], counted: Callable[[str], bool] | None = None
) -> tuple[responders.Cells, list[str]]:
    """The per-user cells worked out in Python from the sessions themselves, as the module docstring says
    (no warehouse): each user's first nudged version, its nudges, whether they later ran a newer version,
    and per attribute the one value their nudged sessions share. Versions are ranked by first seen.
    ``counted``: which users' cells to count, by user ID (all of them by default)."""
    first_seen: dict[str, str] = {}
    for s in sorted(sessions, key=lambda s: (s["sessionStartTime"], s["applicationVersion"])):
        first_seen.setdefault(s["applicationVersion"], s["sessionStartTime"])
    rank = {v: i for i, v in enumerate(sorted(first_seen, key=lambda v: (first_seen[v], v)))}
    nudges: dict[str, Counter[int]] = defaultdict(Counter)
    newest: dict[str, int] = {}
    texts: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    runs: Counter[str] = Counter()
    for s in sessions:
        user, r = s["userId"], rank[s["applicationVersion"]]
        newest[user] = max(newest.get(user, -1), r)
        seen = sum(1 for e in s["events"] if e["type"] == "UpdateNudgeShown")
        if seen:
            runs[user] += 1
            nudges[user][r] += seen
            for key, text in decoded_texts(s["attributes"]).items():
                texts[user][key].add(text)
    keys = {k for per_user in texts.values() for k in per_user}
    names = sorted(
        k
        for k in keys
        if len({t for per_user in texts.values() for t in per_user.get(k, ())}) <= MAX_VALUES_PER_ATTRIBUTE
        and responders.of_users({u: per_user[k] for u, per_user in texts.items() if runs[u] > 1 and k in per_user})
    )
    cells: responders.Cells = Counter()
    for user, per_rank in nudges.items():
        if counted is not None and not counted(user):
            continue
        r = min(per_rank)
        values = tuple(next(iter(texts[user][k])) if len(texts[user][k]) == 1 else None for k in names)
        cells[(per_rank[r], r < newest[user], values)] += 1
    return responders.in_order(cells), names


def windows_regression(seed: int = 25) -> list[Session]:
    """LoadConfig takes three times as long in 1.2.0 on Windows (15 % of users); elsewhere, and in other
    versions, as before."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(300, lambda rng, i: _base(rng)), 3000):
        version = m.version_at(t)
        ms = m.rng.lognormvariate(math.log(200), 0.4)
        if version == "1.2.0" and u.attrs["operatingSystem"] == "Windows":
            ms *= 3
        out.append(m.session(u, t, version=version, spans=[("LoadConfig", ms, {})]))
    return out


def withdrawn(seed: int = 26) -> list[Session]:
    """1.1.0 on day 10; 1.2.0, the last release, is withdrawn two days after it came out 20 days before the
    end: its users go back to 1.1.0."""
    m = Maker(seed, days=60, versions=("1.0.0",))
    people = m.users(150, lambda rng, i: _base(rng), spread=0.6)
    r11, r12 = m.start + timedelta(days=10), m.start + timedelta(days=40)
    lag = {u.id: m.rng.expovariate(1 / 3) for u in people}
    out = []
    for u, t in m.runs(people, 1200):
        version = "1.0.0"
        if t >= r11 + timedelta(days=lag[u.id]):
            version = "1.1.0"
        if r12 + timedelta(days=lag[u.id] / 4) <= t < r12 + timedelta(days=2):
            version = "1.2.0"
        out.append(m.session(u, t, version=version))
    return out


def null(seed: int, users: int = 150, sessions: int = 1500) -> list[Session]:
    """Nothing happens: errors (2 %) and BuildImage times (log-normal) do not depend on any attribute or
    version; two flags and a number with no effect; a nudge that nobody heeds."""
    m = Maker(seed)

    def attrs(rng: Any, i: int) -> dict[str, Any]:
        return {
            **_base(rng),
            "tabCompletion": rng.random() < 0.5,
            "buildKit": rng.random() < 0.4,
            "projectTasks": int(rng.lognormvariate(3, 1)),
        }

    return [
        _build(m, u, t, m.rng.random() < 0.02, span_attrs={"buildKit": u.attrs["buildKit"]})
        for u, t in m.runs(m.users(users, attrs, spread=1.0), sessions)
    ]


def varied_users(seed: int, *, heavy: int = 10, heaviness: float = 40, effect: float = 0.0) -> list[Session]:
    """Users differ a lot in how often they fail whatever their attributes: one in ten has a setup (recorded
    nowhere) that fails 20 % of the time, the others 0.5 %. ``heavy`` users, each running the tool
    ``heaviness`` times as often as others, share ``watchMode``. With ``effect`` it is a real cause: their
    sessions fail ``effect`` more often (the heavy users are then the only ones who have the cause)."""
    m = Maker(seed)
    people = m.users(200, lambda rng, i: {**_base(rng), "watchMode": i < heavy})
    broken = {u.id: m.rng.random() < 0.1 for u in people}
    for u in people:
        if u.attrs["watchMode"]:
            u.weight *= heaviness
    return [
        _error(m, u, t, (0.2 if broken[u.id] else 0.005) + (effect if u.attrs["watchMode"] else 0.0))
        for u, t in m.runs(people, 2000)
    ]


def ten(seed: int = 27) -> list[Session]:
    """Ten sessions from four users; two of them with the error, one span type with a flag."""
    m = Maker(seed, days=10)
    people = m.users(4, lambda rng, i: {**_base(rng), "buildKit": i % 2 == 0})
    return [
        _build(m, u, t, k in (3, 7), sigma=0.4, span_attrs={"buildKit": u.attrs["buildKit"]})
        for k, (u, t) in enumerate(m.runs(people, 10)[:10])
    ]


def old_clients(seed: int = 28) -> list[Session]:
    """Clients of 1.0.0 (the first third of the range) send no ``shell`` nor ``pythonVersion``; Docker 25.0.4
    causes the error (20 % against 1 %) in every version."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(200, lambda rng, i: _base(rng)), 2000):
        s = _error(m, u, t, 0.2 if u.attrs["dockerVersion"] == "25.0.4" else 0.01)
        if s["applicationVersion"] == "1.0.0":
            del s["attributes"]["shell"], s["attributes"]["pythonVersion"]
        out.append(s)
    return out


def outliers(seed: int = 29) -> list[Session]:
    """BuildImage's time is heavy-tailed (log-normal, sigma 1.2) and 1 % of spans hang for an hour; the same in
    every version. ``projectTasks`` is mostly 5-50, with monorepos of 100,000 in 1 % of sessions."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(200, lambda rng, i: _base(rng)), 2000):
        ms = m.rng.lognormvariate(math.log(3000), 1.2)
        if m.rng.random() < 0.01:
            ms = 3_600_000 * m.rng.uniform(1, 2)
        tasks = 100_000 if m.rng.random() < 0.01 else int(m.rng.uniform(5, 50))
        out.append(m.session(u, t, spans=[("BuildImage", ms, {})], attrs={"projectTasks": tasks}))
    return out


def skewed(seed: int = 30) -> list[Session]:
    """Releases 1.1.0 (day 20) and 1.2.0 (day 40); users move within about three days. 3 % of users have their
    clock set wrong: three years behind, or one year ahead (the ingestion time is the server's, right)."""
    m = Maker(seed, days=60, versions=("1.0.0",))
    people = m.users(150, lambda rng, i: {**_base(rng), "skew": pick(rng, (("0", 97), ("-1095", 1.5), ("365", 1.5)))})
    lag = {u.id: m.rng.expovariate(1 / 2) for u in people}
    out = []
    for u, t in m.runs(people, 1200):
        version = "1.0.0"
        for v, day in (("1.1.0", 20), ("1.2.0", 40)):
            if t >= m.start + timedelta(days=day + lag[u.id]):
                version = v
        s = m.session(u, t, version=version)
        skew = int(u.attrs["skew"])
        if skew:
            s = m.session(u, t + timedelta(days=skew), version=version, delay_hours=1 - skew * 24)
        del s["attributes"]["skew"]
        out.append(s)
    return out


def nightlies(seed: int = 31) -> list[Session]:
    """About 150 versions over 200 days: a nightly build a day (those run that day) on top of the releases 1.0.0
    and 1.1.0 (day 40); 10 % of users run nightlies. Errors at 2 % everywhere, BuildImage unchanged."""
    m = Maker(seed, days=200, versions=("1.0.0",))
    people = m.users(250, lambda rng, i: {**_base(rng), "channel": "nightly" if rng.random() < 0.1 else "stable"})
    lag = {u.id: m.rng.expovariate(1 / 4) for u in people}
    out = []
    for u, t in m.runs(people, 3000):
        day = int((t - m.start).total_seconds() // 86400)
        if u.attrs["channel"] == "nightly":
            version = f"1.1.0.dev{day}" if day < 40 else f"1.2.0.dev{day}"
        else:
            version = "1.1.0" if t >= m.start + timedelta(days=40 + lag[u.id]) else "1.0.0"
        out.append(_error(m, u, t, 0.02, version=version))
    return out


def non_ascii(seed: int = 32) -> list[Session]:
    """Locales and project names in many scripts; the error comes with ``locale=日本語`` (20 % against 1 %)."""
    locales = (("日本語", 1), ("Ελληνικά", 1), ("русский", 1), ("English", 4), ("français", 2), ("😀 emoji", 0.5))
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(200, lambda rng, i: {**_base(rng), "locale": pick(rng, locales)}), 2000):
        out.append(_error(m, u, t, 0.2 if u.attrs["locale"] == "日本語" else 0.01))
    return out
