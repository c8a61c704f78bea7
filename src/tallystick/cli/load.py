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
    from tallystick.warehouse.loader import Loader

    warehouse = open_warehouse(args)
    try:
        progress = None if quiet or not sys.stderr.isatty() else _progress_printer(sys.stderr)
        options = {k: v for k in ("batch_size", "workers") if (v := getattr(args, k, None)) is not None}
        stats = Loader(store, warehouse, progress=progress, **options).run()
        # Derived tables for the analyses, a step of its own after the load (rollup.py: why a
        # crash between the two is harmless: analyses read `sessions` while the rollup is stale).
        from tallystick.warehouse import rollup

        rollup.refresh(warehouse)
        # Erasures users asked for from their machines (privacy/erasure.py): after the load, so
        # sessions stored but not yet loaded are found; it refreshes the derived tables it changed.
        from tallystick.privacy.erasure import process_pending

        if (erased := process_pending(store, warehouse)).sessions:
            say(f"erasure: {erased}")
        if retention is not None and (swept := retention.run_if_due(store, warehouse)) and swept.sessions:
            say(f"retention: {swept}")
    finally:
        warehouse.close()
    if not quiet and sys.stderr.isatty() and stats.pending:
        sys.stderr.write("\n")
    return stats


def summary(stats: Any) -> str:
    text = f"{stats.loaded:,} sessions loaded"
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
