"""Common factor of an error: which attribute values are over-represented among sessions with it?

A case–control comparison: sessions with the outcome (cases) against sessions
without (controls), each side sampled to at most ``SAMPLE`` sessions by the last
hex digits of the session ID (the same sessions on every engine). For every
attribute value: its **support** (share of cases that have it), its **lift**
(P(outcome | value) / P(outcome), the sampling undone), and a 2×2 test of
association (chi-square with Yates' correction, Fisher's exact test for small
counts) with Benjamini–Hochberg q-values over every value tested. Ranked by lift
among values significant at ``--alpha`` and over-represented.

On DuckDB and ClickHouse the sample is read from ``sessions_typed`` (``warehouse/rollup.py``: one text
column per attribute) when it is fresh and has a column for every attribute: DuckDB
reads a JSON column for a sample of rows more slowly than all of it. Its texts are
what decoding the JSON gives, except a JSON number DuckDB writes otherwise than Python
(``0.00001`` for ``1e-05``); as a string and a number then cannot be told apart, a
sample with a number-like text not written as Python writes numbers (``24.10``) is read
from the JSON instead.

Values that are (almost) the outcome itself — with the outcome ≥ 95 % of the time and,
those of one attribute together, in ≥ 95 % of cases, like the exit code an error sets or
its message copied into an attribute — are listed apart as symptoms, not causes.

Two things keep false leads out:

- **Users, not only sessions.** Sessions of one user share their attributes, so a few heavy
  users with the outcome make everything they have in common look over-represented. Each
  value's test is also done with a cluster-robust (per-user) variance, and the larger of the
  two p-values counts; a value is significant only if its cases come from at least
  ``MIN_USERS`` users. That variance is estimated from the users too, and from few users it can be
  far too small by chance (ten heavy users who happen to fail alike): the test is read against
  Student's t with as many degrees of freedom as users' worth of evidence (``_effective_users``).
- **Explaining away.** The strongest significant value is taken as a factor; the others are
  tested again among the sessions without it. A value that is no longer significant there
  was only riding along (its users also had the factor): it is shown as "explained by" the
  factor. This repeats until nothing significant is left (at most ``MAX_FACTORS`` times).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import chain
from statistics import NormalDist
from typing import Any, NamedTuple

import msgspec

from tallystick.analysis import words
from tallystick.analysis.outcome import Outcome, outcome
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import USER_SUMS, Clustered, association, benjamini_hochberg, clustered_of_sums

SAMPLE = 10_000
MAX_VALUES_PER_ATTRIBUTE = 50
MIN_CASES = 5
SYMPTOM = 0.95
MIN_USERS = 3
MAX_FACTORS = 5
HEAVY_USERS = "a few heavy users"
FEW_USERS = "too few users"
SAME_AS = "always with"
TOGETHER = "together with"
ONE_USER = 0.5  # one user with this share of the sampled cases is said to be behind them


_decode = msgspec.json.Decoder(dict[str, Any]).decode
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
Sampled = list[tuple[str, str | None]]  # a sampled session's attributes, as (name, text)
Session = tuple[int, int, dict[str, str]]  # a sampled session: outcome 0/1, user, attributes as text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def as_decoded(text: str) -> bool:
    """Whether a text from ``sessions_typed`` is surely what ``_text`` gives for the decoded JSON value: yes
    unless it looks like a number written otherwise than Python writes that number (then, had the JSON
    value been a number, ``_text`` would differ)."""
    if not _NUMBER.fullmatch(text):
        return True
    if text.lstrip("-").isdigit():
        return str(int(text)) == text
    return repr(float(text)) == text


def typed_columns(b: Bound, alias: str = "") -> tuple[list[str], str, str] | None:
    """For reading sampled sessions' attributes from ``sessions_typed``: its attribute names, the SQL selecting
    their text columns as ``c0``, ``c1``, … and the SQL picking those again (from table ``alias``); None when
    it lacks a column for some attribute."""
    names = b.typed_every()
    if names is None:
        return None
    columns = "".join(f", {b.typed_attr(n)} AS c{i}" for i, n in enumerate(names))
    picked = "".join(f", {alias}c{i}" for i in range(len(names)))
    return names, columns, picked


def all_decoded(texts: Iterable[str | None]) -> bool:
    """Whether every text read from ``sessions_typed`` is surely what decoding the JSON gives (``as_decoded``)."""
    return all(as_decoded(t) for t in set(texts) if t is not None)


def _sample_typed(b: Bound, what: Outcome, sample: str) -> list[tuple[int, int, Sampled]] | None:
    """The sampled sessions' (outcome, user, attributes) from ``sessions_typed``, or None if it cannot answer alike."""
    typed = typed_columns(b)
    if typed is None or not b.typed(*what.attributes):
        return None
    names, columns, picked = typed
    rows = b.rows(
        f'SELECT h, u{picked} FROM (SELECT "sessionId" AS id, CASE WHEN {what.on(True)} THEN 1 ELSE 0 END AS h, '
        f"{b.user_key(typed=True)} AS u{columns} FROM sessions_typed WHERE {b.sessions_where(typed=True)}) t "
        f"WHERE {sample}"
    )
    sampled = [(int(r[0]), int(r[1]), list(zip(names, r[2:], strict=True))) for r in rows]
    return sampled if all_decoded(text for _, _, attrs in sampled for _, text in attrs) else None


