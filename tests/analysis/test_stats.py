"""The statistics helpers against known values and brute force."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from tallystick.analysis.stats import (
    Weighted,
    association,
    benjamini_hochberg,
    bootstrap_ratio,
    chi_square_2x2,
    chi_square_even_p,
    fisher_exact_2x2,
    risk_ratio,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        pytest.param(0, 10, 0.0, 0.2775, id="none"),
        pytest.param(5, 10, 0.2366, 0.7634, id="half"),
        pytest.param(26, 1000, 0.01782, 0.03783, id="rare"),
    ],
)
def test_wilson_interval(k: int, n: int, lo: float, hi: float) -> None:
    """Wilson 95 % intervals match published values to 4 digits."""
    assert wilson(k, n) == pytest.approx((lo, hi), abs=1e-4)


def test_fisher_exact_tea_tasting() -> None:
    """Fisher's lady tasting tea (3 of 4 right) has two-sided p = 34/70."""
    assert fisher_exact_2x2(3, 1, 1, 3) == pytest.approx(34 / 70)


def test_chi_square_with_yates() -> None:
    """A 2×2 with Yates' correction matches the textbook statistic and p-value."""
    stat, p = chi_square_2x2(20, 30, 40, 10)
    assert stat == pytest.approx(15.041, abs=1e-3)
    assert p == pytest.approx(0.000105, rel=0.01)


def test_association_picks_fisher_for_small_counts() -> None:
    """Expected counts under 5 use Fisher's test, larger ones chi-square."""
    assert association(3, 1, 1, 3)[1] == "fisher"
    assert association(200, 300, 400, 100)[1] == "chi-square"


def test_benjamini_hochberg_known_values() -> None:
    """q-values are monotone in p and match a hand-computed example."""
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])


def test_risk_ratio_interval_contains_truth_for_equal_rates() -> None:
    """Equal rates give a ratio of 1 with an interval around it."""
    rr, lo, hi = risk_ratio(50, 1000, 50, 1000)
    assert rr == 1 and lo < 1 < hi


def test_weighted_quantiles_are_lower_order_statistics() -> None:
    """quantile(q) is the ceil(q·n)-th smallest value."""
    sample = Weighted.of([(1.0, 2), (5.0, 1), (3.0, 2)])
    assert [sample.quantile(q) for q in (0.2, 0.4, 0.5, 0.6, 1.0)] == [1.0, 1.0, 3.0, 3.0, 5.0]


def test_resampled_median_matches_brute_force_bootstrap() -> None:
    """The Beta shortcut gives the same distribution of resampled medians as resampling n values."""
    rng = random.Random(5)
    values = [round(rng.lognormvariate(0, 1), 2) for _ in range(101)]
    sample = Weighted.of(Counter(values).items())
    shortcut = sorted(sample.resampled_quantile(0.5, random.Random(i)) for i in range(3000))
    brute = []
    for i in range(3000):
        r = random.Random(10_000 + i)
        resample = sorted(r.choice(values) for _ in values)
        brute.append(resample[50])
    brute.sort()
    for q in (0.05, 0.5, 0.95):
        assert shortcut[int(q * 3000)] == pytest.approx(brute[int(q * 3000)], rel=0.08)


def test_bootstrap_ratio_of_identical_samples_contains_one() -> None:
    """Two samples from the same distribution give a median ratio interval containing 1."""
    rng = random.Random(1)
    a = Weighted.of(Counter(round(rng.lognormvariate(3, 0.5), 2) for _ in range(2000)).items())
    b = Weighted.of(Counter(round(rng.lognormvariate(3, 0.5), 2) for _ in range(2000)).items())
    ratio, lo, hi = bootstrap_ratio(a, b)
    assert lo <= 1 <= hi and lo <= ratio <= hi


def test_design_effect_from_sums_matches_the_per_user_rows() -> None:
    """The sums SQL adds up give the same design effect as the users' own rows."""
    from tallystick.analysis.stats import quantile_design_effect, quantile_design_effect_of_sums

    rng = random.Random(4)
    rows = [(n, rng.randint(0, n)) for n in (rng.randint(1, 60) for _ in range(200))]
    sums = (
        len(rows),
        sum(n for n, _ in rows),
        sum(c for _, c in rows),
        sum(n * n for n, _ in rows),
        sum(c * c for _, c in rows),
        sum(n * c for n, c in rows),
    )
    assert quantile_design_effect_of_sums(sums) == pytest.approx(quantile_design_effect(rows), rel=1e-6)
    assert quantile_design_effect(rows) > 1.5  # users differ: their spans carry less than independent ones


