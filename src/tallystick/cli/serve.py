"""``tallystick serve`` (ingest only) and ``tallystick up`` (ingest, loader and dashboard in one process)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tallystick.cli.common import (
    DEFAULT_PORT,
    EPILOG_COMMON,
    FMT,
    WAREHOUSE_FILE,
    CliError,
    add_data_dir,
    add_retention_argument,
    add_storage,
    add_warehouse,
    data_dir,
    parse_interval,
    port,
    program,
    retention_of,
    say,
    storage_url,
    warehouse_spec,
)
from tallystick.cli.load import load_once, summary


def _add_listen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help="port to listen on, 0 for any (default: %(default)s)"
    )
    p.add_argument("--app", action="append", metavar="NAME", help="register an application ID (repeatable)")
    p.add_argument("--config", metavar="FILE", help="server settings in TOML (flags given here take precedence)")
    add_storage(p)
    p.add_argument("--max-body-bytes", type=int, metavar="N", help="largest session accepted (default: 1 MiB)")
    p.add_argument(
        "--max-attribute-chars",
        type=int,
        metavar="N",
        help="longest string attribute value accepted (default: 262144, room for the deepest JVM stack trace)",
    )


def _server(args: argparse.Namespace, apps: Sequence[str], *, lifecycle_logs: bool = True) -> tuple[Any, Any, str]:
    from tallystick.server.app import create_app
    from tallystick.server.config import load_config
    from tallystick.server.run import bind, make_server, url_of

    config = load_config(
        args.config,
        defaults={"storage_url": storage_url(args)},
        storage_url=args.storage,
        applications=apps,
        max_body_bytes=args.max_body_bytes,
        max_attribute_chars=args.max_attribute_chars,
    )
    if not config.applications:
        raise CliError("no application registered: add --app NAME for each tool that sends sessions")
    from tallystick.storage import open_store

    store = open_store(config.storage_url)
    unreachable = _check_store(store)
    app = create_app(config, store)
    if hasattr(signal, "SIGHUP"):  # re-read the declarations in the config file (tallystick.privacy.gate)
        signal.signal(signal.SIGHUP, lambda *_: app.state.ingest.privacy.request_reload())
    sock = bind(args.host, args.port)
    server = make_server(app, sock, lifecycle_logs=lifecycle_logs)
    if unreachable:
        warning = f"{unreachable}; /readyz answers 503 until it is reachable"
        if lifecycle_logs:  # serve: a JSON line like every other on stderr, for the log collector
            logging.getLogger("tallystick.server").warning(warning)
        else:  # up: for the person at the terminal
            say(f"warning: {warning}")
    return server, sock, url_of(sock)


def _check_store(store: Any) -> str:
    """Refuse to start on a store that is set up wrongly (a missing bucket, rejected credentials): the
    fix is the operator's, and a replica that starts anyway answers every upload 503. A store that is
    only unreachable now is served anyway (readiness stays 503 until it answers): what to say, else ''."""
    from tallystick.storage import StorageMisconfigured, StorageUnavailable

    try:
        store.check()
    except StorageMisconfigured:
        store.close()
        raise
    except StorageUnavailable as exc:
        return str(exc)
    return ""


def cmd_serve(args: argparse.Namespace) -> int:
    server, sock, url = _server(args, args.app or [])
    config = server.config.app.state.ingest.config
    apps = ", ".join(sorted(config.applications))
    store = server.config.app.state.ingest.store
    print(f"ingest listening on {url} for {apps}; storage {store.url}", flush=True)  # secrets shown as ***
    try:
        server.run(sockets=[sock])
    finally:
        server.config.app.state.ingest.store.close()  # a clean stop leaves no log to replay
    return 0


def _up_banner(
    config: Any, store_url: str, url: str, warehouse: str, data: Path, *, token: str | None, every: float
) -> None:
    say(f"tallystick up: ingest on {url} (applications: {', '.join(sorted(config.applications))})")
    say(f"  dashboard: {url}/" + (" (log in with the dashboard token)" if token else ""))
    say(f"  sessions:  {store_url}")
    say(f"  warehouse: {warehouse} (loaded every {every:g}s)")
    where = f"--data-dir {shlex.quote(str(data))}"
    if warehouse != str(data / WAREHOUSE_FILE):
        where = f"--warehouse {shlex.quote(warehouse)}"
    say(
        f"  ask it:    {program()} query {where} "
        '"SELECT applicationVersion, count(*) AS n FROM sessions GROUP BY applicationVersion ORDER BY n DESC"'
    )
    say("  stop with Ctrl-C")


def cmd_up(args: argparse.Namespace) -> int:
    from tallystick import demo

    apps = set(args.app or [])
    if args.demo:
        apps.add(demo.APP)
    data = data_dir(args)
    from tallystick import dashboard

    token = args.dashboard_token or os.environ.get(dashboard.TOKEN_ENV) or None
    try:
        dashboard.check_exposure(args.host, token)
    except dashboard.TokenRequired as exc:
        raise CliError(str(exc)) from None
    # `up` is for a person at a terminal: its banner says the server is up, so uvicorn's info
    # lines (started, shutting down, finished) stay out; `serve` keeps them for log collectors.
    server, sock, url = _server(args, sorted(apps), lifecycle_logs=False)
    warehouse = warehouse_spec(args)
    server.config.app = dashboard.mount(server.config.app, warehouse, token=token)
    ingest = server.config.app.state.ingest
    _up_banner(ingest.config, ingest.store.url, url, warehouse, data, token=token, every=args.load_every)
    stop = threading.Event()
    store = server.config.app.state.ingest.store
    retention = retention_of(args)

    def loader() -> None:
        while not stop.is_set():
            try:
                with dashboard.lock_for(warehouse):  # the dashboard reads the file between cycles
                    stats = load_once(args, store, quiet=True, retention=retention)
                if stats.pending:
                    say(f"loader: {summary(stats)}")
            except Exception as exc:  # noqa: BLE001 - a failed cycle is reported and retried next cycle
                say(f"loader: this cycle failed ({exc}); retrying in {args.load_every:g}s")
            stop.wait(args.load_every)

    def send_demo() -> None:
        # Six months do not arrive at once: the history goes into storage as it would have arrived (each
        # session on its user's next run), and the last hour's arrivals through the ingest service, so the
        # overview's completeness band and the Completeness page see real-looking arrival delays.
        try:
            history, recent = demo.arrived(args.demo_sessions, seed=args.seed)
            demo.wait_for(url, 10)
            stored = demo.store_history(store, history)
            counts = demo.send(url, recent)
            say(
                f"demo: {stored:,} sessions of history stored as they would have arrived; the last hour's "
                f"{sum(counts.values()):,} sent through {url}: {demo.describe(counts)}"
            )
        except demo.SendError as exc:
            say(f"demo: {exc}")

    threads = [threading.Thread(target=loader, name="tallystick-loader", daemon=True)]
    if args.demo:
        threads.append(threading.Thread(target=send_demo, name="tallystick-demo", daemon=True))
    for t in threads:
        t.start()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        threads[0].join(timeout=30)
        store.close()  # a clean stop leaves no log to replay
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="run ingest, loader and dashboard in one process on embedded defaults",
        formatter_class=FMT,
        description="Run the whole pipeline in one process: the ingest service, a loader that moves new "
        "sessions into the warehouse (DuckDB by default, or ClickHouse) every --load-every, and the dashboard.",
        epilog="example:\n  tallystick up --demo                 # with demo sessions of the app 'demo'\n"
        "  tallystick up --app mytool --port 9000\n"
        "  tallystick up --app mytool --warehouse clickhouse://127.0.0.1:8123/tallystick\n\n" + EPILOG_COMMON,
    )
    add_data_dir(p)
    _add_listen(p)
    p.add_argument(
        "--load-every",
        type=parse_interval,
        default=10.0,
        metavar="INTERVAL",
        help="how often the loader runs, e.g. 10s, 5m, 1h (default: 10s)",
    )
    p.add_argument("--demo", action="store_true", help="register 'demo' and send it demo sessions over HTTP")
    p.add_argument("--demo-sessions", type=int, default=5000, metavar="N", help="how many (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="seed of the demo data (default: %(default)s)")
    add_warehouse(p)
    p.add_argument(
        "--dashboard-token",
        metavar="TOKEN",
        help="token for the dashboard, required when --host is not loopback (default: $TALLYSTICK_DASHBOARD_TOKEN)",
    )
    add_retention_argument(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "serve",
        help="run the ingest service only",
        formatter_class=FMT,
        description="Run the ingest service: PUT /v1/sessions, POST /v1/batches, POST /v1/erasures, GET /ping "
        "for clients; GET /metrics (Prometheus), /readyz (200 while storage can be written), /healthz for "
        "monitoring and the load balancer, on the private network (docs/ingest.md shows an nginx front). "
        "JSON log lines on stderr.",
        epilog="example:\n  tallystick serve --app mytool --port 8780\n"
        "  tallystick serve --config server.toml --host 0.0.0.0 --storage s3://acme-telemetry/sessions\n\n"
        + EPILOG_COMMON,
    )
    add_data_dir(p)
    _add_listen(p)
    p.set_defaults(func=cmd_serve)