def decoded_texts(attrs: Any) -> dict[str, str]:
    """A session's attributes (JSON text, or as the engine decoded them) as texts, nulls left out."""
    decoded = _decode(attrs) if isinstance(attrs, str | bytes) else attrs or {}
    return {str(key): text for key, v in decoded.items() if (text := _text(v)) is not None}


def _sample_json(b: Bound, hit: str, where: str, sample: str) -> Iterator[tuple[int, int, Sampled]]:
    """The sampled sessions' (outcome, user, attributes) from the JSON in ``sessions``."""
    rows = b.rows(
        f'SELECT a, h, u FROM (SELECT attributes AS a, "sessionId" AS id, {hit} AS h, {b.user_key()} AS u '
        f"FROM sessions WHERE {where}) t WHERE {sample}"
    )
    for attrs, h, u in rows:
        decoded = _decode(attrs) if isinstance(attrs, str | bytes) else attrs or {}
        yield int(h), int(u), [(str(key), v if isinstance(v, str) else _text(v)) for key, v in decoded.items()]


def _totals(b: Bound, what: Outcome) -> tuple[int, int]:
    """Sessions in scope, and those with the outcome."""
    typed = b.reads_typed(*what.attributes)  # filters on sessions_typed's columns, not the JSON (warehouse/rollup.py)
    source = f"{b.sessions_table(typed)} WHERE {b.sessions_where(typed=typed)}"
    if what.count_sql is not None:
        total, cases = b.rows(f"SELECT (SELECT count(*) FROM {source}), ({what.count_sql})")[0]
    else:
        total, cases = b.rows(f"SELECT count(*), sum(CASE WHEN {what.on(typed)} THEN 1 ELSE 0 END) FROM {source}")[0]
    return int(total), int(cases or 0)


@dataclass
class Tested:
    """One attribute value's comparison of sampled cases and controls."""

    key: str
    value: str
    cases: int  # sampled sessions with the outcome that have the value
    controls: int  # sampled sessions without the outcome that have the value
    users: int  # distinct users among ``cases``
    support: float
    outcome_rate: float  # P(outcome | value), the sampling undone
    lift: float
    p: float  # the larger of the exact and the cluster-robust p-value
    test: str
    strength: float  # a z-score for ranking: the smaller of the two tests'
    exact_p: float = 1.0  # counting sessions only, as if they were independent
    q: float = 1.0
    exact_q: float = 1.0

    def label(self) -> str:
        return f"{self.key}={self.value}"

    def significant(self, alpha: float) -> bool:
        return self.q < alpha and self.lift > 1 and self.users >= MIN_USERS

    def looks_significant(self, alpha: float) -> bool:
        """Significant if sessions were independent: what a naive test would report."""
        return self.exact_q < alpha and self.lift > 1


