"""What every command shares: the default paths (defined here only), errors, and small helpers.

Every command works on embedded defaults: sessions in ``<data-dir>/sessions``, the
warehouse in ``<data-dir>/warehouse.duckdb``, with ``<data-dir>`` from ``--data-dir``,
``$TALLYSTICK_DATA_DIR`` or ``~/.local/share/tallystick``. Kept light to import: the
parser is built on every run, so the heavy imports happen in the command functions.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from tallystick._terminal import safe
from tallystick.privacy.retention import DEFAULT_DAYS, parse_days

DEFAULT_PORT = 8780
DATA_DIR_ENV = "TALLYSTICK_DATA_DIR"
STORAGE_DIR = "sessions"
WAREHOUSE_FILE = "warehouse.duckdb"
EPILOG_COMMON = f"Data directory: --data-dir, else ${DATA_DIR_ENV}, else ~/.local/share/tallystick."
FMT = argparse.RawDescriptionHelpFormatter
WAREHOUSE_HELP = f"DuckDB file (default: <data-dir>/{WAREHOUSE_FILE}), clickhouse://host:8123/database or chdb:///dir"


class CliError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".local" / "share" / "tallystick")


def _given(args: argparse.Namespace, name: str) -> str | None:
    """The option's value; an empty one (``--storage "$UNSET"``) is a mistake, not "the default"."""
    value = getattr(args, name, None)
    if value is not None and not str(value).strip():
        flag = "--" + name.replace("_", "-")
        raise CliError(f"{flag} is empty: give a value, or leave {flag} out for the default")
    return value


def data_dir(args: argparse.Namespace) -> Path:
    given = _given(args, "data_dir")
    return Path(given).expanduser() if given else default_data_dir()


def storage_url(args: argparse.Namespace) -> str:
    """``--storage``, else ``<data-dir>/sessions``."""
    return str(_given(args, "storage") or (data_dir(args) / STORAGE_DIR))


def warehouse_spec(args: argparse.Namespace) -> str:
    """``--warehouse``, else ``<data-dir>/warehouse.duckdb``."""
    return str(_given(args, "warehouse") or data_dir(args) / WAREHOUSE_FILE)


def open_warehouse(args: argparse.Namespace, read_only: bool = False) -> Any:
    from tallystick.warehouse import open_warehouse

    return open_warehouse(warehouse_spec(args), read_only=read_only)


def open_store(args: argparse.Namespace) -> Any:
    from tallystick.storage import open_store

    return open_store(storage_url(args))


def program() -> str:
    """This program as the user can run it again, pasted into the same shell.

    ``tallystick`` when that name on ``$PATH`` is this program; else the path it was started
    by (``.venv/bin/tallystick`` after ``python3 dev.py demo``), or ``python -m tallystick.cli``.
    """
    started = sys.argv[0] if sys.argv and sys.argv[0] else "tallystick"
    name = os.path.basename(started)
    if name in {"__main__.py", "-m"} or not os.path.exists(started):
        return f"{shlex.quote(sys.executable)} -m tallystick.cli"
    found = shutil.which(name)
    if found and os.path.realpath(found) == os.path.realpath(started):
        return name
    return shlex.quote(started)


# Where a command's data is: the options a hint must repeat for the command it names to read the
# same data as the one that printed it. Which commands take which is checked against the parser
# (tests/cli/test_hints.py).
PLACE_OPTIONS = {"--data-dir": "data_dir", "--storage": "storage", "--warehouse": "warehouse"}
TAKES_PLACE = {
    "up": ("--data-dir", "--storage", "--warehouse"),
    "serve": ("--data-dir", "--storage"),
    "load": ("--data-dir", "--storage", "--warehouse"),
    "dashboard": ("--data-dir", "--warehouse"),
    "query": ("--data-dir", "--warehouse"),
    "report": ("--data-dir", "--warehouse"),
    "digest": ("--data-dir", "--warehouse"),
    "publish": ("--data-dir", "--warehouse"),
    "delete-user": ("--data-dir", "--storage", "--warehouse"),
    "rejects": ("--data-dir", "--storage"),
    "import": ("--data-dir", "--storage"),
}
_HINT = re.compile(r"`tallystick ([a-z-]+)")


def runnable(message: str, args: argparse.Namespace | None = None) -> str:
    """``message`` with each `` `tallystick ...` `` hint runnable as printed: the program named as
    ``program()`` does, and, given the command's ``args``, the ``--data-dir``, ``--storage`` and
    ``--warehouse`` it was given repeated where the hinted command takes them (a hint that reads
    the default warehouse after a command that read another would answer about the wrong data)."""
    name = program()

    def place(match: re.Match[str]) -> str:
        command = match.group(1)
        given = [
            f"{flag} {shlex.quote(str(getattr(args, PLACE_OPTIONS[flag])))}"
            for flag in TAKES_PLACE.get(command, ())
            if args is not None and getattr(args, PLACE_OPTIONS[flag], None)
        ]
        return f"`{name} {command}" + "".join(" " + g for g in given)

    return _HINT.sub(place, message)


def say(message: str, args: argparse.Namespace | None = None) -> None:
    """A message to stderr, each line escaped for the terminal (an engine's error may quote session
    text; its own line breaks, as under DuckDB's pointer to the spot, stay), hints runnable as printed
    (``runnable``, with the command's ``args``)."""
    print("\n".join(safe(line) for line in runnable(message, args).split("\n")), file=sys.stderr, flush=True)


def whole(minimum: int) -> Any:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: use {minimum} or more")
        return number

    return parse


def port(text: str) -> int:
    """``--port``: 0 (any free port) to 65535."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0-65535 (0: any free port)") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 0-65535 (0: any free port)")
    return number


def parse_interval(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``1d`` or plain seconds → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval: use e.g. 30s, 5m, 1h or 1d") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return safe(str(value))


def print_table(columns: list[str], rows: list[tuple[Any, ...]], out: Any) -> None:
    """An aligned text table; every value and column name escaped for the terminal (``_terminal.safe``)."""
    cells = [[_format_value(v) for v in row] for row in rows]
    columns = [safe(c) for c in columns]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


# --- arguments more than one command takes ---------------------------------------------------------


def add_data_dir(p: argparse.ArgumentParser, help: str = "where sessions and the warehouse live (see below)") -> None:
    p.add_argument("--data-dir", metavar="DIR", help=help)


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL", help=f"object storage URL (default: file://<data-dir>/{STORAGE_DIR})")


def add_warehouse(p: argparse.ArgumentParser, help: str = WAREHOUSE_HELP, metavar: str = "SPEC") -> None:
    p.add_argument("--warehouse", metavar=metavar, help=help)


def add_retention_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--retention-days",
        type=parse_days,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"delete sessions older than N days, hourly after a load; 'off' keeps all (default: {DEFAULT_DAYS})",
    )


def retention_of(args: argparse.Namespace) -> Any:
    """The retention schedule the parsed ``--retention-days`` asks for."""
    from tallystick.privacy.retention import Retention

    return Retention(getattr(args, "retention_days", DEFAULT_DAYS))
