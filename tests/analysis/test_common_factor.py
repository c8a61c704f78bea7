"""Common-factor analysis helpers."""

from __future__ import annotations

import random

import pytest

from tallystick.analysis.common_factor import Moments, _clustered, as_decoded
from tallystick.analysis.stats import Clustered


@pytest.mark.parametrize(
    ("text", "alike"),
    [
        pytest.param("fish", True, id="string"),
        pytest.param("true", True, id="boolean"),
        pytest.param("12", True, id="integer"),
        pytest.param("-3", True, id="negative"),
        pytest.param("007", True, id="leading-zero-is-no-number"),
        pytest.param("3.12.4", True, id="version"),
        pytest.param("1.5", True, id="float"),
        pytest.param("100.0", True, id="whole-float"),
        pytest.param("-0", False, id="minus-zero"),
        pytest.param("0.00001", False, id="small-float"),
        pytest.param("100000000000000000000.0", False, id="large-float"),
        pytest.param("24.10", False, id="trailing-zero"),
    ],
)
def test_typed_text_is_trusted_only_where_python_writes_the_number_alike(text: str, alike: bool) -> None:
    """A typed text is used as is unless it could be a number Python writes otherwise."""
    assert as_decoded(text) is alike


def _users(seed: int) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Random users' (cases, controls) overall and with one value: some heavy, some failing often."""
    rng = random.Random(seed)
    per_user: dict[int, list[int]] = {}
    with_value: dict[int, list[int]] = {}
    for user in range(300):
        rate = 0.3 if rng.random() < 0.1 else 0.02
        sessions = rng.randint(1, 5) * (40 if user < 8 else 1)
        outcomes = [rng.random() < rate for _ in range(sessions)]
        share = 1.0 if user % 7 == 0 else 0.5 if user % 5 == 0 else 0.0  # the value: whole users and some halves
        per_user[user] = [sum(outcomes), sessions - sum(outcomes)]
        chosen = outcomes[: int(sessions * share)]
        if chosen:
            with_value[user] = [sum(chosen), len(chosen) - sum(chosen)]
    return per_user, with_value


def test_the_per_value_test_matches_its_definition_in_any_order_of_users() -> None:
    """The cluster-robust comparison built from the value's users and sums over everyone is ``Clustered.of``
    of every user's row, its degrees of freedom are Satterthwaite's over the users' variance shares computed
    one by one, and shuffling the users changes no float."""
    per_user, with_value = _users(5)
    got = _clustered(with_value, per_user, Moments.of(per_user))
    rows = []
    for user, (k, c) in per_user.items():
        a, b = with_value.get(user, [0, 0])
        rows.append((a + b, a, k + c - a - b, k - a))
    expected = Clustered.of(rows)
    for name in ("p1", "p0", "var1", "var0", "cov"):
        assert getattr(got, name) == pytest.approx(getattr(expected, name), rel=1e-9), name
    # The working model's variance shares, user by user (see ``_effective_users``).
    m1, m0 = sum(r[0] for r in rows), sum(r[2] for r in rows)
    p1, p0 = got.p1, got.p0
    residual = sum((k - p0 * (m + o) - (p1 - p0) * m) ** 2 for m, k1, o, k0 in rows for k in [k1 + k0])
    binomial = m1 * p1 * (1 - p1) + m0 * p0 * (1 - p0)
    tau2 = (residual - binomial) / sum((m + o) * (m + o - 1) for m, _, o, _ in rows)
    assert tau2 > 0
    shares = [
        tau2 * (m / m1 - o / m0) ** 2 + (p1 * (1 - p1) - tau2) * m / m1**2 + (p0 * (1 - p0) - tau2) * o / m0**2
        for m, _, o, _ in rows
    ]
    assert got.df == pytest.approx(sum(shares) ** 2 / sum(v * v for v in shares), rel=1e-9)
    assert 1 < got.df < 30  # 300 users, but the 8 heavy ones carry most of the variance
    shuffled = list(with_value.items())
    random.Random(1).shuffle(shuffled)
    again = _clustered(dict(shuffled), per_user, Moments.of(per_user))
    assert again == got