@dataclass
class _Sample:
    """Sampled sessions as (outcome 0/1, user, attribute texts), with the weights that undo the sampling."""

    sessions: list[Session]
    case_weight: float
    control_weight: float
    exclude: set[str] = field(default_factory=set)

    def without(self, t: Tested) -> _Sample:
        kept = [x for x in self.sessions if x[2].get(t.key) != t.value]
        return _Sample(kept, self.case_weight, self.control_weight, self.exclude)

    def only(self, t: Tested) -> _Sample:
        kept = [x for x in self.sessions if x[2].get(t.key) == t.value]
        return _Sample(kept, self.case_weight, self.control_weight, self.exclude | {t.key})

    def items(self, i: int) -> list[tuple[str, str, int, int]]:
        """Session ``i``'s cells: (attribute, text, user, outcome) for each of its attributes."""
        h, user, attrs = self.sessions[i]
        return [(key, text, user, h) for key, text in attrs.items()]


def _z(p: float) -> float:
    return -NormalDist().inv_cdf(min(1.0, max(p, 1e-300)) / 2)


class Moments(NamedTuple):
    """Sums over every user of the sample of their cases k and sessions n."""

    kk: int  # Σk²
    kn: int  # Σkn
    nn: int  # Σn²
    k: int  # Σk
    n: int  # Σn
    n3: int  # Σn³
    n4: int  # Σn⁴

    @classmethod
    def of(cls, per_user: dict[int, list[int]]) -> Moments:
        rows = [(k, k + c) for k, c in per_user.values()]
        return cls(
            sum(k * k for k, _ in rows),
            sum(k * n for k, n in rows),
            sum(n * n for _, n in rows),
            sum(k for k, _ in rows),
            sum(n for _, n in rows),
            sum(n**3 for _, n in rows),
            sum(n**4 for _, n in rows),
        )


def _clustered(value_users: dict[int, list[int]], per_user: dict[int, list[int]], moments: Moments) -> Clustered:
    """``Clustered`` of P(case | value) against P(case | not value) in the sample, in time proportional to
    the users who have the value: the other users' terms come from ``moments``, its degrees of freedom from
    ``_effective_users``.

    Each squared residual sum is expanded into sums of integer products (``Σ(a − p·m)² = Σa² − 2p·Σam +
    p²·Σm²``), added up exactly in any order and combined with the proportions once: the same floats whatever
    order the users come in (engines hash them differently), without sorting them for each value."""
    a_all = m_all = 0
    saa = sam = smm = sax = say = smx = smy = 0
    dkk, dkn, dnn = moments.kk, moments.kn, moments.nn  # Σ over users of (k, n) in group 0, adjusted below
    for user, (a, b) in value_users.items():
        k, c = per_user[user]
        n, m = k + c, a + b
        x, y = k - a, n - m  # the user's cases and sessions without the value
        a_all += a
        m_all += m
        saa += a * a
        sam += a * m
        smm += m * m
        sax += a * x
        say += a * y
        smx += m * x
        smy += m * y
        dkk += x * x - k * k
        dkn += x * y - k * n
        dnn += y * y - n * n
    sums = dict(
        zip(
            USER_SUMS,
            (m_all, a_all, moments.n - m_all, moments.k - a_all, saa, sam, smm, dkk, dkn, dnn, sax, say, smx, smy),
            strict=True,
        )
    )
    robust = clustered_of_sums(len(per_user), sums)
    return replace(robust, df=_effective_users(value_users, per_user, moments, robust, sums))


