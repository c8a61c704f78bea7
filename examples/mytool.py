#!/usr/bin/env python3
"""mytool: a tiny command-line tool instrumented with Tallystick's client.

    python examples/mytool.py hello Ada            # prints a greeting
    python examples/mytool.py hello Ada --json     # machine-readable output
    python examples/mytool.py fail                 # a handled error: message, exit status 2
    python examples/mytool.py crash                # an unhandled exception
    python examples/mytool.py wait                 # sleeps, to be stopped by a signal
    python examples/mytool.py telemetry allow|deny|status|show|forget

The telemetry lines are marked ``# telemetry``. The tests run this file as a real
subprocess; ``MYTOOL_TELEMETRY_URL`` points it at a test server (a self-hosting
user could use it too), ``MYTOOL_TELEMETRY_EXIT_TIMEOUT`` makes the exit wait for
the upload process, ``MYTOOL_TELEMETRY_UPLOAD_INTERVAL`` shortens the pause after
a successful upload, and ``MYTOOL_TELEMETRY_SIGTERM=1`` opts in to queueing the
session on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import tallystick.client as telemetry  # telemetry
from tallystick.client import commands as telemetry_commands  # telemetry

__version__ = "1.4.0"


@telemetry.span("LoadConfig")  # telemetry
def load_config() -> dict[str, str]:
    return {"greeting": os.environ.get("MYTOOL_GREETING", "Hello")}


def main(argv: list[str] | None = None) -> int:
    config = telemetry.Config(  # telemetry
        app_id="mytool",
        version=__version__,
        server_url=os.environ.get("MYTOOL_TELEMETRY_URL", "https://telemetry.example.org"),
        consent_command="mytool telemetry",  # the first-run notice names `mytool telemetry allow`
    )
    if "MYTOOL_TELEMETRY_EXIT_TIMEOUT" in os.environ:  # for the tests: wait for the upload at exit
        config.exit_timeout = config.ci_exit_timeout = float(os.environ["MYTOOL_TELEMETRY_EXIT_TIMEOUT"])
    if "MYTOOL_TELEMETRY_UPLOAD_INTERVAL" in os.environ:  # for the tests: upload at every run
        config.upload_interval = float(os.environ["MYTOOL_TELEMETRY_UPLOAD_INTERVAL"])
    # Opt in to keeping the session of a SIGTERM'd run; costs a late death if SIGTERM lands in long C code.
    config.handle_sigterm = os.environ.get("MYTOOL_TELEMETRY_SIGTERM") == "1"
    telemetry.configure(config)  # telemetry
    parser = argparse.ArgumentParser(prog="mytool")
    commands = parser.add_subparsers(dest="command", required=True)
    hello = commands.add_parser("hello", help="greet someone")
    hello.add_argument("name")
    hello.add_argument("--json", action="store_true")
    commands.add_parser("fail", help="fail the way tools do: a message and exit status 2")
    commands.add_parser("crash", help="raise an unhandled exception")
    commands.add_parser("wait", help="print 'waiting' and sleep until stopped (at most 30 s)")
    telemetry_commands.add_argparse(commands)  # telemetry: `mytool telemetry allow|deny|status|show|forget`
    args = parser.parse_args(argv)
    telemetry.set_attributes(command=args.command)  # telemetry

    config = load_config()
    if args.command == "hello":
        with telemetry.span("Greet"):  # telemetry
            message = f"{config['greeting']}, {args.name}!"
        if args.json:
            print(json.dumps({"message": message}))
        else:
            print(message)
        if time.time() > 0:  # a real tool would compare with the latest release
            telemetry.event("UpdateNudgeShown", latestVersion="2.1")  # telemetry
        return 0
    if args.command == "fail":
        try:
            raise FileNotFoundError(2, "No such file or directory", os.path.expanduser("~/.mytool/config.toml"))
        except FileNotFoundError as error:
            telemetry.record_exception(error)  # telemetry: type and frames only, never the message
            print(f"mytool: cannot read the configuration: {error.filename}", file=sys.stderr)
            return 2
    if args.command == "crash":
        raise RuntimeError("something went badly wrong")
    if args.command == "wait":
        print("waiting", flush=True)
        time.sleep(30)
        return 0
    return telemetry_commands.run(args.telemetry)  # telemetry: allow, deny, status or forget


if __name__ == "__main__":
    sys.exit(main())
