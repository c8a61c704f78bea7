"""``tallystick demo``: send generated sessions of the fictional tool 'demo' to a running ingest service."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tallystick.cli.common import DEFAULT_PORT, FMT, CliError


def cmd_demo(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from tallystick import demo

    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(
            f"--url {args.url!r} is not an http:// or https:// URL: e.g. --url http://127.0.0.1:{DEFAULT_PORT}"
        )

    def show(counts: Any) -> None:  # on a terminal only: a line on stderr, overwritten
        sys.stderr.write(f"\r\033[Ksent {sum(counts.values()):,} of {args.sessions:,} sessions ...")
        sys.stderr.flush()

    busy = sys.stderr.isatty()
    try:
        sessions = demo.generate(args.sessions, seed=args.seed, days=args.days)
        counts = demo.send(args.url, sessions, wait_seconds=5, progress=show if busy else None)
    except demo.SendError as exc:
        raise CliError(str(exc)) from None
    finally:
        if busy:
            sys.stderr.write("\r\033[K")
    print(f"sent {sum(counts.values()):,} sessions to {args.url}: {demo.describe(counts)}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="send demo sessions to a running ingest service",
        formatter_class=FMT,
        description="Generate realistic sessions of the fictional tool 'demo' and send them over HTTP.",
        epilog=f"example:\n  tallystick demo --url http://127.0.0.1:{DEFAULT_PORT} --sessions 10000",
    )
    p.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="ingest service (default: %(default)s)")
    p.add_argument("--sessions", type=int, default=2000, metavar="N", help="how many (default: %(default)s)")
    p.add_argument("--days", type=int, default=120, help="period the sessions span (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="seed (default: %(default)s)")
    p.set_defaults(func=cmd_demo)
