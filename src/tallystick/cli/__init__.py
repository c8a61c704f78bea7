"""``tallystick``: one command for the whole pipeline.

One module per command (or family of commands), each with a ``register(sub)`` that adds
its parser; ``COMMANDS`` lists them in the order ``--help`` shows them. To add a command,
write its module and add it to ``COMMANDS``. The default paths and what commands share
are in ``common.py``. Every module is light to import: the parser is built on every run,
so the work (and its imports) happens in the command functions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tallystick._terminal import end_on_closed_pipe
from tallystick.cli import abacus_import, dashboard, demo, digest, load, privacy, publish, query, report, serve
from tallystick.cli.common import CliError, default_data_dir, print_table, say

COMMANDS = (serve, load, dashboard, query, demo, report, digest, publish, privacy, abacus_import)

__all__ = ["COMMANDS", "CliError", "build_parser", "default_data_dir", "main", "print_table"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tallystick",
        description="Self-hosted, privacy-first usage telemetry for command-line tools.",
        epilog="Start with: tallystick up --demo   then, in another terminal:   tallystick query "
        '"SELECT applicationVersion, count(*) AS n FROM sessions GROUP BY applicationVersion"',
    )
    from tallystick import __version__

    parser.add_argument("--version", action="version", version=f"tallystick {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code. A closed output pipe (``| head``) ends it quietly, with 0."""
    try:
        code = _main(argv)
        if sys.stdout is not None:  # a command may have let go of it already
            sys.stdout.flush()
    except BrokenPipeError:
        end_on_closed_pipe()
        return 0
    return code


def _unrecognized(parser: argparse.ArgumentParser, command: str | None, extras: list[str]) -> None:
    """Exit as argparse does for arguments no option takes, but from the command's own parser
    (its usage, not the top-level one) and naming the option meant: ``--evry`` → ``--every``."""
    import difflib

    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    target = sub.choices.get(command, parser) if sub is not None and command else parser
    known = [o for o in target._option_string_actions if o.startswith("--")]
    hints = []
    for extra in extras:
        flag = extra.split("=", 1)[0]
        if flag.startswith("--"):
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{flag}: did you mean {close[0]}?")
    target.error(f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else ""))


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _unrecognized(parser, getattr(args, "command", None), extras)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from tallystick.privacy import PrivacyError
    from tallystick.server.config import ConfigError
    from tallystick.server.run import BindError
    from tallystick.storage import StorageError
    from tallystick.warehouse import WarehouseError

    try:
        return int(args.func(args))
    except (CliError, ConfigError, BindError, StorageError, WarehouseError, PrivacyError) as exc:
        say(f"tallystick: error: {exc}", args)
        return 1
    except KeyboardInterrupt:
        return 130
