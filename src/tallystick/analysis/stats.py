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
