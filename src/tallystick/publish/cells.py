"""Minimum cell counts: which numbers may be published, and how they are rounded.

Every number this package writes is made here, from counts of *distinct users*:

1. A whole table is withheld when its total is under ``k`` users.
2. A value used by fewer than ``k`` users is never named: it is merged into "other".
3. Secondary suppression: when "other" would then hold fewer than ``k`` users, or when the
   remainder a reader can compute (total minus the named cells) would, the smallest named
   cells join "other" until neither is small (differencing a table's own total is the
   first attack on suppressed cells). If nothing named is left and "other" is still small,
   it is shown as "fewer than k", without a number.
4. Counts are rounded to a multiple of ``round_to`` (never below it) and shares are computed
   from the rounded counts, so the exact counts behind a cell cannot be recovered by
   dividing one published number by another.

What this does not protect against (said in ``docs/publishing.md``): comparing two
publications whose periods differ by a little (a total that moves by one user between two
sites reveals that user's values unless rounding hides the move), and users who have
several values of one attribute (each counts once per value, so "other" counts
user-value pairs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tallystick.publish.errors import BadConfig

OTHER = "other"


@dataclass(frozen=True)
class Policy:
    """``k``: the fewest distinct users behind any published number; ``round_to``: counts' granularity."""

    k: int = 10
    round_to: int = 5

    def __post_init__(self) -> None:
        if self.k < 2:
            raise BadConfig(f"k = {self.k}: the minimum cell count must be at least 2 (default: 10)")
        if not 1 <= self.round_to <= self.k:
            raise BadConfig(
                f"round_to = {self.round_to}: use 1 (no rounding) up to k = {self.k} (coarser rounding would show "
                "a cell of k users as more than twice its size); default: 5"
            )

    def round(self, n: int) -> int:
        """``n`` (at least ``k``) to the nearest multiple of ``round_to``, never below ``round_to``."""
        step = self.round_to
        return max(step, (n + step // 2) // step * step)


@dataclass(frozen=True)
class Cell:
    """A published cell: its label, rounded users (None: "fewer than k") and share of the rounded total."""

    label: str
    users: int | None
    share: float | None
    other: bool = False


@dataclass(frozen=True)
class Cells:
    """One protected table: named cells largest first, then "other" if any. ``total`` None: withheld."""

    cells: tuple[Cell, ...]
    total: int | None

    @property
    def named(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if not c.other)

    def top(self) -> Cell | None:
        named = self.named
        return named[0] if named else None


WITHHELD = Cells((), None)


def percent(share: float | None, *, short: bool = False) -> str:
    """A published share in words: ``42 %``, ``under 1 %`` (``<1 %`` when ``short``), ``?`` when withheld."""
    if share is None:
        return "?"
    if share < 0.005:
        return "<1 %" if short else "under 1 %"
    return f"{round(share * 100)} %"


def protect(counts: Mapping[str, int], total: int, policy: Policy, *, other: int = 0) -> Cells:
    """The cells of ``counts`` (distinct users per value) that may be published, out of ``total`` users;
    ``other``: users already merged by the analysis (values beyond its top ones), never named."""
    k = policy.k
    if total < k:
        return WITHHELD
    named = sorted(((v, n) for v, n in counts.items() if n >= k), key=lambda c: (-c[1], c[0]))
    other += sum(n for n in counts.values() if 0 < n < k)

    def small(n: int) -> bool:
        return 0 < n < k

    while named and (small(other) or small(total - sum(n for _, n in named))):
        other += named.pop()[1]
    rounded_total = policy.round(total)
    cells = [Cell(v, policy.round(n), policy.round(n) / rounded_total) for v, n in named]
    if other:
        if other >= k:
            cells.append(Cell(OTHER, policy.round(other), policy.round(other) / rounded_total, other=True))
        else:
            cells.append(Cell(OTHER, None, None, other=True))
    return Cells(tuple(cells), rounded_total)