def _effective_users(
    value_users: dict[int, list[int]],
    per_user: dict[int, list[int]],
    moments: Moments,
    robust: Clustered,
    sums: dict[str, int],
) -> float:
    """Degrees of freedom for the cluster-robust test: how many users' worth of evidence the difference rests on.

    The difference p1 − p0 is a weighted sum of the users' own deviations; its variance is the users' shares
    added up (Satterthwaite: (Σv)² / Σv²). The shares come from a working model in which each user has their
    own rate, spread around the group's with a between-user variance τ² estimated from every user (method of
    moments): user i with m sessions with the value and o without adds v = τ²·(m/M1 − o/M0)² + (p1q1 − τ²)·m/M1²
    + (p0q0 − τ²)·o/M0². Many users alike give many degrees of freedom (the normal test); a value carried by a
    few heavy users, or whose comparison a few heavy users decide, gives few, and the test asks for more."""
    m1, m0 = sums["n1"], sums["n0"]
    p1, p0, d = robust.p1, robust.p0, robust.p1 - robust.p0
    # τ²: the residuals' squares Σ(k − p0·n − d·m)² beyond the binomial part, per pair of one user's sessions.
    mk = sums["k1*n1"] + sums["n1*k0"]  # Σ m·k, k = a + x
    mn = sums["n1*n1"] + sums["n1*n0"]  # Σ m·n, n = m + y
    residual = moments.kk - 2 * p0 * moments.kn + p0 * p0 * moments.nn - 2 * d * (mk - p0 * mn) + d * d * sums["n1*n1"]
    binomial = m1 * p1 * (1 - p1) + m0 * p0 * (1 - p0)
    pairs = moments.nn - moments.n
    tau2 = max(0.0, (residual - binomial) / pairs) if pairs else 0.0
    c1, c0 = max(0.0, p1 * (1 - p1) - tau2), max(0.0, p0 * (1 - p0) - tau2)
    w1, w0 = 1 / m1, 1 / m0
    # Every user as if without the value ((τ²·n² + c0·n) / M0², summed from the moments), then the value's users
    # as they are. fsum adds exactly: the same float in any order of users.
    totals = [(tau2 * moments.nn + c0 * moments.n) * w0 * w0]
    squares = [(tau2 * tau2 * moments.n4 + 2 * tau2 * c0 * moments.n3 + c0 * c0 * moments.nn) * w0**4]
    for user, (a, b) in value_users.items():
        k, c = per_user[user]
        n, m = k + c, a + b
        gap = m * w1 - (n - m) * w0
        now = tau2 * gap * gap + c1 * m * w1 * w1 + c0 * (n - m) * w0 * w0
        before = (tau2 * n * n + c0 * n) * w0 * w0
        totals += (now, -before)
        squares += (now * now, -before * before)
    total, square = math.fsum(totals), math.fsum(squares)
    return total * total / square if square > 0 else math.inf


def _test(sample: _Sample) -> list[Tested]:
    """Every value with at least ``MIN_CASES`` sampled cases, tested; q-values over all of them."""
    per_user: dict[int, list[int]] = {}
    by_value: dict[tuple[str, str], dict[int, list[int]]] = {}
    # Counted in C first (a session's attributes mostly repeat its user's), then spread per value and user.
    sessions = Counter((user, h) for h, user, _ in sample.sessions)
    cells = Counter(chain.from_iterable(sample.items(i) for i in range(len(sample.sessions))))
    for (user, h), n in sessions.items():
        per_user.setdefault(user, [0, 0])[1 - h] += n
    for (key, text, user, h), n in cells.items():
        by_value.setdefault((key, text), {}).setdefault(user, [0, 0])[1 - h] += n
    n_cases = sum(u[0] for u in per_user.values())
    n_controls = sum(u[1] for u in per_user.values())
    if not n_cases or not n_controls:
        return []
    est_total = n_cases * sample.case_weight + n_controls * sample.control_weight
    rate = n_cases * sample.case_weight / est_total
    moments = Moments.of(per_user)
    values_per_key: Counter[str] = Counter(key for key, _ in by_value)
    tested: list[Tested] = []
    for (key, value), users in sorted(by_value.items()):
        if values_per_key[key] > MAX_VALUES_PER_ATTRIBUTE or key in sample.exclude:
            continue
        a = sum(v[0] for v in users.values())
        bb = sum(v[1] for v in users.values())
        if a < MIN_CASES:
            continue
        exact, test = association(a, bb, n_cases - a, n_controls - bb)
        est_cases, est_controls = a * sample.case_weight, bb * sample.control_weight
        p_given = est_cases / (est_cases + est_controls)
        n0 = n_cases + n_controls - a - bb
        cluster_p = _clustered(users, per_user, moments).difference_p() if n0 else 1.0
        tested.append(
            Tested(
                key,
                value,
                a,
                bb,
                sum(1 for v in users.values() if v[0]),
                a / n_cases,
                p_given,
                p_given / rate,
                max(exact, cluster_p),
                test if cluster_p <= exact else "cluster-robust",
                min(_z(exact), _z(cluster_p)),
                exact,
            )
        )
    for t, q, eq in zip(
        tested, benjamini_hochberg([t.p for t in tested]), benjamini_hochberg([t.exact_p for t in tested]), strict=True
    ):
        t.q, t.exact_q = q, eq
    return tested


