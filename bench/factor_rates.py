"""How often common-factor names the planted truth, and how often something false, over many seeds.

Runs ``common_factor.explain`` (the test every report runs, with the whole population as its sample) on
seeded populations from ``tests/analysis``: users who differ a lot in how often they fail with no cause
(``reviewed.varied_users``, four usage shapes), real causes (an OS x Python and a macOS x Docker
interaction, two causes at once, a cause only heavy users have, among users who differ as much, and the
other planted populations), and populations where nothing happens (``reviewed.null``, ``unseen.null_many``).
No warehouse: the engines only choose the sample, which is the whole population here (``tests/analysis/
test_parity.py`` checks DuckDB and ClickHouse agree on the sample and the answer).

    .venv/bin/python bench/factor_rates.py [--seeds 20] [--nulls 40]

Prints one line per kind of population: populations, how many named the planted truth (when there is one)
and how many named a value that was not planted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent / "tests")  # not bench/: its analysis.py

from analysis import populations, reviewed, unseen  # noqa: E402 - the populations live with the tests
from tallystick.analysis import common_factor  # noqa: E402

Explained = common_factor.Explained
Found = Callable[[Explained], bool]  # whether an answer names the planted truth in full


@dataclass
class Kind:
    """Seeded populations of one kind, and what a right answer is."""

    name: str
    build: Callable[[int], list[dict[str, Any]]]
    seeds: Iterable[int]
    error: str = reviewed.E
    planted: frozenset[str] = frozenset()  # values that are (part of) a cause: naming them is not false
    found: Found | None = None  # None: nothing planted


def _units(sessions: list[dict[str, Any]], error: str) -> list[tuple[int, int, dict[str, str]]]:
    users: dict[str, int] = {}
    return [
        (
            int(any(e["type"] == error for e in s["events"])),
            users.setdefault(s["userId"], len(users)),
            common_factor.decoded_texts(s["attributes"]),
        )
        for s in sessions
    ]


def _named(r: Explained) -> set[str]:
    return {t.label() for t in r.factors} | set(r.together)


def _pair(a: str, b: str) -> Found:
    """An interaction: one of the two is the factor, the other is needed with it."""
    return lambda r: len(r.factors) == 1 and {r.factors[0].label(), *r.together} == {a, b}


def _all(*labels: str) -> Found:
    return lambda r: set(labels) <= _named(r)


def _one_of(*labels: str) -> Found:
    return lambda r: bool(set(labels) & _named(r))


def kinds(seeds: int, nulls: int) -> list[Kind]:
    windows, py313 = "operatingSystem=Windows", "pythonVersion=3.13.1"
    darwin, docker = "operatingSystem=Darwin", "dockerVersion=25.0.4"
    watch = "watchMode=true"
    out = [
        Kind(
            f"varied users, no cause ({heavy} heavy x{heaviness:g})",
            partial(reviewed.varied_users, heavy=heavy, heaviness=heaviness),
            range(3000, 3000 + seeds),
        )
        for heavy, heaviness in ((10, 40), (5, 100), (20, 20), (10, 10))
    ]
    out += [
        Kind(
            f"varied users, heavy users' flag a cause (+{effect:g}, {heavy} heavy x{heaviness:g})",
            partial(reviewed.varied_users, heavy=heavy, heaviness=heaviness, effect=effect),
            range(3000, 3000 + seeds),
            planted=frozenset({watch}),
            found=_all(watch),
        )
        for heavy, heaviness, effect in ((10, 40, 0.15), (5, 100, 0.15), (10, 40, 0.05), (20, 20, 0.05))
    ]
    causes: list[tuple[str, Callable[[int], list[dict[str, Any]]], int, Callable[..., Found], tuple[str, ...]]] = [
        ("OS x Python interaction", reviewed.os_python, 21, _pair, (windows, py313)),
        ("macOS x Docker interaction", unseen.interaction, 1, _pair, (darwin, docker)),
        ("two causes", unseen.two_causes, 2, _all, (docker, "gitVersion=2.39.2")),
        ("always together", unseen.collinear, 3, _one_of, (docker, "buildxVersion=0.12.1")),
        ("old clients", reviewed.old_clients, 28, _all, (docker,)),
        ("non-ASCII", reviewed.non_ascii, 32, _all, ("locale=日本語",)),
    ]
    out += [
        Kind(name, build, range(first, first + seeds), planted=frozenset(labels), found=how(*labels))
        for name, build, first, how, labels in causes
    ]
    for p in populations.POPULATIONS:
        if p.cause_label is not None:
            out.append(
                Kind(
                    f"planted {p.name} (heavy users with the cause)",
                    lambda s, p=p: populations.generate(replace(p, seed=s)),
                    range(p.seed, p.seed + max(1, seeds // 4)),
                    p.error,
                    frozenset({p.cause_label}),
                    _all(p.cause_label),
                )
            )
    out += [
        Kind("null (reviewed.null)", reviewed.null, range(700, 700 + nulls)),
        Kind("null, 12 attributes (unseen.null_many)", unseen.null_many, range(1000, 1000 + nulls)),
    ]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per kind of population with a cause (20)")
    parser.add_argument("--nulls", type=int, default=40, help="seeds per kind of null population (40)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--only", help="only the kinds of population whose name contains this")
    parser.add_argument("--seedwise", action="store_true", help="one mark per seed: T truth, t part of it, F false")
    args = parser.parse_args(argv)
    print(f"{'populations':<64} {'n':>3} {'named truth':>11} {'named false':>11}  false values named")
    for kind in kinds(args.seeds, args.nulls):
        if args.only and args.only not in kind.name:
            continue
        n = hit = false = 0
        marks = ""
        wrong: dict[str, int] = {}
        for seed in kind.seeds:
            r = common_factor.explain(common_factor._Sample(_units(kind.build(seed), kind.error), 1.0, 1.0), args.alpha)
            n += 1
            hit += bool(kind.found and kind.found(r))
            bad = {t.label() for t in r.factors} - kind.planted
            false += bool(bad)
            for label in bad:
                wrong[label] = wrong.get(label, 0) + 1
            named = {t.label() for t in r.factors}
            found = bool(kind.found and kind.found(r))
            marks += "F" if bad else "T" if found else "t" if named & kind.planted else "."
        truth = f"{hit}/{n}" if kind.found else "-"
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(wrong.items(), key=lambda kv: -kv[1])[:4])
        print(f"{kind.name:<64} {n:>3} {truth:>11} {false:>8}/{n:<2}  {marks if args.seedwise else listed}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(0)
