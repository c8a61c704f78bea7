"""A ready ``mytool telemetry allow|deny|status|show|forget`` command for your tool's own command line.

Users opt in where they already are — your tool — instead of through
``python -m tallystick.client``, which is not on their PATH when your tool lives in
its own virtual environment or a pipx install. With argparse::

    from tallystick.client import commands

    sub = parser.add_subparsers(dest="command")
    commands.add_argparse(sub)                      # adds `mytool telemetry allow|deny|status|show|forget`
    args = parser.parse_args()
    if args.command == "telemetry":
        return commands.run(args.telemetry)         # prints the new state, returns 0

With click: ``cli.add_command(commands.click_command())``. A tool whose parser has no
subcommands (``mytool -t TEXT``) calls ``handle`` before parsing::

    status = commands.handle(sys.argv[1:])          # `mytool telemetry ...`, or None for anything else
    if status is not None:
        return status

Call ``configure`` first, as for everything else, and pass
``Config(consent_command="mytool telemetry")`` so the first-run notice names this command.
"""

from __future__ import annotations

import os
import sys

from tallystick.client import _api

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO

CHOICES = ("allow", "deny", "status", "show", "forget")
HELP = "allow or deny anonymous usage statistics, show the choice and what waits to be sent, or erase what was sent"
_CHOICE_HELP = (
    "allow: opt in; deny: opt out, deleting what waits to be sent; status: show the choice; "
    "show: exactly what waits to be sent; forget: erase what this installation sent, on the server too"
)
_MEANING = {
    "allowed": "allowed: anonymous usage statistics are recorded and sent",
    "disabled": "denied: nothing is recorded or sent",
    "unset": "no choice made: nothing is recorded or sent until you allow it",
}


def apply(choice: str) -> str:
    """Carry out ``allow``, ``deny``, ``status``, ``show`` or ``forget``; lines telling the user where they stand."""
    return _apply(choice)[0]


def _show_command(client: Any) -> str:
    """How the user sees what is kept: the tool's own ``show`` when it has a consent command."""
    command = client.config.consent_command if client is not None else None
    return f"{command} show" if command else f"python -m tallystick.client show --app {client.config.app_id}"


def _apply(choice: str) -> tuple[str, int]:
    """``apply``'s lines and the exit status: 1 when a choice could not be stored."""
    if choice == "show":
        client = _api.active()
        if client is None or not client.data_dir:
            return "usage statistics: nothing kept on this machine (telemetry is not configured)", 0
        from tallystick.client.__main__ import report

        return report(client.config, client.data_dir, as_json=False), 0
    if choice == "forget":  # erase what was sent, here and on the server; the choice stays
        erased = _api.forget()
        return "usage statistics erased on this machine; the server deletes " + (
            "what was sent" if erased else "nothing"
        ), 0
    if choice == "allow":
        _api.set_consent(True)
    elif choice in {"deny", "disable"}:
        _api.set_consent(False)
    elif choice != "status":
        raise ValueError(f"unknown choice {choice!r}: use one of {', '.join(CHOICES)}")
    stored = _api.consent()
    lines = [f"usage statistics: {_MEANING.get(stored, stored)}"]
    client = _api.active()
    wanted = {"allow": "allowed", "deny": "disabled", "disable": "disabled"}.get(choice)
    if wanted is not None and stored != wanted:
        where = client.data_dir if client is not None and client.data_dir else "the data directory"
        variable = f"{client.config.env_prefix}_TELEMETRY" if client is not None else "<APP>_TELEMETRY"
        lines.append(
            f"  your choice could not be stored in {where}: make it writable (on Linux, XDG_DATA_HOME moves it), "
            f"or set {variable}={1 if wanted == 'allowed' else 0} for each run"
        )
        return "\n".join(lines), 1
    if client is not None and client.decision is not None and "TELEMETRY" in client.decision.reason:
        lines.append(f"  in this shell {client.decision.reason} decides for each run")
    elif client is not None and client.decision is not None and "DO_NOT_TRACK" in client.decision.reason:
        lines.append("  in this shell DO_NOT_TRACK keeps it off")
    if client is not None and client.data_dir:
        from tallystick.client import _queue

        state = _queue.read_state(client.data_dir)
        if state.failures and stored == "allowed":
            from tallystick.client._outcomes import cause

            lines.append(
                f"  uploads are failing: {state.outcome} ({state.failures} in a row); sessions wait on this machine "
                f"and are retried; {_show_command(client)} says more"
            )
            why = cause(state.outcome, client.config.server_url, client.config.environ)
            if why:
                lines.append(f"  why: {why}")
        lines.append(f"  see exactly what is kept to send: {_show_command(client)}")
    return "\n".join(lines), 0


def run(choice: str, out: TextIO | None = None) -> int:
    """``apply`` and print the result (to stdout by default); the exit status: 0, or 1 if a choice was not stored."""
    from tallystick.client._outcomes import write  # loaded by a telemetry command only

    text, status = _apply(choice)
    try:
        write(text, out or sys.stdout)
    except BrokenPipeError:  # `mytool telemetry show | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return status


def handle(argv: list[str], name: str = "telemetry", prog: str | None = None) -> int | None:
    """For a tool whose parser has no subcommands: run ``<name> allow|deny|...`` if ``argv`` starts with it.

    ``argv``: the arguments after the program name (``sys.argv[1:]``). Returns the exit
    status of the telemetry command, or None when ``argv`` is not one (parse as usual then).
    ``<name> --help`` prints its help; a wrong choice exits with status 2, as argparse does.
    """
    if argv[:1] != [name]:
        return None
    import argparse

    program = prog or os.path.basename(sys.argv[0] or "tool")
    parser = argparse.ArgumentParser(prog=f"{program} {name}", description=HELP)
    _add_choice(parser)
    args = parser.parse_args(argv[1:])
    return run(args.telemetry)


def _add_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("telemetry", metavar="|".join(CHOICES), choices=CHOICES, help=_CHOICE_HELP)


def add_argparse(subparsers: Any, name: str = "telemetry") -> argparse.ArgumentParser:
    """Add ``<name> allow|deny|status|show|forget`` to ``add_subparsers()``; the choice lands in ``args.telemetry``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=HELP, description=HELP)
    _add_choice(parser)
    return parser


def click_command(name: str = "telemetry") -> Any:
    """A click command ``<name> allow|deny|status|show|forget`` for ``cli.add_command(...)`` (imports click)."""
    import click

    @click.command(name=name, help=HELP)
    @click.argument("choice", type=click.Choice(CHOICES))
    def telemetry(choice: str) -> None:
        text, status = _apply(choice)
        click.echo(text)
        if status:
            click.get_current_context().exit(status)

    return telemetry
