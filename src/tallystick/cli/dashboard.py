"""``tallystick dashboard``: the dashboard alone, over any warehouse (ingest and loader run elsewhere)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from tallystick.cli.common import (
    DEFAULT_PORT,
    EPILOG_COMMON,
    FMT,
    CliError,
    add_data_dir,
    add_warehouse,
    port,
    say,
    warehouse_spec,
)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from tallystick import dashboard
    from tallystick.server.run import bind, make_server, url_of

    token = args.dashboard_token or os.environ.get(dashboard.TOKEN_ENV) or None
    try:
        dashboard.check_exposure(args.host, token)
    except dashboard.TokenRequired as exc:
        raise CliError(str(exc)) from None
    spec = warehouse_spec(args)
    sock = bind(args.host, args.port)
    server = make_server(dashboard.create_dashboard(spec, token=token), sock, lifecycle_logs=False)
    say(f"tallystick dashboard on {url_of(sock)}/ over {spec}" + (" (log in with the token)" if token else ""))
    say("  stop with Ctrl-C")
    server.run(sockets=[sock])
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the dashboard alone, over a warehouse another process loads",
        formatter_class=FMT,
        description="Serve the web dashboard (overview, explore, analyses, SQL) over a warehouse, read-only and "
        "sandboxed, without ingest or loader: for a deployment where ingest replicas and a scheduled "
        "`tallystick load` fill the warehouse elsewhere (`tallystick up` runs all three in one process).",
        epilog="examples:\n  tallystick dashboard --warehouse clickhouse://ch.internal:8123/tallystick\n"
        f"  tallystick dashboard --data-dir /srv/tallystick --port {DEFAULT_PORT + 1}\n\n" + EPILOG_COMMON,
    )
    add_data_dir(p)
    add_warehouse(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help="port to listen on, 0 for any (default: %(default)s)"
    )
    p.add_argument(
        "--dashboard-token",
        metavar="TOKEN",
        help="token for the dashboard, required when --host is not loopback (default: $TALLYSTICK_DASHBOARD_TOKEN)",
    )
    p.set_defaults(func=cmd_dashboard)