@dataclass
class Explained:
    """The outcome of explaining away: every value as first tested, the factors in order, and why the rest fell."""

    tested: list[Tested]
    symptoms: list[Tested]
    factors: list[Tested]
    explained_by: dict[str, str]  # value label -> the factor after which it no longer looked significant,
    # or HEAVY_USERS when it still did but only by counting a few users' many sessions
    conditional_q: dict[str, float]  # value label -> q-value in the last round it was tested
    same_as: dict[str, str] = field(default_factory=dict)  # value label -> the factor it always comes with
    # value label -> (factor, outcome rate with both, outcome rate with the factor alone): significant among
    # the factor's sessions though not without them — the outcome needs both (an interaction)
    together: dict[str, tuple[str, float, float]] = field(default_factory=dict)


def explain(sample: _Sample, alpha: float) -> Explained:
    """Factors one at a time, each tested among the sessions without the factors before it."""
    first = _test(sample)
    # A symptom: values of one attribute that (almost) only come with the outcome and together are in (almost)
    # every case — the exit code an error sets, or the error's message in a session attribute.
    always: dict[str, list[Tested]] = {}
    for t in first:
        if t.outcome_rate >= SYMPTOM:
            always.setdefault(t.key, []).append(t)
    symptoms = [t for ts in always.values() if sum(t.support for t in ts) >= SYMPTOM for t in ts]
    symptom_labels = {t.label() for t in symptoms}
    factors: list[Tested] = []
    explained_by: dict[str, str] = {}
    same_as: dict[str, str] = {}
    tops: list[tuple[Tested, _Sample]] = []
    conditional_q = {t.label(): t.q for t in first}
    current = first
    while True:
        candidates = [t for t in current if t.label() not in symptom_labels and t.significant(alpha)]
        naive = [t for t in current if t.label() not in symptom_labels and t.looks_significant(alpha)]
        if not candidates or len(factors) == MAX_FACTORS:
            for t in naive:
                if t.label() not in explained_by and not t.significant(alpha):
                    explained_by[t.label()] = FEW_USERS if t.users < MIN_USERS else HEAVY_USERS
            break
        top = max(candidates, key=lambda t: (t.strength, t.lift))
        factors.append(top)
        with_top = sample.only(top)
        sample = sample.without(top)
        present = {(key, text) for _, _, attrs in sample.sessions for key, text in attrs.items()}
        for t in candidates:  # in exactly the factor's sessions: the data cannot tell the two apart
            if t is not top and (t.key, t.value) not in present and (t.cases, t.controls) == (top.cases, top.controls):
                same_as.setdefault(t.label(), top.label())
        tops.append((top, with_top))
        current = _test(sample)
        still = {t.label() for t in current if t.looks_significant(alpha) or t.significant(alpha)}
        for t in current:
            conditional_q[t.label()] = t.q
        for t in naive:
            if t is not top and t.label() not in still and t.label() not in explained_by:
                explained_by[t.label()] = top.label()
    labels = {t.label() for t in factors} | symptom_labels | set(same_as)
    together: dict[str, tuple[str, float, float]] = {}
    for top, with_top in tops:
        among = with_top
        # Among the factor's sessions, the strongest other value, then again among those without it (as
        # above: a value riding along with the first one is not a second condition).
        for _ in range(3):
            within = [t for t in _test(among) if t.label() not in labels and t.significant(alpha)]
            if not within:
                break
            t = max(within, key=lambda t: (t.strength, t.lift))
            cases = sum(h for h, _, _ in among.sessions)
            rest = _rate(among, cases - t.cases, len(among.sessions) - cases - t.controls)
            together.setdefault(t.label(), (top.label(), t.outcome_rate, rest))
            among = among.without(t)
    return Explained(first, symptoms, factors, explained_by, conditional_q, same_as, together)


