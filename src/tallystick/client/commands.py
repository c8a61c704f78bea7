"""A ready ``mytool telemetry allow|deny|status|forget`` command for your tool's own command line.

Users opt in where they already are — your tool — instead of through
``python -m tallystick.client``, which is not on their PATH when your tool lives in
its own virtual environment or a pipx install. With argparse::

    from tallystick.client import commands

    sub = parser.add_subparsers(dest="command")
    commands.add_argparse(sub)                      # adds `mytool telemetry allow|deny|status|forget`
    args = parser.parse_args()
    if args.command == "telemetry":
        return commands.run(args.telemetry)         # prints the new state, returns 0

With click: ``cli.add_command(commands.click_command())``. Call ``configure`` first, as
for everything else, and pass ``Config(consent_command="mytool telemetry")`` so the
first-run notice names this command.
"""

from __future__ import annotations

import sys

from tallystick.client import _api

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO

CHOICES = ("allow", "deny", "status", "forget")
HELP = "allow or deny anonymous usage statistics, show the current choice, or erase what was sent"
_MEANING = {
    "allowed": "allowed: anonymous usage statistics are recorded and sent",
    "disabled": "denied: nothing is recorded or sent",
    "unset": "no choice made: nothing is recorded or sent until you allow it",
}


def apply(choice: str) -> str:
    """Carry out ``allow``, ``deny``, ``status`` or ``forget``; the lines telling the user where they stand."""
    if choice == "forget":  # erase what was sent, here and on the server; the choice stays
        erased = _api.forget()
        return "usage statistics erased on this machine; the server deletes " + (
            "what was sent" if erased else "nothing"
        )
    if choice == "allow":
        _api.set_consent(True)
    elif choice in {"deny", "disable"}:
        _api.set_consent(False)
    elif choice != "status":
        raise ValueError(f"unknown choice {choice!r}: use one of {', '.join(CHOICES)}")
    lines = [f"usage statistics: {_MEANING.get(_api.consent(), _api.consent())}"]
    client = _api.active()
    if client is not None and client.decision is not None and "TELEMETRY" in client.decision.reason:
        lines.append(f"  in this shell {client.decision.reason} decides for each run")
    elif client is not None and client.decision is not None and "DO_NOT_TRACK" in client.decision.reason:
        lines.append("  in this shell DO_NOT_TRACK keeps it off")
    if client is not None and client.data_dir:
        app = client.config.app_id
        lines.append(f"  see exactly what is kept to send: python -m tallystick.client show --app {app}")
    return "\n".join(lines)


def run(choice: str, out: TextIO | None = None) -> int:
    """``apply`` and print the result (to stdout by default); the exit status, 0."""
    print(apply(choice), file=out or sys.stdout)
    return 0


def add_argparse(subparsers: Any, name: str = "telemetry") -> argparse.ArgumentParser:
    """Add ``<name> allow|deny|status|forget`` to ``add_subparsers()``; the choice lands in ``args.telemetry``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=HELP, description=HELP)
    parser.add_argument(
        "telemetry",
        metavar="allow|deny|status|forget",
        choices=CHOICES,
        help="allow: opt in; deny: opt out, deleting what waits to be sent; status: show the choice; "
        "forget: erase what this installation sent, on the server too",
    )
    return parser


def click_command(name: str = "telemetry") -> Any:
    """A click command ``<name> allow|deny|status|forget`` for ``cli.add_command(...)`` (imports click)."""
    import click

    @click.command(name=name, help=HELP)
    @click.argument("choice", type=click.Choice(CHOICES))
    def telemetry(choice: str) -> None:
        click.echo(apply(choice))

    return telemetry
