"""``tallystick query``: one SQL query against the warehouse, inside the SQL sandbox, as a table, CSV or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tallystick.cli.common import (
    EPILOG_COMMON,
    FMT,
    add_data_dir,
    add_warehouse,
    parse_interval,
    print_table,
    warehouse_spec,
)


def cmd_query(args: argparse.Namespace) -> int:
    from tallystick.warehouse import Limits, open_warehouse

    limits = Limits(timeout_seconds=args.timeout, max_rows=args.max_rows)
    warehouse = open_warehouse(warehouse_spec(args), sandbox=limits)
    try:
        result = warehouse.query(args.sql)
    finally:
        warehouse.close()
    if args.format == "csv":
        from tallystick._csv import safe_row, writer
        from tallystick._terminal import is_terminal, safe_value

        shown = safe_value if is_terminal(sys.stdout) else (lambda v: v)  # a file gets the data as stored
        out = writer(sys.stdout)
        out.writerow(safe_row(shown(c) for c in result.columns))
        out.writerows(safe_row(shown(v) for v in row) for row in result.rows)
    elif args.format == "json":
        for row in result.rows:
            print(json.dumps(dict(zip(result.columns, row, strict=True)), default=str))
    else:
        print_table(result.columns, result.rows, sys.stdout)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "query",
        help="run SQL against the warehouse",
        formatter_class=FMT,
        description="Run one SQL query against the warehouse. Tables: sessions, events, spans; "
        "columns are named as in the session JSON (sessionId, applicationVersion, attributes, ...).\n\n"
        "The query runs in the same sandbox as the dashboard's SQL page, on every warehouse: one statement, "
        "and it must be a query (SELECT, WITH, FROM, DESCRIBE ...); no file or network access; no writes; "
        "a time limit and a row limit. For anything else use the engine's own shell: "
        "duckdb FILE (stop `tallystick up` first) or clickhouse-client.",
        epilog="examples:\n"
        '  tallystick query "SELECT applicationVersion, count(*) AS n FROM sessions '
        'GROUP BY applicationVersion ORDER BY n DESC"\n'
        "  tallystick query \"SELECT attributes->>'shell' AS shell, count(DISTINCT userId) FROM sessions "
        'GROUP BY 1"\n'
        '  tallystick query --format csv "SELECT * FROM events" > events.csv\n\n' + EPILOG_COMMON,
    )
    add_data_dir(p)
    p.add_argument("sql", help="the SQL statement")
    add_warehouse(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument(
        "--timeout",
        type=parse_interval,
        default=10.0,
        metavar="TIME",
        help="stop the query after this long, e.g. 30s or 5m (default: 10s; a running loader waits up to 10s "
        "for a DuckDB warehouse, so a longer query can make its cycle fail and retry)",
    )
    p.add_argument(
        "--max-rows",
        type=int,
        default=1_000_000,
        metavar="N",
        help="refuse an answer of more rows than this (default: %(default)s)",
    )
    p.set_defaults(func=cmd_query)