def _rate(sample: _Sample, cases: int, controls: int) -> float:
    """P(outcome) among ``cases`` and ``controls`` sampled sessions, the sampling undone."""
    est_cases, est_controls = cases * sample.case_weight, controls * sample.control_weight
    return est_cases / (est_cases + est_controls) if est_cases + est_controls else 0.0


def sample_sessions(
    b: Bound, what: Outcome, total: int, cases: int, size: int = SAMPLE, *, controls: bool = True
) -> tuple[list[Session], float, float]:
    """A case–control sample of the sessions in scope (at most about ``size`` with the outcome and as many
    without, by session ID), as (outcome 0/1, user, attributes as text), and each side's weight: the sessions
    in scope per sampled session. Without ``controls``, the cases alone (``total`` is then not read)."""
    d = b.dialect
    sample_cases = d.sample("id", size / cases)
    if controls:
        sample_controls = d.sample("id", size / (total - cases))
        # The wider of the two samples first, though implied: DuckDB then drops the other sessions before it
        # looks up their outcome (0.39 -> 0.32 s on 10 million sessions).
        wider = d.sample("id", size / min(cases, total - cases))
        sample = f"{wider} AND ((h = 1 AND {sample_cases}) OR (h = 0 AND {sample_controls}))"
    else:
        sample = f"{sample_cases} AND h = 1"
    sampled = _sample_typed(b, what, sample)
    hit = f"CASE WHEN {what.condition} THEN 1 ELSE 0 END"
    sessions = [
        (h, u, {key: text for key, text in attrs if text is not None})
        for h, u, attrs in (sampled if sampled is not None else _sample_json(b, hit, b.sessions_where(), sample))
    ]
    n_cases = sum(h for h, _, _ in sessions)
    n_controls = len(sessions) - n_cases
    return (
        sessions,
        cases / n_cases if n_cases else 0.0,
        (total - cases) / n_controls if n_controls else 0.0,
    )


