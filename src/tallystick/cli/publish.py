"""``tallystick publish``: a static public report (HTML, JSON, CSV) with minimum cell counts."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable

from tallystick.cli.common import EPILOG_COMMON, FMT, CliError, add_data_dir, add_warehouse, open_warehouse, say


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish",
        help="write a static public report of what the data shows (minimum cell counts)",
        formatter_class=FMT,
        description="Write a static site into --out: one HTML page with the charts the config names, the data "
        "behind each chart as JSON and CSV, what the tool collects and how to opt out. It needs no server and "
        "makes no request to any other site: copy it to any static host or open it from disk. Every number "
        "counts at least k distinct users (default 10); smaller values are merged into 'other'. Without "
        "--config it publishes versions in use, operating systems, shells and the headline answers.",
        epilog="examples:\n  tallystick publish --out site/\n"
        "  tallystick publish --print-config > publish.toml     # start from the default\n"
        "  tallystick publish --config publish.toml --out site/\n\n"
        "See docs/publishing.md for the config and for what minimum cell counts do and do not protect.\n"
        + EPILOG_COMMON,
    )
    add_data_dir(p)
    add_warehouse(p)
    p.add_argument("--config", metavar="FILE", help="what to publish, in TOML (default: the built-in config)")
    p.add_argument("--out", metavar="DIR", help="directory to write the site into (created if missing)")
    p.add_argument("--print-config", action="store_true", help="print the default config and exit")
    p.set_defaults(func=cmd_publish)


def _teller() -> Callable[[str], None]:
    """Progress to stderr that stops, without stopping the work, once stderr is a closed pipe (`2>&1 | head`):
    the site is still written whole."""
    closed = False

    def tell(line: str) -> None:
        nonlocal closed
        if closed:
            return
        try:
            say(f"publish: {line}")
        except BrokenPipeError:
            closed = True
            with contextlib.suppress(OSError, ValueError):  # so the interpreter's last flush fails no more
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stderr.fileno())
                os.close(devnull)

    return tell


def cmd_publish(args: argparse.Namespace) -> int:
    from tallystick.analysis import AnalysisError
    from tallystick.publish import PublishError, load_config, publish
    from tallystick.publish.config import DEFAULT_TOML

    if args.print_config:
        sys.stdout.write(DEFAULT_TOML)  # `| head`: main() ends quietly on the closed pipe
        return 0
    tell = _teller()
    if not args.out:
        raise CliError("name the directory to write the site into with --out, e.g. --out site/")
    try:
        config = load_config(args.config)
        warehouse = open_warehouse(args, read_only=True)
        try:
            written = publish(warehouse, config, args.out, progress=tell)
        finally:
            warehouse.close()
    except (PublishError, AnalysisError) as exc:
        raise CliError(str(exc)) from None
    withheld = (
        f"; withheld (fewer than {config.policy.k} users): {', '.join(written.withheld)}" if written.withheld else ""
    )
    tell(
        f"wrote {len(written.files)} files, {written.bytes / 1024:,.0f} kB, into {args.out} "
        f"(open {os.path.join(args.out, 'index.html')}){withheld}"
    )
    return 0
