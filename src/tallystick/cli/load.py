"""``tallystick load``: move new sessions from storage into the warehouse, once or on a schedule."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from tallystick.cli.common import (
    EPILOG_COMMON,
    FMT,
    add_data_dir,
    add_retention_argument,
    add_storage,
    add_warehouse,
    open_store,
    open_warehouse,
    parse_interval,
    retention_of,
    say,
    warehouse_spec,
)


def _progress_printer(stream: Any) -> Callable[[Any], None]:
    interactive = stream.isatty()

    def show(stats: Any) -> None:
        remaining = stats.pending - stats.done
        eta = remaining / stats.rate if stats.rate else 0.0
        line = (
            f"loaded {stats.done:,}/{stats.pending:,} objects ({stats.rate:,.0f}/s, ETA {eta:,.0f}s): "
            f"{stats.loaded:,} new, {stats.duplicates:,} duplicate, {stats.rejected:,} rejected"
        )
        if interactive:
            stream.write("\r\033[K" + line)
            stream.flush()

    return show


def load_once(args: argparse.Namespace, store: Any, quiet: bool = False, retention: Any = None) -> Any:
    """One load cycle (``tallystick.warehouse.cycle.run``) into the warehouse ``args`` names."""
    from tallystick.privacy.retention import after_load
    from tallystick.warehouse import cycle

    warehouse = open_warehouse(args)
    try:
        progress = None if quiet or not sys.stderr.isatty() else _progress_printer(sys.stderr)
        stats = cycle.run(
            store,
            warehouse,
            after_load=after_load(retention),
            progress=progress,
            report=say,
            batch_size=getattr(args, "batch_size", None),
            workers=getattr(args, "workers", None),
        )
    finally:
        warehouse.close()
    if not quiet and sys.stderr.isatty() and stats.pending:
        sys.stderr.write("\n")
    return stats


def summary(stats: Any) -> str:
    text = f"{stats.loaded:,} session{'' if stats.loaded == 1 else 's'} loaded"
    if stats.duplicates:
        text += f", {stats.duplicates:,} duplicates skipped"
    if stats.rejected:
        text += f", {stats.rejected:,} objects rejected (see the _tallystick_loaded table)"
    return text + f" in {stats.seconds:.1f}s"


def cmd_load(args: argparse.Namespace) -> int:
    store = open_store(args)
    retention = retention_of(args)
    while True:
        stats = load_once(args, store, retention=retention)
        say(f"{time.strftime('%H:%M:%S')} {summary(stats)} into {warehouse_spec(args)}")
        if not args.every:
            return 0
        time.sleep(args.every)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "load",
        help="move new sessions from storage into the warehouse",
        formatter_class=FMT,
        description="Load every session not yet in the warehouse. Safe to interrupt and to re-run: "
        "nothing is loaded twice.",
        epilog="example:\n  tallystick load\n  tallystick load --every 1h     # keep running, once an hour\n\n"
        + EPILOG_COMMON,
    )
    add_data_dir(p)
    add_storage(p)
    add_warehouse(p)
    p.add_argument("--every", type=parse_interval, metavar="INTERVAL", help="repeat on a schedule, e.g. 1h")
    p.add_argument("--batch-size", type=int, metavar="N", help="sessions per warehouse write (default: 20000)")
    p.add_argument("--workers", type=int, metavar="N", help="reader processes (default: one per CPU; 0: none)")
    add_retention_argument(p)
    p.set_defaults(func=cmd_load)