def run(b: Bound, params: dict[str, Any]) -> Report:
    what = outcome(b, params)
    alpha = float(params.get("alpha") or 0.05)
    # The outcome's own attribute (exitCode for --exit-code) is what is explained, never a factor or a symptom.
    exclude = set(params.get("exclude") or ()) | set(what.attributes)
    total, cases = _totals(b, what)
    if not cases:
        what.none_found(b)
    if not total:
        raise b.empty()
    if not cases or cases == total:
        raise b.empty(f"sessions {'with' if not cases else 'without'} {what.label} to compare")
    sessions, case_weight, control_weight = sample_sessions(b, what, total, cases)
    n_cases = sum(h for h, _, _ in sessions)
    n_controls = len(sessions) - n_cases
    case_users = len({u for h, u, _ in sessions if h})
    by_user = Counter(u for h, u, _ in sessions if h)
    top_user_share = max(by_user.values()) / n_cases if n_cases else 0.0
    result = explain(_Sample(sessions, case_weight, control_weight, exclude), alpha)
    rate = cases / total
    verdicts = dict(result.explained_by)
    verdicts.update({label: f"{SAME_AS} {by}" for label, by in result.same_as.items()})
    verdicts.update({label: f"{TOGETHER} {by}" for label, (by, _, _) in result.together.items()})
    factor_rank = {t.label(): i for i, t in enumerate(result.factors)}
    symptom_labels = {t.label() for t in result.symptoms}
    candidates = [t for t in result.tested if t.label() not in symptom_labels]

    def order(t: Tested) -> tuple[int, int, float, float]:
        label = t.label()
        if label in factor_rank:
            return (0, factor_rank[label], 0.0, 0.0)
        return (1 if label in verdicts else 2, 0, -t.lift, t.q)

    candidates.sort(key=order)
    columns = [
        "attribute",
        "value",
        "support",
        "outcome_rate",
        "lift",
        "users",
        "p_value",
        "test",
        "q_value",
        "conditional_q",
        "significant",
        "explained_by",
    ]

    def row(t: Tested, with_verdict: bool = True) -> list[Any]:
        cells: list[Any] = [t.key, t.value, round(t.support, 4), round(t.outcome_rate, 5), round(t.lift, 3), t.users]
        cells += [t.p, t.test, t.q]
        if with_verdict:
            label = t.label()
            cells += [result.conditional_q.get(label, t.q), label in factor_rank, verdicts.get(label)]
        return cells

    ranked = [row(t) for t in candidates]
    table = Table("factors", columns, ranked)
    top = ranked[0] if ranked and ranked[0][10] else None
    summary = {
        "outcome": what.label,
        "sessions": total,
        "with_outcome": cases,
        "rate": rate,
        "cases_sampled": n_cases,
        "controls_sampled": n_controls,
        "users_with_outcome": case_users,
        "values_tested": len(result.tested),
        "top": dict(zip(columns, top, strict=True)) if top else None,
        "significant": [t.label() for t in result.factors],
        "explained": {
            k: v for k, v in result.explained_by.items() if k not in result.same_as and k not in result.together
        },
        "same_as": dict(result.same_as),
        "together": {
            label: {"factor": by, "rate_with_both": both, "rate_with_factor_alone": alone}
            for label, (by, both, alone) in result.together.items()
        },
        "top_user_share": top_user_share,
        "symptoms": [t.label() for t in result.symptoms],
    }
    chart_rows = [[f"{r[0]}={r[1]}", *r] for r in ranked[:10]]
    return Report(
        analysis="common-factor",
        title=f"What do sessions with {what.label} have in common?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary=summary,
        tables=[table, Table("symptoms", columns[:9], [row(t, False) for t in result.symptoms])],
        notes=[
            "support = share of sessions with the outcome that have the value; lift = how many times likelier the "
            "outcome is with the value than overall; users = users with the outcome who have the value",
            f"significant: q < {alpha} after Benjamini–Hochberg over the values tested, lift above 1, cases from at "
            f"least {MIN_USERS} users; each test counts users as well as sessions (the larger p-value of an exact "
            "test and a per-user cluster-robust one, with as many degrees of freedom as users' worth of evidence)",
            "explained by: significant at first, but not among the sessions without that factor — its users "
            "also had the factor; conditional_q is the q-value there",
            "symptoms: values that come with the outcome itself (in ≥ 95 % of cases and with it ≥ 95 % of the "
            "time), like the exit code an error sets — not causes",
        ],
        chart=bar_chart(
            Table("top", ["factor", *columns], chart_rows),
            "factor",
            "lift",
            title=f"How many times likelier {what.label} is with each value",
            x_title="attribute value",
            y_title="times likelier than overall",
        ),
        headline=headline(summary, alpha),
    )


def _short(label: str) -> str:
    key, sep, value = label.partition("=")
    return words.label(key, value) if sep else words.value(label)


def _listed(labels: list[str], most: int = 3) -> str:
    return ", ".join(_short(x) for x in labels[:most]) + (", …" if len(labels) > most else "")


