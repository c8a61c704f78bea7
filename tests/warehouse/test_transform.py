"""The SQL that flattens stored sessions gives exactly the rows the Python mapping gives."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import msgspec

from tallystick import demo
from tallystick.schema import Session
from tallystick.warehouse.tables import tables
from tallystick.warehouse.transform import read_sql, select_sql
from warehouse.rows import rows_of


def test_sql_flattening_matches_rows_of(tmp_path: Path) -> None:
    """Every column of sessions, events and spans agrees with rows.rows_of, attributes as JSON values."""
    sessions = [msgspec.convert(v, Session) for v in demo.generate(60, seed=21)]
    source = tmp_path / "sessions.ndjson"
    source.write_bytes(b"".join(msgspec.json.encode(s) + b"\n" for s in sessions))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE TABLE raw AS SELECT * FROM {read_sql(source)}")
    expected: dict[str, list[tuple[object, ...]]] = {t.name: [] for t in tables()}
    for s in sessions:
        for name, rows in rows_of(s).items():
            expected[name] += [tuple(r.values()) for r in rows]
    for t in tables():
        got = con.execute(select_sql(t, "raw")).fetchall()
        attributes = t.names.index("attributes")

        def normal(row: tuple[object, ...], i: int = attributes) -> tuple[object, ...]:
            # JSON text vs dict; and durations in ms from microseconds, equal to the last float bit or so.
            value = row[i] if isinstance(row[i], dict) else json.loads(str(row[i]))
            out = [*row[:i], json.dumps(value, sort_keys=True), *row[i + 1 :]]
            return tuple(round(v, 6) if isinstance(v, float) else v for v in out)

        assert sorted(map(normal, got), key=repr) == sorted(map(normal, expected[t.name]), key=repr), t.name
