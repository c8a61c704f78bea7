"""Sessions (one JSON object a line, as stored) → table rows, in SQL that DuckDB runs.

The loader's workers only read, decompress and validate objects; the validated
JSON lines go to DuckDB, whose C++ reader parses them in parallel and whose SQL
flattens them into ``sessions``, ``events`` and ``spans``: times converted to UTC,
``durationMs`` derived, missing attributes as ``{}``. The SQL is generated from
the table shapes (which come from the msgspec Structs), so a new field needs no
change here. ``tests/warehouse/rows.py`` is the same mapping in Python; a test keeps the two
in agreement. The ClickHouse warehouse uses the same SQL in an in-memory DuckDB
to produce its insert files, so both engines get identical rows.
"""

from __future__ import annotations

from pathlib import Path

from tallystick.warehouse.tables import PARENT_COLUMNS, Column, Table, tables

DUCKDB_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "attributes": "JSON", "float": "DOUBLE"}
_READ_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMPTZ", "attributes": "JSON", "float": "DOUBLE"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_columns() -> str:
    """The ``columns=`` struct of ``read_ndjson`` for one stored session a line."""
    sessions, *children = tables()
    fields = [f"{_quote(c.name)}: '{_READ_TYPES[c.kind]}'" for c in sessions.columns if c.name != "durationMs"]
    for child in children:
        own = [c for c in child.columns if c.name not in (*PARENT_COLUMNS, "sessionStartTime", "durationMs")]
        struct = ", ".join(f"{_quote(c.name)} {_READ_TYPES[c.kind]}" for c in own)
        fields.append(f"{_quote(child.name)}: 'STRUCT({struct})[]'")
    return "{" + ", ".join(fields) + "}"


def read_sql(path: Path | str) -> str:
    """A table expression reading an NDJSON file of sessions (``path`` must be ours, not user input)."""
    text = str(path).replace("'", "''")
    return f"read_ndjson('{text}', columns={_read_columns()}, format='newline_delimited', maximum_object_size=16777216)"


def _utc(expr: str) -> str:
    return f"CAST(timezone('UTC', {expr}) AS TIMESTAMP)"


def _duration(start: str, end: str) -> str:
    return f"(epoch_us({end}) - epoch_us({start})) / 1000.0"


def _expr(column: Column, source: str) -> str:
    ref = f"{source}.{_quote(column.name)}"
    if column.kind == "timestamp":
        return _utc(ref)
    if column.kind == "attributes":
        return f"COALESCE({ref}, CAST('{{}}' AS JSON))"
    return ref


def select_sql(table: Table, raw: str) -> str:
    """SELECT producing ``table``'s rows (in column order) from the raw sessions relation ``raw``."""
    if table.source_field is None:
        exprs = []
        for c in table.columns:
            if c.name == "durationMs":
                exprs.append(_duration(f"s.{_quote('sessionStartTime')}", f"s.{_quote('sessionEndTime')}"))
            else:
                exprs.append(_expr(c, "s"))
        return f"SELECT {', '.join(exprs)} FROM {raw} s"
    parent = {*PARENT_COLUMNS, "sessionStartTime"}
    exprs = []
    for c in table.columns:
        if c.name in parent:
            exprs.append(_expr(c, "s"))
        elif c.name == "durationMs":
            exprs.append(_duration(f"i.{_quote('startTime')}", f"i.{_quote('endTime')}"))
        else:
            exprs.append(_expr(c, "i"))
    items = f"(SELECT s.*, unnest(s.{_quote(table.name)}) AS i FROM {raw} s) s"
    return f"SELECT {', '.join(exprs)} FROM {items}"


# DuckDB's COPY options for ClickHouse's CSV input (it parses CSV several times faster than JSON; \N is its NULL).
CLICKHOUSE_CSV = "FORMAT CSV, HEADER false, NULLSTR '\\N'"


def clickhouse_values_sql(table: Table, relation: str) -> str:
    """SELECT of ``table``'s columns from ``relation`` (which has them, typed as in DuckDB) encoded as
    the ClickHouse warehouse stores them: times in whole seconds (ClickHouse 18.16's DateTime),
    attributes as JSON text. Copied with ``CLICKHOUSE_CSV``."""
    outer = []
    for c in table.columns:
        ref = _quote(c.name)
        if c.kind == "timestamp":
            outer.append(f"strftime({ref}, '%Y-%m-%d %H:%M:%S') AS {ref}")
        elif c.kind == "attributes":
            outer.append(f"CAST({ref} AS VARCHAR) AS {ref}")
        else:
            outer.append(ref)
    return f"SELECT {', '.join(outer)} FROM {relation}"


def clickhouse_select_sql(table: Table, raw: str) -> str:
    """Like ``select_sql`` but with values as ClickHouse's insert expects them (``clickhouse_values_sql``)."""
    names = ", ".join(_quote(c.name) for c in table.columns)
    return clickhouse_values_sql(table, f"({select_sql(table, raw)}) AS t({names})")
