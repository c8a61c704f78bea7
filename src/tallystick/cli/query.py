"""``tallystick query``: one SQL statement against the warehouse, as a table, CSV or JSON lines."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from tallystick.cli.common import (
    EPILOG_COMMON,
    FMT,
    WAREHOUSE_FILE,
    add_data_dir,
    add_warehouse,
    open_warehouse,
    print_table,
)


def cmd_query(args: argparse.Namespace) -> int:
    warehouse = open_warehouse(args, read_only=True)
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


def register(sub: Any) -> None:
    p = sub.add_parser(
        "query",
        help="run SQL against the warehouse",
        formatter_class=FMT,
        description="Run one SQL statement against the warehouse (read-only). Tables: sessions, events, spans; "
        "columns are named as in the session JSON (sessionId, applicationVersion, attributes, ...).",
        epilog="examples:\n"
        '  tallystick query "SELECT applicationVersion, count(*) FROM sessions GROUP BY 1 ORDER BY 2 DESC"\n'
        "  tallystick query \"SELECT attributes->>'shell' AS shell, count(DISTINCT userId) FROM sessions "
        'GROUP BY 1"\n'
        '  tallystick query --format csv "SELECT * FROM events" > events.csv\n\n' + EPILOG_COMMON,
    )
    add_data_dir(p)
    p.add_argument("sql", help="the SQL statement")
    add_warehouse(p, f"DuckDB file (default: <data-dir>/{WAREHOUSE_FILE})", metavar="FILE")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.set_defaults(func=cmd_query)