def test_proportion_design_effect_from_sums_matches_the_per_user_rows() -> None:
    """The sums SQL adds up give the design effect of a proportion that ``Clustered`` gives from the users' rows."""
    from tallystick.analysis.stats import Clustered, proportion_design_effect_of_sums

    rng = random.Random(5)
    rows = [
        (n, sum(rng.random() < 0.1 + 0.5 * (i % 7 == 0) for _ in range(n)))
        for i, n in enumerate(rng.randint(1, 60) for _ in range(300))
    ]
    n, k = sum(r[0] for r in rows), sum(r[1] for r in rows)
    sums = (len(rows), n, k, sum(a * a for a, _ in rows), sum(b * b for _, b in rows), sum(a * b for a, b in rows))
    c = Clustered.of((a, b, a, b) for a, b in rows)
    expected = c.var1 / (c.p1 * (1 - c.p1) / n)
    assert proportion_design_effect_of_sums(sums) == pytest.approx(expected, rel=1e-9)
    assert expected > 2  # some users hit the outcome far more often: their sessions carry less than independent ones
    assert proportion_design_effect_of_sums((1, 10, 3, 100, 9, 30)) == 1.0  # one user: nothing to compare


def test_clustered_from_sums_matches_the_per_user_rows() -> None:
    """``clustered_of_sums`` of the sums over users gives the variances ``Clustered.of`` gives from their rows."""
    from tallystick.analysis.stats import USER_SUMS, Clustered, clustered_of_sums

    rng = random.Random(6)
    rows = []
    for i in range(400):
        n1, n0 = rng.randint(0, 30), rng.randint(0 if i % 3 else 1, 30)
        rate = 0.05 + 0.4 * (i % 11 == 0)
        rows.append((n1, sum(rng.random() < rate for _ in range(n1)), n0, sum(rng.random() < rate for _ in range(n0))))
    rows = [r for r in rows if r[0] or r[2]]
    sums = {}
    for term in USER_SUMS:
        names = term.split("*")
        sums[term] = sum(
            math.prod(dict(zip(("n1", "k1", "n0", "k0"), r, strict=True))[name] for name in names) for r in rows
        )
    expected = Clustered.of(rows)
    got = clustered_of_sums(len(rows), sums)
    for field in ("p1", "p0", "var1", "var0", "cov"):
        assert getattr(got, field) == pytest.approx(getattr(expected, field), rel=1e-9), field
    assert got.users == expected.users


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        pytest.param(12.7062, 1, 0.05, id="one"),
        pytest.param(4.30265, 2, 0.05, id="two"),
        pytest.param(4.03214, 5, 0.01, id="five"),
        pytest.param(2.22814, 10, 0.05, id="ten"),
        pytest.param(2.04227, 30, 0.05, id="thirty"),
        pytest.param(1.95996, math.inf, 0.05, id="normal"),
        pytest.param(0.0, 3, 1.0, id="zero"),
    ],
)
def test_student_t_p_matches_tables(t: float, df: float, p: float) -> None:
    """Two-sided p-values of Student's t match published critical values."""
    from tallystick.analysis.stats import student_t_p

    assert student_t_p(t, df) == pytest.approx(p, rel=1e-4)
    assert student_t_p(-t, df) == student_t_p(t, df)


def test_student_t_p_with_fractional_degrees_of_freedom() -> None:
    """With 2.5 degrees of freedom (Satterthwaite's are rarely whole) the p-value is the t density integrated."""
    from tallystick.analysis.stats import student_t_p

    df, t, steps = 2.5, 1.7, 20_000
    scale = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    width = t / steps
    inner = sum(scale * (1 + ((i + 0.5) * width) ** 2 / df) ** (-(df + 1) / 2) for i in range(steps)) * width
    assert student_t_p(t, df) == pytest.approx(1 - 2 * inner, rel=1e-6)


@pytest.mark.parametrize(
    ("statistic", "df", "p"),
    [(5.991465, 2, 0.05), (9.487729, 4, 0.05), (16.811894, 6, 0.01), (0.0, 4, 1.0), (2.0, 2, math.exp(-1))],
    ids=["df2-5%", "df4-5%", "df6-1%", "zero", "df2-exp"],
)
def test_chi_square_even_p_matches_tabled_quantiles(statistic: float, df: int, p: float) -> None:
    """The chi-square tail for an even number of degrees of freedom gives the tabled quantiles' levels."""
    assert chi_square_even_p(statistic, df) == pytest.approx(p, rel=1e-5)
