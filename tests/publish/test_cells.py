"""Minimum cell counts: which cells are named, merged into "other" or withheld, and how counts are rounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallystick.publish import BadConfig, Policy, protect

EXACT = Policy(k=10, round_to=1)


def test_a_value_under_k_is_merged_into_other_and_never_named() -> None:
    """A value used by 9 users joins "other"; values used by 10 or more are named."""
    cells = protect({"bash": 40, "zsh": 10, "rare": 9, "tail": 3}, 62, EXACT)
    assert [c.label for c in cells.named] == ["bash", "zsh"]
    assert cells.cells[-1].other
    assert cells.cells[-1].users == 12
    assert "rare" not in {c.label for c in cells.cells}


def test_a_small_other_pulls_in_the_smallest_named_cell() -> None:
    """Secondary suppression: "other" of one user would be total minus the named cells, so the smallest joins it."""
    cells = protect({"bash": 40, "zsh": 12, "rare": 1}, 53, EXACT)
    assert [c.label for c in cells.named] == ["bash"]
    assert cells.cells[-1].users == 13


def test_the_remainder_a_reader_can_compute_is_never_small() -> None:
    """Users outside every listed cell (total minus named) count too: a remainder of 2 pulls in a cell."""
    cells = protect({"bash": 40, "zsh": 11}, 53, EXACT)
    assert [c.label for c in cells.named] == ["bash"]
    for c in cells.named:
        assert c.users is not None
        assert c.users >= 10
    assert 53 - sum(c.users or 0 for c in cells.named) >= 10


def test_a_total_under_k_withholds_the_whole_table() -> None:
    """Nine users in all: nothing is published, not even the total."""
    cells = protect({"bash": 9}, 9, EXACT)
    assert cells.cells == ()
    assert cells.total is None


def test_other_still_small_after_merging_everything_has_no_number() -> None:
    """Users counted once per value: if "other" stays under k it is shown as "fewer than k"."""
    cells = protect({"a": 4, "b": 3}, 12, EXACT)
    assert cells.named == ()
    assert cells.cells[0].other
    assert cells.cells[0].users is None
    assert cells.cells[0].share is None


@pytest.mark.parametrize(("n", "rounded"), [(10, 10), (12, 10), (13, 15), (17, 15), (18, 20), (1234, 1235)], ids=str)
def test_counts_round_to_the_nearest_multiple(n: int, rounded: int) -> None:
    """With round_to = 5 a count becomes the nearest multiple of 5; shares come from rounded counts."""
    policy = Policy(k=10, round_to=5)
    assert policy.round(n) == rounded
    cells = protect({"x": n}, n, policy)
    assert cells.named[0].users == rounded
    assert cells.named[0].share == 1.0


@pytest.mark.parametrize(
    ("k", "round_to"), [(1, 1), (0, 1), (10, 0), (10, 25)], ids=["k1", "k0", "round0", "round-over-k"]
)
def test_a_policy_that_protects_nothing_is_refused(k: int, round_to: int) -> None:
    """k under 2 or rounding under 1 is a configuration error naming the key."""
    with pytest.raises(BadConfig, match=r"k =|round_to ="):
        Policy(k=k, round_to=round_to)


@given(
    counts=st.dictionaries(st.text(min_size=1, max_size=4), st.integers(0, 60), max_size=8),
    extra=st.integers(0, 30),
    k=st.integers(2, 15),
)
def test_no_published_cell_or_difference_is_under_k(counts: dict[str, int], extra: int, k: int) -> None:
    """For any table: named cells had >= k users, "other" is >= k or has no number, and the users outside the
    named cells (total minus named, exact) are none or >= k."""
    total = sum(counts.values()) + extra  # extra: users the table does not show (e.g. beyond its top values)
    cells = protect(counts, total, Policy(k=k, round_to=1))
    if total < k:
        assert cells.cells == ()
        return
    named = {c.label: c for c in cells.named}
    assert all(counts[label] >= k and c.users == counts[label] for label, c in named.items())
    for c in cells.cells:
        assert c.users is None or c.users >= k
    outside = total - sum(counts[label] for label in named)
    assert outside == 0 or outside >= k
