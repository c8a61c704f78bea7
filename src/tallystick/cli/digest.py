"""``tallystick digest``: what changed since the previous period, as Markdown and a self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tallystick.cli.common import FMT, CliError, add_data_dir, add_warehouse, say, warehouse_spec


def cmd_digest(args: argparse.Namespace) -> int:
    from tallystick._terminal import safe
    from tallystick.analysis import AnalysisError, digest
    from tallystick.cli.report import _only_app
    from tallystick.warehouse import open_warehouse

    if args.days < 1:
        raise CliError("--days must be at least 1")
    warehouse = open_warehouse(warehouse_spec(args), read_only=True)
    try:
        say("digest: reading the warehouse ...")
        result = digest.build(warehouse, args.app or _only_app(warehouse), until=args.until, days=args.days)
    except AnalysisError as exc:
        raise CliError(str(exc)) from None
    finally:
        warehouse.close()
    text = digest.markdown(result)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
        say(f"digest: Markdown written to {args.markdown}")
    if args.html:
        Path(args.html).write_text(digest.html(result), encoding="utf-8")
        say(f"digest: HTML written to {args.html}")
    if not args.markdown and not args.html:
        sys.stdout.write("\n".join(safe(line) for line in text.split("\n")) + "\n")
    return 0


def register(sub: Any) -> None:
    from tallystick.cli.report import _date

    p = sub.add_parser(
        "digest",
        help="what changed since the previous period (Markdown, HTML)",
        formatter_class=FMT,
        description=(
            "A digest to read without opening the dashboard: adoption of the newest release and any\n"
            "operation that got slower in it, error rates and timings that moved beyond their uncertainty\n"
            "since the previous period, and what is still arriving. Markdown on stdout, or files with\n"
            "--markdown/--html (the HTML is one self-contained file with its charts)."
        ),
        epilog=(
            "examples:\n"
            "  tallystick digest                                  # the last 7 days against the 7 before\n"
            "  tallystick digest --days 30 --html digest.html --markdown digest.md"
        ),
    )
    add_data_dir(p)
    add_warehouse(p)
    p.add_argument("--app", help="application ID (default: the only one in the warehouse)")
    p.add_argument("--until", type=_date, metavar="DATE", help="last day of the period (default: the latest)")
    p.add_argument("--days", type=int, default=7, help="length of each period in days (default: %(default)s)")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown here instead of to stdout")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="write a self-contained HTML file with its charts here (instead of Markdown on stdout)",
    )
    p.set_defaults(func=cmd_digest)