def headline(summary: dict[str, Any], alpha: float = 0.05) -> str:
    """The answer in words, from the summary alone."""
    label = summary["outcome"]
    cases, users = summary["with_outcome"], summary["users_with_outcome"]
    sampled = summary["cases_sampled"]
    who = f"{words.count(cases)} sessions with {label} from {words.count(users)} user{'s' if users != 1 else ''}"
    if sampled < cases:
        who = f"{words.count(cases)} sessions with {label} (users counted in a sample of {words.count(sampled)})"
    top = summary["top"]
    symptoms = summary["symptoms"]
    tail = (
        f" {_listed(symptoms)} {'comes' if len(symptoms) == 1 else 'come'} with it "
        f"({'a symptom, not a cause' if len(symptoms) == 1 else 'symptoms, not causes'})."
        if symptoms
        else ""
    )
    explained = summary["explained"]
    few = [v for v, by in explained.items() if by == FEW_USERS]
    heavy = [v for v, by in explained.items() if by == HEAVY_USERS]
    one_user = summary.get("top_user_share", 0.0)
    behind = (
        f" One user accounts for {words.percent(one_user)} of them: values that only they (or one other user) "
        f"have with it ({_listed(few)}) cannot be told from that user's habits."
        if one_user >= ONE_USER and few
        else f" One user accounts for {words.percent(one_user)} of them."
        if one_user >= ONE_USER
        else f" {_listed(few)} {'is' if len(few) == 1 else 'are'} over-represented only in the sessions of one or "
        "two users: too few to tell a common factor from their habits."
        if few
        else ""
    )
    if top is None:
        if users < MIN_USERS:
            return (
                f"Not enough data to say: the {who} are too few users to tell a common factor from the habits of "
                f"one user.{tail}"
            )
        also = (
            f" {_listed(heavy)} look over-represented only by counting sessions: too few users (or a few who "
            "fail often) are behind them to tell a cause from those users' habits."
            if heavy
            else ""
        )
        return (
            f"No attribute value stands out among the {who}: nothing is over-represented beyond chance "
            f"(false discovery rate {words.percent(alpha)}).{behind}{also}{tail}"
        )
    factor = words.label(top["attribute"], top["value"])
    full = f"{top['attribute']}={top['value']}"
    others = [f for f in summary["significant"] if f != full]
    same = [v for v, by in summary.get("same_as", {}).items() if by == full]
    together = {v: t for v, t in summary.get("together", {}).items() if t["factor"] == full}
    explained_here = [v for v, by in explained.items() if by == full]
    named = factor if not same else f"{factor} (and {_listed(same)}, always seen together with it)"
    text = (
        f"{label} is concentrated in sessions with {named}: {words.percent(top['support'])} of the {who} have "
        f"it, and {words.percent(top['outcome_rate'])} of sessions with it have {label}, "
        f"{words.times(top['lift'])} the overall {words.percent(summary['rate'])}."
    )
    if same:
        text += (
            f" The data cannot tell {factor} from {_listed(same)}: every session with one has the other, so either "
            "may be the cause."
        )
    if together:
        value, t = next(iter(together.items()))
        value = _short(value)
        text += (
            f" It takes {value} as well: among sessions with {factor}, {words.percent(t['rate_with_both'])} of "
            f"those with {value} have {label}, against {words.percent(t['rate_with_factor_alone'])} of the others"
            + (f" (also {_listed(list(together)[1:])})" if len(together) > 1 else "")
            + "."
        )
    for other in others:
        other_same = [v for v, by in summary.get("same_as", {}).items() if by == other]
        text += f" Also significant among the sessions without it: {_short(other)}" + (
            f" (always seen together with {_listed(other_same)})" if other_same else ""
        )
        text += "."
    if explained_here:
        n = len(explained_here)
        text += (
            f" {n} other value{'s' if n != 1 else ''} that look{'s' if n == 1 else ''} over-represented "
            f"{'is' if n == 1 else 'are'} not over-represented among the sessions without {factor} (explained by it)."
        )
    if heavy:
        text += (
            f" {len(heavy)} more look over-represented only by counting sessions, too few users behind them "
            f"({_listed(heavy)})."
        )
    text += behind
    if top["users"] < 10:
        text += f" Caveat: only {top['users']} affected users have {factor}."
    return text + tail
