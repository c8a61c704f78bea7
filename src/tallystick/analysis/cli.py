"""``tallystick report``: the built-in analyses on the command line.

Kept light to import: ``tallystick``'s parser is built on every run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_report_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="run a built-in analysis",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a built-in analysis of the warehouse.",
        epilog="example:\n  tallystick report adoption --app demo",
    )
    p.add_argument("name", help="the analysis")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    print("tallystick: error: no analyses are available yet", file=sys.stderr)
    return 1
