"""Is a comparison an artefact of who uses what? The same comparison within each value of another attribute.

Feature impact and span comparison split sessions (or spans) into two groups. If the groups differ in
another attribute that matters too — fast arm64 machines mostly use BuildKit; Windows users, who hit an
error five times as often, rarely turn on tab completion — the split shows that attribute's effect, and
may even reverse the true one (Simpson's paradox). On a sample of sessions with all their attributes,
the comparison is repeated within each value of one attribute at a time (a stratum) and pooled with
Mantel–Haenszel weights ``W_s = N1_s·N0_s / (N1_s + N0_s)``:

- a **rate ratio** (``log_ratio=True``, ``y`` the outcome 0/1): ``Σ W_s·p1_s / Σ W_s·p0_s``;
- a **difference of means** (``y`` a log duration): ``Σ W_s·(m1_s − m0_s) / Σ W_s``, a ratio of
  geometric means once exponentiated.

Both with a cluster-robust (per-user) variance: each user's influence on the estimate, with the weights
held fixed, is summed before squaring. The attribute whose adjustment moves the estimate most is
reported when it moves it beyond the unadjusted estimate's own interval: then the unadjusted answer
reflects who uses the feature, and the headline says so. Attributes with one value, with more than
``MAX_STRATA``, the compared attribute itself, and symptoms of the outcome (a value almost only seen
with it, like the exit code an error sets, within which the comparison means nothing) are not used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tallystick.analysis.stats import z_value

MAX_STRATA = 12
SYMPTOM = 0.95


@dataclass(frozen=True)
class Unit:
    """One session (or span) of the sample: its user, group (1 compared, 0 baseline), weight (the inverse
    of its sampling probability), value (0/1 outcome or log duration) and attributes as text."""

    user: int
    group: int
    weight: float
    y: float
    attrs: dict[str, str]


@dataclass(frozen=True)
class Adjusted:
    """The comparison within each value of ``attribute``, and without stratifying, on the same sample, as
    ratios (``exp`` of the estimate) with their intervals."""

    attribute: str
    ratio: float
    lo: float
    hi: float
    crude: float
    crude_lo: float
    crude_hi: float

    def reverses(self) -> bool:
        """Whether the interval lies on the other side of 1 from the unadjusted estimate."""
        return (self.lo > 1 and self.crude < 1) or (self.hi < 1 and self.crude > 1)

    def unclear(self) -> bool:
        return self.lo <= 1 <= self.hi


def estimate(units: Sequence[Unit], key: str | None, *, log_ratio: bool) -> tuple[float, float] | None:
    """(estimate on the log scale, its cluster-robust standard error) within the values of ``key`` (all
    units one stratum if None); None when no stratum has both groups or an estimate is not defined."""
    sums: dict[str | None, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # N1, S1, N0, S0
    for u in units:
        cell = sums[u.attrs.get(key) if key else None]
        cell[0 if u.group else 2] += u.weight
        cell[1 if u.group else 3] += u.weight * u.y
    strata = {s: c for s, c in sums.items() if c[0] > 0 and c[2] > 0}
    if not strata:
        return None
    weight = {s: c[0] * c[2] / (c[0] + c[2]) for s, c in strata.items()}
    mean = {s: (c[1] / c[0], c[3] / c[2]) for s, c in strata.items()}
    if log_ratio:
        a = sum(weight[s] * mean[s][0] for s in strata)
        b = sum(weight[s] * mean[s][1] for s in strata)
        if a <= 0 or b <= 0:
            return None
        value = math.log(a / b)
        scale = (1 / a, 1 / b)
    else:
        total = sum(weight.values())
        value = sum(weight[s] * (mean[s][0] - mean[s][1]) for s in strata) / total
        scale = (1 / total, 1 / total)
    influence: dict[int, float] = defaultdict(float)
    for u in units:
        s = u.attrs.get(key) if key else None
        if s not in strata:
            continue
        c = strata[s]
        if u.group:
            influence[u.user] += scale[0] * weight[s] * u.weight * (u.y - mean[s][0]) / c[0]
        else:
            influence[u.user] -= scale[1] * weight[s] * u.weight * (u.y - mean[s][1]) / c[2]
    g = len(influence)
    if g < 2:
        return None
    # Sorted: the same float sum whatever order the engine returned the users in.
    variance = g / (g - 1) * sum(x * x for x in sorted(influence.values()))
    return value, math.sqrt(variance)


def candidates(units: Iterable[Unit], exclude: set[str], *, log_ratio: bool) -> list[str]:
    """Attributes to adjust for: 2 to ``MAX_STRATA`` values, not excluded, not a symptom of the outcome."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for u in units:
        for key, text in u.attrs.items():
            if key not in exclude:
                cell = values[key][text]
                cell[0] += u.weight
                cell[1] += u.weight * u.y
    out = []
    for key, by_value in sorted(values.items()):
        if not 2 <= len(by_value) <= MAX_STRATA:
            continue
        if log_ratio and any(n > 0 and s / n >= SYMPTOM for n, s in by_value.values()):
            continue
        out.append(key)
    return out


def compress(units: Iterable[Unit]) -> list[Unit]:
    """Units of one user and group with the same attributes as one, weighted by their total weight, with their
    weighted mean ``y``: every estimate here needs only those sums (a user's sessions mostly repeat).

    Sorted so that the float sums are the same whatever order the engine returned the rows in and however it
    hashed the users: within a user by content, and the result by content (cells alike in content add alike).
    """
    cells: dict[tuple[int, int, tuple[tuple[str, str], ...]], list[float]] = {}
    keyed = sorted((u.user, u.group, tuple(sorted(u.attrs.items())), u.y, u.weight) for u in units)
    for user, group, attrs, y, weight in keyed:
        cell = cells.setdefault((user, group, attrs), [0.0, 0.0])
        cell[0] += weight
        cell[1] += weight * y
    out = [(g, w, wy / w if w else 0.0, attrs, user) for (user, g, attrs), (w, wy) in cells.items()]
    return [Unit(user, g, w, y, dict(attrs)) for g, w, y, attrs, user in sorted(out)]


def strongest(
    units: Sequence[Unit], exclude: set[str], *, log_ratio: bool, confidence: float = 0.95
) -> Adjusted | None:
    """The adjustment that moves the estimate most, if it moves it beyond the unadjusted interval."""
    units = compress(units)
    crude = estimate(units, None, log_ratio=log_ratio)
    if crude is None:
        return None
    z = z_value(confidence)
    best: tuple[float, str, tuple[float, float]] | None = None
    for key in candidates(units, exclude, log_ratio=log_ratio):
        adjusted = estimate(units, key, log_ratio=log_ratio)
        if adjusted is None:
            continue
        shift = abs(adjusted[0] - crude[0])
        if shift > z * crude[1] and (best is None or shift > best[0]):
            best = (shift, key, adjusted)
    if best is None:
        return None
    _, key, (value, se) = best
    c, cse = crude
    return Adjusted(
        key,
        math.exp(value),
        math.exp(value - z * se),
        math.exp(value + z * se),
        math.exp(c),
        math.exp(c - z * cse),
        math.exp(c + z * cse),
    )
