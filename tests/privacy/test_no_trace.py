"""After ``delete-user``, the user ID is nowhere: no table, derived table, log or other file written by Tallystick.

A real ``tallystick serve`` (its write-ahead log included) takes the sessions over HTTP,
``tallystick load`` builds every table (the derived ones on DuckDB too), and then every
row of every table of the warehouse and every byte of every file in the storage directory
is searched for the user ID (gzip objects decompressed), on DuckDB, the ClickHouse server
and chDB, and on DuckDB every byte of its file too (on ClickHouse the server drops a
table's old parts itself, ``old_parts_lifetime`` after a deletion), and there the text of every
mutation the deletion ran, which the server keeps: deletions name sessions, never the user.
The tombstones are scanned too: one exists (to refuse the user's old sessions if they are
uploaded again), but it holds a one-way digest of the ID, never the ID.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.scan import readable
from privacy.conftest import Server
from sessions import session
from tallystick.cli import main
from tallystick.privacy.tombstones import PREFIX as TOMBSTONES
from tallystick.warehouse import Warehouse, open_warehouse

USER = "9e2d4c6a-8b1f-4d3e-a5c7-0f1e2d3c4b5a"
OTHER = "1f3e5d7c-9a2b-4c4d-86e8-1a2b3c4d5e6f"


def _tables(warehouse: Warehouse) -> list[str]:
    if warehouse.dialect == "duckdb":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
    else:
        sql = "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View%'"
    return sorted(str(r[0]) for r in warehouse.query(sql).rows)


def _rows_naming(warehouse: Warehouse, needle: str) -> dict[str, int]:
    """Per table, how many rows hold ``needle`` in any column (as text)."""
    found = {}
    for table in _tables(warehouse):
        rows = warehouse.query(f'SELECT * FROM "{table}"').rows
        if hits := sum(1 for row in rows if needle in repr(row)):
            found[table] = hits
    return found


def _files_naming(root: Path, needle: bytes) -> list[str]:
    """Files below ``root`` whose name or bytes hold ``needle``, as written or gzip-decompressed."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if needle.decode() in path.relative_to(root).as_posix():
            found.append(path.relative_to(root).as_posix())
            continue
        if needle in readable(path):
            found.append(path.relative_to(root).as_posix())
    return found


def test_delete_user_leaves_no_trace(
    privacy_server: Callable[..., Server], warehouse_spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sessions of a user, sent to a running server and loaded, are gone from every table and file after delete-user."""
    server = privacy_server('applications = ["demo"]\n')
    mine = [
        session(userId=USER, sessionStartTime=f"2026-05-0{d}T10:00:00Z", sessionEndTime=f"2026-05-0{d}T10:00:01Z")
        for d in range(1, 6)
        for _ in range(3)
    ]
    theirs = [session(userId=OTHER) for _ in range(5)]
    for s in mine[:-1] + theirs:
        assert server.put(s)[0] == 201
    storage = Path(server.storage)
    common = ["--storage", server.storage, "--warehouse", warehouse_spec, "--data-dir", str(tmp_path)]
    # In this process: chDB's embedded server belongs to one process at a time.
    assert main(["load", "--retention-days", "off", *common]) == 0
    assert server.put(mine[-1])[0] == 201  # stored, not loaded yet
    warehouse = open_warehouse(warehouse_spec)
    try:
        before = _rows_naming(warehouse, USER)
        assert before.get("sessions") == len(mine) - 1, before  # the scan finds what it should
        if warehouse.dialect == "duckdb":
            assert before.get("sessions_typed") == len(mine) - 1, before
    finally:
        warehouse.close()
    assert _files_naming(storage, USER.encode()), "the scan should find the user's objects before the deletion"

    capsys.readouterr()
    assert main(["delete-user", USER, *common]) == 0
    assert f"{len(mine):,} sessions from the warehouse" in capsys.readouterr().out

    warehouse = open_warehouse(warehouse_spec)
    try:
        assert _rows_naming(warehouse, USER) == {}
        assert _rows_naming(warehouse, OTHER).get("sessions") == len(theirs)
        if warehouse.dialect != "duckdb":  # a mutation's text stays (system.mutations, mutation_N.txt)
            sql = "SELECT command FROM system.mutations WHERE database = currentDatabase()"
            commands = [str(r[0]) for r in warehouse.query(sql).rows]
            assert commands and [c for c in commands if USER in c] == []
    finally:
        warehouse.close()
    assert _files_naming(storage, USER.encode()) == []
    if not warehouse_spec.startswith(("clickhouse", "chdb")):  # the DuckDB file and its log, byte for byte
        database = Path(warehouse_spec)
        assert [p.name for p in database.parent.glob(database.name + "*") if USER.encode() in p.read_bytes()] == []
    server.stop()  # a clean stop checkpoints the log: nothing of the user may come back from it either
    assert _files_naming(storage, USER.encode()) == []
    assert [i.name for i in storage.rglob("*") if TOMBSTONES.rstrip("/") in i.as_posix() and i.is_file()]
