"""How often the nudges report names where the nudge works, rightly and wrongly, over many seeds.

Runs ``responders.find`` (the test every nudges report runs) on seeded populations from
``tests/analysis/reviewed.py`` (``nudged``): the nudge works only for fish users, only for Windows users
(15 % of users), for everyone except Windows users, except fish users (20 %), except CI runs (20 %,
a two-valued attribute), for everyone alike, or for nobody. No warehouse: the per-user counts are worked out from
the sessions in Python (``reviewed.nudge_cells``); ``tests/analysis/test_responders.py`` checks that
DuckDB, ClickHouse 18.16 and chDB count the same.

    .venv/bin/python bench/nudge_rates.py [--seeds 40]

Prints one line per kind of population: populations, how many named the planted value (alone, the right
way: "for" or "except"), and how many named anything else (a value that was not planted, or the planted
one the wrong way).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent / "tests")  # not bench/: its analysis.py

from analysis import reviewed  # noqa: E402 - the populations live with the tests
from tallystick.analysis import responders  # noqa: E402

OS = "operatingSystem"
KINDS = (  # name, who heeds the nudge, p per nudge, first seed, the value to name
    ("only fish users respond", lambda a: a["shell"] == "fish", 0.4, 1000, "for shell=fish"),
    ("only Windows users respond", lambda a: a[OS] == "Windows", 0.4, 2000, f"for {OS}=Windows"),
    ("all but Windows respond", lambda a: a[OS] != "Windows", 0.4, 5000, f"except {OS}=Windows"),
    ("all but fish respond", lambda a: a["shell"] != "fish", 0.4, 6000, "except shell=fish"),
    ("all but CI respond", lambda a: not a["isCI"], 0.4, 7000, "except isCI=true"),
    ("everyone responds alike", lambda a: True, 0.4, 3000, None),
    ("nobody responds", lambda a: True, 0.0, 4000, None),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40, help="seeds per kind of population (40)")
    args = parser.parse_args(argv)
    print(f"{'populations':<28} {'n':>3} {'named truth':>11} {'named false':>11}  false values named")
    for name, heeds, p, first, planted in KINDS:
        truth, false = 0, 0
        wrong: Counter[str] = Counter()
        for seed in range(first, first + args.seeds):
            found = responders.find(*reviewed.nudge_cells(reviewed.nudged(seed, heeds, p)))
            labels = [f"{n.direction} {n.label()}" for n in found.named]
            truth += labels == [planted]
            others = [x for x in labels if x != planted]
            false += bool(others)
            wrong.update(others)
        shown = ", ".join(f"{v} ({n})" for v, n in wrong.most_common(5))
        print(f"{name:<28} {args.seeds:>3} {truth if planted else '-':>11} {false:>11}  {shown}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(0)
