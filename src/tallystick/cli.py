"""``tallystick``: one command for the whole pipeline.

Every command works on embedded defaults: sessions in ``<data-dir>/sessions``, the
warehouse in ``<data-dir>/warehouse.duckdb``, with ``<data-dir>`` from
``--data-dir``, ``$TALLYSTICK_DATA_DIR`` or ``~/.local/share/tallystick``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tallystick.privacy.cli import add_privacy_parsers, add_retention_argument, retention_of

DEFAULT_PORT = 8780
EPILOG_COMMON = "Data directory: --data-dir, else $TALLYSTICK_DATA_DIR, else ~/.local/share/tallystick."


class CliError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def default_data_dir() -> Path:
    return Path(os.environ.get("TALLYSTICK_DATA_DIR") or Path.home() / ".local" / "share" / "tallystick")


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


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- paths -------------------------------------------------------------------------------------


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()


def _storage_url(args: argparse.Namespace) -> str:
    return str(getattr(args, "storage", None) or (_data_dir(args) / "sessions"))


def _warehouse_spec(args: argparse.Namespace) -> str:
    return str(getattr(args, "warehouse", None) or _data_dir(args) / "warehouse.duckdb")


def _open_warehouse(args: argparse.Namespace, read_only: bool = False) -> Any:
    from tallystick.warehouse import open_warehouse

    return open_warehouse(_warehouse_spec(args), read_only=read_only)


def _open_store(args: argparse.Namespace) -> Any:
    from tallystick.storage import open_store

    return open_store(_storage_url(args))


# --- serve / up ----------------------------------------------------------------------------------


def _server(args: argparse.Namespace, apps: Sequence[str], *, lifecycle_logs: bool = True) -> tuple[Any, Any, str]:
    from tallystick.server.app import create_app
    from tallystick.server.config import load_config
    from tallystick.server.run import bind, make_server, url_of

    config = load_config(
        args.config,
        defaults={"storage_url": _storage_url(args)},
        storage_url=args.storage,
        applications=apps,
        max_body_bytes=args.max_body_bytes,
    )
    if not config.applications:
        raise CliError("no application registered: add --app NAME for each tool that sends sessions")
    from tallystick.storage import open_store

    store = open_store(config.storage_url)
    app = create_app(config, store)
    if hasattr(signal, "SIGHUP"):  # re-read the declarations in the config file (tallystick.privacy.gate)
        signal.signal(signal.SIGHUP, lambda *_: app.state.ingest.privacy.request_reload())
    sock = bind(args.host, args.port)
    return make_server(app, sock, lifecycle_logs=lifecycle_logs), sock, url_of(sock)


def cmd_serve(args: argparse.Namespace) -> int:
    server, sock, url = _server(args, args.app or [])
    config = server.config.app.state.ingest.config
    apps = ", ".join(sorted(config.applications))
    print(f"ingest listening on {url} for {apps}; storage {config.storage_url}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        server.config.app.state.ingest.store.close()  # a clean stop leaves no log to replay
    return 0


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


def _load_once(args: argparse.Namespace, store: Any, quiet: bool = False, retention: Any = None) -> Any:
    from tallystick.warehouse.loader import Loader

    warehouse = _open_warehouse(args)
    try:
        progress = None if quiet or not sys.stderr.isatty() else _progress_printer(sys.stderr)
        options = {k: v for k in ("batch_size", "workers") if (v := getattr(args, k, None)) is not None}
        stats = Loader(store, warehouse, progress=progress, **options).run()
        # Derived tables for the analyses, a step of its own after the load (rollup.py: why a
        # crash between the two is harmless: analyses read `sessions` while the rollup is stale).
        from tallystick.warehouse import rollup

        rollup.refresh(warehouse)
        if retention is not None and (swept := retention.run_if_due(store, warehouse)) and swept.sessions:
            _say(f"retention: {swept}")
    finally:
        warehouse.close()
    if not quiet and sys.stderr.isatty() and stats.pending:
        sys.stderr.write("\n")
    return stats


def _summary(stats: Any) -> str:
    text = f"{stats.loaded:,} sessions loaded"
    if stats.duplicates:
        text += f", {stats.duplicates:,} duplicates skipped"
    if stats.rejected:
        text += f", {stats.rejected:,} objects rejected (see the _tallystick_loaded table)"
    return text + f" in {stats.seconds:.1f}s"


def cmd_load(args: argparse.Namespace) -> int:
    store = _open_store(args)
    retention = retention_of(args)
    while True:
        stats = _load_once(args, store, retention=retention)
        _say(f"{time.strftime('%H:%M:%S')} {_summary(stats)} into {_warehouse_spec(args)}")
        if not args.every:
            return 0
        time.sleep(args.every)


def _up_banner(config: Any, url: str, warehouse: str, data_dir: Path, *, token: str | None, every: float) -> None:
    _say(f"tallystick up: ingest on {url} (applications: {', '.join(sorted(config.applications))})")
    _say(f"  dashboard: {url}/" + (" (log in with the dashboard token)" if token else ""))
    _say(f"  sessions:  {config.storage_url}")
    _say(f"  warehouse: {warehouse} (loaded every {every:g}s)")
    _say(
        f'  ask it:    tallystick query --data-dir {data_dir} "SELECT applicationVersion, count(*) FROM sessions '
        'GROUP BY 1 ORDER BY 2 DESC"'
    )
    _say("  stop with Ctrl-C")


def cmd_up(args: argparse.Namespace) -> int:
    from tallystick import demo

    apps = set(args.app or [])
    if args.demo:
        apps.add(demo.APP)
    data_dir = _data_dir(args)
    from tallystick import dashboard

    token = args.dashboard_token or os.environ.get(dashboard.TOKEN_ENV) or None
    try:
        dashboard.check_exposure(args.host, token)
    except dashboard.TokenRequired as exc:
        raise CliError(str(exc)) from None
    # `up` is for a person at a terminal: its banner says the server is up, so uvicorn's info
    # lines (started, shutting down, finished) stay out; `serve` keeps them for log collectors.
    server, sock, url = _server(args, sorted(apps), lifecycle_logs=False)
    warehouse = _warehouse_spec(args)
    server.config.app = dashboard.mount(server.config.app, warehouse, token=token)
    _up_banner(server.config.app.state.ingest.config, url, warehouse, data_dir, token=token, every=args.load_every)
    stop = threading.Event()
    store = server.config.app.state.ingest.store
    retention = retention_of(args)

    def loader() -> None:
        while not stop.is_set():
            try:
                with dashboard.lock_for(warehouse):  # the dashboard reads the file between cycles
                    stats = _load_once(args, store, quiet=True, retention=retention)
                if stats.pending:
                    _say(f"loader: {_summary(stats)}")
            except Exception as exc:  # noqa: BLE001 - a failed cycle is reported and retried next cycle
                _say(f"loader: this cycle failed ({exc}); retrying in {args.load_every:g}s")
            stop.wait(args.load_every)

    def send_demo() -> None:
        try:
            counts = demo.send(url, demo.generate(args.demo_sessions, seed=args.seed), wait_seconds=10)
            _say(f"demo: sent {sum(counts.values()):,} sessions through {url}: {demo.describe(counts)}")
        except demo.SendError as exc:
            _say(f"demo: {exc}")

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


# --- query / demo --------------------------------------------------------------------------------


def _format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_table(columns: list[str], rows: list[tuple[Any, ...]], out: Any) -> None:
    cells = [[_format_value(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def cmd_query(args: argparse.Namespace) -> int:
    warehouse = _open_warehouse(args, read_only=True)
    try:
        result = warehouse.query(args.sql)
    finally:
        warehouse.close()
    if args.format == "csv":
        from tallystick._csv import safe_row

        writer = csv.writer(sys.stdout)
        writer.writerow(safe_row(result.columns))
        writer.writerows(safe_row(row) for row in result.rows)
    elif args.format == "json":
        for row in result.rows:
            print(json.dumps(dict(zip(result.columns, row, strict=True)), default=str))
    else:
        print_table(result.columns, result.rows, sys.stdout)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tallystick import demo

    try:
        counts = demo.send(args.url, demo.generate(args.sessions, seed=args.seed, days=args.days), wait_seconds=5)
    except demo.SendError as exc:
        raise CliError(str(exc)) from None
    print(f"sent {sum(counts.values()):,} sessions to {args.url}: {demo.describe(counts)}")
    return 0


# --- parser ----------------------------------------------------------------------------------------


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help="where sessions and the warehouse live (see below)")


def _add_listen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on, 0 for any (default: %(default)s)")
    p.add_argument("--app", action="append", metavar="NAME", help="register an application ID (repeatable)")
    p.add_argument("--config", metavar="FILE", help="server settings in TOML (flags given here take precedence)")
    p.add_argument("--storage", metavar="URL", help="object storage URL (default: file://<data-dir>/sessions)")
    p.add_argument("--max-body-bytes", type=int, metavar="N", help="largest session accepted (default: 1 MiB)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tallystick",
        description="Self-hosted, privacy-first usage telemetry for command-line tools.",
        epilog="Start with: tallystick up --demo   then, in another terminal:   tallystick query "
        '"SELECT applicationVersion, count(*) FROM sessions GROUP BY 1"',
    )
    from tallystick import __version__

    parser.add_argument("--version", action="version", version=f"tallystick {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "up",
        help="run ingest and loader in one process on embedded defaults",
        formatter_class=fmt,
        description="Run the whole pipeline in one process: the ingest service, and a loader that moves new "
        "sessions into the DuckDB warehouse every --load-every.",
        epilog="example:\n  tallystick up --demo                 # with demo sessions of the app 'demo'\n"
        "  tallystick up --app mytool --port 9000\n\n" + EPILOG_COMMON,
    )
    _add_data_dir(p)
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
    p.add_argument("--warehouse", metavar="FILE", help="DuckDB file (default: <data-dir>/warehouse.duckdb)")
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
        formatter_class=fmt,
        description="Run the ingest service: PUT /v1/sessions, POST /v1/batches, GET /ping.",
        epilog="example:\n  tallystick serve --app mytool --port 8780\n\n" + EPILOG_COMMON,
    )
    _add_data_dir(p)
    _add_listen(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "load",
        help="move new sessions from storage into the warehouse",
        formatter_class=fmt,
        description="Load every session not yet in the warehouse. Safe to interrupt and to re-run: "
        "nothing is loaded twice.",
        epilog="example:\n  tallystick load\n  tallystick load --every 1h     # keep running, once an hour\n\n"
        + EPILOG_COMMON,
    )
    _add_data_dir(p)
    p.add_argument("--storage", metavar="URL", help="object storage URL (default: file://<data-dir>/sessions)")
    p.add_argument(
        "--warehouse",
        metavar="SPEC",
        help="DuckDB file (default: <data-dir>/warehouse.duckdb), clickhouse://host:8123/database or chdb:///dir",
    )
    p.add_argument("--every", type=parse_interval, metavar="INTERVAL", help="repeat on a schedule, e.g. 1h")
    p.add_argument("--batch-size", type=int, metavar="N", help="sessions per warehouse write (default: 20000)")
    p.add_argument("--workers", type=int, metavar="N", help="reader processes (default: one per CPU; 0: none)")
    add_retention_argument(p)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser(
        "query",
        help="run SQL against the warehouse",
        formatter_class=fmt,
        description="Run one SQL statement against the warehouse (read-only). Tables: sessions, events, spans; "
        "columns are named as in the session JSON (sessionId, applicationVersion, attributes, ...).",
        epilog="examples:\n"
        '  tallystick query "SELECT applicationVersion, count(*) FROM sessions GROUP BY 1 ORDER BY 2 DESC"\n'
        "  tallystick query \"SELECT attributes->>'shell' AS shell, count(DISTINCT userId) FROM sessions "
        'GROUP BY 1"\n'
        '  tallystick query --format csv "SELECT * FROM events" > events.csv\n\n' + EPILOG_COMMON,
    )
    _add_data_dir(p)
    p.add_argument("sql", help="the SQL statement")
    p.add_argument("--warehouse", metavar="FILE", help="DuckDB file (default: <data-dir>/warehouse.duckdb)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "demo",
        help="send demo sessions to a running ingest service",
        formatter_class=fmt,
        description="Generate realistic sessions of the fictional tool 'demo' and send them over HTTP.",
        epilog=f"example:\n  tallystick demo --url http://127.0.0.1:{DEFAULT_PORT} --sessions 10000",
    )
    p.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="ingest service (default: %(default)s)")
    p.add_argument("--sessions", type=int, default=2000, metavar="N", help="how many (default: %(default)s)")
    p.add_argument("--days", type=int, default=120, help="period the sessions span (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="seed (default: %(default)s)")
    p.set_defaults(func=cmd_demo)

    from tallystick.analysis.cli import add_report_parser

    add_report_parser(sub)
    add_privacy_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        _say(f"tallystick: error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
