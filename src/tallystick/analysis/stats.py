"""The few statistics the analyses need, in plain Python: small, exact where cheap, and tested.

- Wilson intervals for a proportion; Katz (log) intervals for a ratio of two proportions.
- 2×2 association: chi-square with Yates' continuity correction, or Fisher's exact
  test (via log-gamma) when an expected count is below 5; Benjamini–Hochberg q-values.
- Quantiles of a weighted sample (values with counts, e.g. a log-binned histogram from
  SQL) and a bootstrap of a quantile ratio. The bootstrap draws the resampled order
  statistic directly: in a resample of n values, the m-th smallest is the
  ``ceil(n·B)``-th smallest of the original, with B ~ Beta(m, n − m + 1), exactly as if
  the n values had been resampled, at the cost of one draw instead of n.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from statistics import NormalDist


def z_value(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion k/n; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def risk_ratio(k1: int, n1: int, k0: int, n0: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(k1/n1) / (k0/n0) with its Katz log interval; 0.5 is added to every cell when one is zero."""
    if min(n1, n0) <= 0:
        raise ValueError("both groups need at least one member")
    if 0 in (k1, k0, n1 - k1, n0 - k0):
        k1, n1, k0, n0 = k1 + 0.5, n1 + 1, k0 + 0.5, n0 + 1  # type: ignore[assignment]
    rr = (k1 / n1) / (k0 / n0)
    se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    z = z_value(confidence)
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se)


def chi_square_2x2(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Chi-square statistic with Yates' correction and its p-value (1 degree of freedom).

    Table: ``a`` = with value & event, ``b`` = with value & without event,
    ``c`` = without value & event, ``d`` = neither.
    """
    n = a + b + c + d
    rows, cols = (a + b, c + d), (a + c, b + d)
    if 0 in rows or 0 in cols:
        return 0.0, 1.0
    diff = max(0.0, abs(a * d - b * c) - n / 2)
    stat = n * diff * diff / (rows[0] * rows[1] * cols[0] * cols[1])
    return stat, math.erfc(math.sqrt(stat / 2))


def _log_hypergeom(a: int, row1: int, col1: int, n: int) -> float:
    def lc(n_: int, k: int) -> float:
        return math.lgamma(n_ + 1) - math.lgamma(k + 1) - math.lgamma(n_ - k + 1)

    return lc(col1, a) + lc(n - col1, row1 - a) - lc(n, row1)


def fisher_exact_2x2(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test (sum of tables no more likely than the observed)."""
    n = a + b + c + d
    row1, col1 = a + b, a + c
    lo, hi = max(0, row1 + col1 - n), min(row1, col1)
    observed = _log_hypergeom(a, row1, col1, n)
    total = 0.0
    for x in range(lo, hi + 1):
        lp = _log_hypergeom(x, row1, col1, n)
        if lp <= observed + 1e-9:
            total += math.exp(lp)
    return min(1.0, total)


def association(a: int, b: int, c: int, d: int) -> tuple[float, str]:
    """p-value of a 2×2 association and the test used: Fisher if an expected count is below 5."""
    n = a + b + c + d
    if n == 0:
        return 1.0, "none"
    expected = min((a + b) * (a + c), (a + b) * (b + d), (c + d) * (a + c), (c + d) * (b + d)) / n
    if expected < 5:
        return fisher_exact_2x2(a, b, c, d), "fisher"
    return chi_square_2x2(a, b, c, d)[1], "chi-square"


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz), for
    x < (a + 1) / (a + b + 2), where it converges fast."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


