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
    whole,
)

PROGRESS_EVERY = 60.0  # seconds between progress lines when stderr is not a terminal (a log)


def _progress_printer(stream: Any, every: float = PROGRESS_EVERY) -> Callable[[Any], None]:
    """On a terminal, one line rewritten in place (count, rate, ETA: the objects are counted first);
    into a log or a pipe, a line every ``every`` seconds of a long load, so that a scheduled loader's
    log says it is working (counted as it goes: no second listing of the store)."""
    interactive = stream.isatty()
    last = time.monotonic()

    def show(stats: Any) -> None:
        nonlocal last
        done = f"{stats.loaded:,} new, {stats.duplicates:,} duplicate, {stats.rejected:,} rejected"
        if interactive:
            remaining = stats.pending - stats.done
            eta = remaining / stats.rate if stats.rate else 0.0
            line = f"loaded {stats.done:,}/{stats.pending:,} objects ({stats.rate:,.0f}/s, ETA {eta:,.0f}s): {done}"
            stream.write("\r\033[K" + line)
            stream.flush()
            return
        now = time.monotonic()
        if now - last < every or not stats.done:
            return
        last = now
        stream.write(
            f"{time.strftime('%H:%M:%S')} loading: {stats.done:,} objects so far ({stats.rate:,.0f}/s): {done}\n"
        )
        stream.flush()

    return show


def load_once(args: argparse.Namespace, store: Any, quiet: bool = False, retention: Any = None) -> Any:
    """One load cycle (``tallystick.warehouse.cycle.run``) into the warehouse ``args`` names."""
    from tallystick.privacy.retention import after_load
    from tallystick.warehouse import cycle

    warehouse = open_warehouse(args)
    interactive = sys.stderr.isatty()
    try:
        stats = cycle.run(
            store,
            warehouse,
            after_load=after_load(retention),
            progress=None if quiet else _progress_printer(sys.stderr),
            count_first=interactive,
            report=say,
            batch_size=getattr(args, "batch_size", None),
            workers=getattr(args, "workers", None),
        )
    finally:
        warehouse.close()
    if not quiet and interactive and stats.pending:
        sys.stderr.write("\n")
    return stats


def summary(stats: Any) -> str:
    text = f"{stats.loaded:,} session{'' if stats.loaded == 1 else 's'} loaded"
    if stats.duplicates:
        text += f", {stats.duplicates:,} duplicates skipped"
    if stats.rejected:
        text += f", {stats.rejected:,} objects rejected (see the _tallystick_loaded table)"
    return text + f" in {stats.seconds:.1f}s"


def interval_text(seconds: float) -> str:
    """``3600`` → ``1h``, ``90`` → ``90s``: an interval as ``--every`` takes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def cmd_load(args: argparse.Namespace) -> int:
    from tallystick.privacy import PrivacyError
    from tallystick.storage import StorageError
    from tallystick.warehouse import WarehouseError

    store = open_store(args)
    retention = retention_of(args)
    loaded_once = False
    while True:
        try:
            stats = load_once(args, store, retention=retention)
        except (StorageError, WarehouseError, PrivacyError, OSError) as exc:
            # On a schedule, a cycle that fails after one has worked (the warehouse restarting, the bucket
            # unreachable for a while) is said and tried again; a first cycle that fails is a setting to fix.
            if not args.every or not loaded_once:
                raise
            say(f"{time.strftime('%H:%M:%S')} load failed: {exc}; trying again in {interval_text(args.every)}", args)
        else:
            loaded_once = True
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
        "With --every, a cycle that fails after one has worked (the warehouse or the bucket unreachable for a\n"
        "while) is reported and tried again at the next interval; a first cycle that fails stops it.\n"
        "Into a log (stderr not a terminal), a long load prints a progress line every minute.\n\n" + EPILOG_COMMON,
    )
    add_data_dir(p)
    add_storage(p)
    add_warehouse(p)
    p.add_argument("--every", type=parse_interval, metavar="INTERVAL", help="repeat on a schedule, e.g. 1h")
    p.add_argument("--batch-size", type=whole(1), metavar="N", help="sessions per warehouse write (default: 20000)")
    p.add_argument("--workers", type=whole(0), metavar="N", help="reader processes (default: one per CPU; 0: none)")
    add_retention_argument(p)
    p.set_defaults(func=cmd_load)