def beta_regularized(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (the beta distribution's CDF)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1 - math.exp(log_front) * _beta_fraction(1 - x, b, a) / b


def student_t_p(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic with ``df`` (not necessarily whole) degrees of freedom."""
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2))
    return beta_regularized(df / (df + t * t), df / 2, 0.5)


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """q-values controlling the false discovery rate, in the order given."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        q[i] = running
    return q


@dataclass(frozen=True)
class Weighted:
    """A sample as sorted distinct values with counts (e.g. a histogram's bin centres)."""

    values: tuple[float, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[float, int]]) -> Weighted:
        merged: dict[float, int] = {}
        for v, c in pairs:
            if c > 0:
                merged[v] = merged.get(v, 0) + c
        values = tuple(sorted(merged))
        return cls(values, tuple(accumulate(merged[v] for v in values)))

    @classmethod
    def of_log_bins(cls, bins: Iterable[tuple[int, int]], per_e: int) -> Weighted:
        return cls.of((math.exp(b / per_e), c) for b, c in bins)

    @property
    def n(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def at_rank(self, m: int) -> float:
        """The m-th smallest value (1-based)."""
        return self.values[bisect_left(self.cumulative, m)]

    def quantile(self, q: float) -> float:
        """The smallest value with at least a share q of the sample at or below it."""
        if not self.n:
            raise ValueError("empty sample")
        return self.at_rank(max(1, math.ceil(q * self.n)))

    def mean(self) -> float:
        prev = 0
        total = 0.0
        for v, c in zip(self.values, self.cumulative, strict=True):
            total += v * (c - prev)
            prev = c
        return total / self.n

    def resampled_quantile(self, q: float, rng: random.Random) -> float:
        """The q-quantile of one bootstrap resample (see the module docstring)."""
        n = self.n
        m = max(1, math.ceil(q * n))
        b = rng.betavariate(m, n - m + 1)
        return self.at_rank(min(n, max(1, math.ceil(n * b))))


def bootstrap_ratio(
    sample: Weighted,
    baseline: Weighted,
    q: float = 0.5,
    *,
    draws: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """q-quantile of ``sample`` over that of ``baseline``, with a percentile bootstrap interval."""
    rng = random.Random(seed)
    ratios = sorted(sample.resampled_quantile(q, rng) / baseline.resampled_quantile(q, rng) for _ in range(draws))
    tail = (1 - confidence) / 2
    lo = ratios[min(draws - 1, math.floor(tail * draws))]
    hi = ratios[min(draws - 1, math.ceil((1 - tail) * draws) - 1)]
    return sample.quantile(q) / baseline.quantile(q), lo, hi


# Clustered data: sessions (or spans) of one user are not independent. A few heavy users with
# something in common would otherwise make any attribute they share look significant. The
# cluster-robust ("sandwich") variance of a ratio estimate K / N sums the residuals k_i − p·n_i per
# user before squaring them, so a user's sessions count as one piece of evidence, not many.


@dataclass(frozen=True)
class Clustered:
    """Two proportions measured on the same users, with their cluster-robust variances and covariance."""

    p1: float
    p0: float
    var1: float
    var0: float
    cov: float
    users: int
    df: float = math.inf  # degrees of freedom of the difference's test (the number of users it rests on)

    @classmethod
    def of(cls, per_user: Iterable[tuple[int, int, int, int]]) -> Clustered:
        """From each user's ``(n1, k1, n0, k0)``: sessions and those with the outcome, in group 1 and group 0."""
        rows = sorted(r for r in per_user if r[0] or r[2])  # sorted: the same float sums on every engine
        n1 = sum(r[0] for r in rows)
        k1 = sum(r[1] for r in rows)
        n0 = sum(r[2] for r in rows)
        k0 = sum(r[3] for r in rows)
        if not n1 or not n0:
            raise ValueError("both groups need at least one member")
        p1, p0 = k1 / n1, k0 / n0
        g = len(rows)
        correction = g / (g - 1) if g > 1 else 1.0
        s11 = s00 = s10 = 0.0
        for a, b, c, d in rows:
            r1, r0 = b - p1 * a, d - p0 * c
            s11 += r1 * r1
            s00 += r0 * r0
            s10 += r1 * r0
        return cls(
            p1,
            p0,
            correction * s11 / (n1 * n1),
            correction * s00 / (n0 * n0),
            correction * s10 / (n1 * n0),
            g,
        )

    def difference_p(self) -> float:
        """Two-sided p-value of p1 = p0 (Wald, cluster-robust, against Student's t with ``df``); 0 when the
        groups differ and nothing varies."""
        var = self.var1 + self.var0 - 2 * self.cov
        diff = self.p1 - self.p0
        if var <= 0:
            return 1.0 if diff == 0 else 0.0
        return student_t_p(diff / math.sqrt(var), self.df)

    def log_ratio_se(self) -> float | None:
        """Standard error of log(p1 / p0) (delta method), or None when a proportion is zero."""
        if self.p1 <= 0 or self.p0 <= 0:
            return None
        var = self.var1 / self.p1**2 + self.var0 / self.p0**2 - 2 * self.cov / (self.p1 * self.p0)
        return math.sqrt(max(0.0, var))


# Sums over users of their sessions and outcomes in each group, as SQL adds them up (``Clustered.of_sums``).
USER_SUMS = (
    "n1",
    "k1",
    "n0",
    "k0",
    "k1*k1",
    "k1*n1",
    "n1*n1",
    "k0*k0",
    "k0*n0",
    "n0*n0",
    "k1*k0",
    "k1*n0",
    "n1*k0",
    "n1*n0",
)


def clustered_of_sums(users: int, sums: dict[str, int]) -> Clustered:
    """``Clustered.of`` from sums over users instead of their rows: ``sums`` has Σ of each of ``USER_SUMS``
    (per user: n1, k1 sessions and outcomes in group 1, n0, k0 in group 0), so SQL sends one row however many
    users there are (exact integers: the same answer on every engine)."""
    n1, k1, n0, k0 = sums["n1"], sums["k1"], sums["n0"], sums["k0"]
    if not n1 or not n0:
        raise ValueError("both groups need at least one member")
    p1, p0 = k1 / n1, k0 / n0
    correction = users / (users - 1) if users > 1 else 1.0
    s11 = sums["k1*k1"] - 2 * p1 * sums["k1*n1"] + p1 * p1 * sums["n1*n1"]
    s00 = sums["k0*k0"] - 2 * p0 * sums["k0*n0"] + p0 * p0 * sums["n0*n0"]
    s10 = sums["k1*k0"] - p0 * sums["k1*n0"] - p1 * sums["n1*k0"] + p1 * p0 * sums["n1*n0"]
    return Clustered(
        p1,
        p0,
        correction * max(0.0, s11) / (n1 * n1),
        correction * max(0.0, s00) / (n0 * n0),
        correction * s10 / (n1 * n0),
        users,
    )


def clustered_risk_ratio(
    per_user: Iterable[tuple[int, int, int, int]], confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """(p1 / p0, lo, hi, design effect): the Katz interval widened to the cluster-robust one where wider.

    ``per_user`` as for ``Clustered.of``. The design effect is the ratio of the two variances (≥ 1 means
    the users' sessions carry less information than as many independent sessions would).
    """
    rows = list(per_user)
    n1 = sum(r[0] for r in rows)
    k1 = sum(r[1] for r in rows)
    n0 = sum(r[2] for r in rows)
    k0 = sum(r[3] for r in rows)
    return widened_risk_ratio(Clustered.of(rows), (k1, n1, k0, n0), confidence)


def widened_risk_ratio(
    c: Clustered, counts: tuple[int, int, int, int], confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """``clustered_risk_ratio`` from the ``Clustered`` of the users and the totals (k1, n1, k0, n0)."""
    k1, n1, k0, n0 = counts
    rr, lo, hi = risk_ratio(k1, n1, k0, n0, confidence)
    katz = math.log(hi / rr) / z_value(confidence)
    robust = c.log_ratio_se()
    if robust is None or robust <= katz:
        return rr, lo, hi, (robust / katz) ** 2 if robust and katz else 1.0
    z = z_value(confidence)
    return rr, rr * math.exp(-z * robust), rr * math.exp(z * robust), (robust / katz) ** 2


def quantile_design_effect(per_user: Iterable[tuple[int, int]]) -> float:
    """How much a quantile's variance grows because values come in users (≥ 1).

    ``per_user``: each user's (values, values at or below the quantile). The quantile's estimating
    equation is the mean of an indicator; its cluster-robust variance over its binomial variance.
    """
    rows = sorted(r for r in per_user if r[0])  # sorted: the same float sums whatever order users came in
    n = sum(r[0] for r in rows)
    c = sum(r[1] for r in rows)
    if n == 0 or c in (0, n) or len(rows) < 2:
        return 1.0
    p = c / n
    robust = len(rows) / (len(rows) - 1) * sum((ci - p * ni) ** 2 for ni, ci in rows)
    return max(1.0, round(robust / (n * p * (1 - p)), 9))


def quantile_design_effect_of_sums(sums: tuple[int, int, int, int, int, int]) -> float:
    """``quantile_design_effect`` from sums over users (n_i, c_i): (users, Σn, Σc, Σn², Σc², Σn·c), so that SQL
    can add them up instead of sending a row per user (exact integers: the same answer on every engine)."""
    users, n, c, nn, cc, nc = sums
    if n == 0 or c in (0, n) or users < 2:
        return 1.0
    p = c / n
    robust = users / (users - 1) * max(0.0, cc - 2 * p * nc + p * p * nn)
    return max(1.0, round(robust / (n * p * (1 - p)), 9))


def proportion_design_effect_of_sums(sums: tuple[int, int, int, int, int, int]) -> float:
    """How much a proportion's variance grows because sessions come in users (≥ 1), from sums over users of
    (n_i sessions, k_i with the outcome): (users, Σn, Σk, Σn², Σk², Σn·k), so that SQL adds them up instead
    of sending a row per user (exact integers: the same answer on every engine). The cluster-robust variance
    of K / N (``Clustered``) over the binomial one; 1 when there is one user or nothing varies."""
    users, n, k, nn, kk, nk = sums
    if users < 2 or not 0 < k < n:
        return 1.0
    p = k / n
    robust = users / (users - 1) * max(0.0, kk - 2 * p * nk + p * p * nn) / (n * n)
    return max(1.0, robust / (p * (1 - p) / n))


def widened_ratio(ratio: tuple[float, float, float], design_effects: tuple[float, float]) -> tuple[float, float, float]:
    """A bootstrap interval of a ratio of two quantiles widened on the log scale for clustering.

    The interval's distances from the estimate (on the log scale) are stretched by the square root of
    the larger design effect: never narrower than the truth when either side clusters.
    """
    r, lo, hi = ratio
    if r <= 0 or lo <= 0:
        return ratio
    factor = math.sqrt(max(1.0, *design_effects))
    return r, r * (lo / r) ** factor, r * (hi / r) ** factor


def chi_square_even_p(statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with an even number ``df`` of degrees of freedom (closed form:
    a Poisson tail, exp(-x/2) times the first df/2 terms of exp(x/2)'s series)."""
    if df <= 0 or df % 2:
        raise ValueError("df must be a positive even number")
    half = max(0.0, statistic) / 2
    term, total = 1.0, 1.0
    for i in range(1, df // 2):
        term *= half / i
        total += term
    return min(1.0, math.exp(-half) * total)
