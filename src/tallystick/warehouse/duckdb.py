"""DuckDB, the embedded default warehouse: one file, no server.

Only one process may open a DuckDB file for writing, and while it does no other
process can open it at all. So the loader opens the file for each load and closes
it after, and readers (``tallystick query``) open it read-only, retrying for a
few seconds if a load holds it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from tallystick.warehouse.base import LoadedObject, QueryError, QueryResult, Warehouse, WarehouseUnavailable
from tallystick.warehouse.tables import Table, tables

_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "attributes": "JSON", "float": "DOUBLE"}
LOADED_TABLE = "_tallystick_loaded"
_encoder = msgspec.json.Encoder()


def ddl(table: Table) -> str:
    columns = ", ".join(f'"{c.name}" {_TYPES[c.kind]}{"" if c.nullable else " NOT NULL"}' for c in table.columns)
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({columns})'


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


class DuckDBWarehouse(Warehouse):
    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False, wait_seconds: float = 10.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise WarehouseUnavailable(f"no warehouse at {self.path}: run `tallystick load` (or `tallystick up`) first")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WarehouseUnavailable(f"cannot create {self.path.parent}: {exc.strerror}") from None
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                self.con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if _is_lock_error(exc) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise WarehouseUnavailable(f"cannot open the warehouse {self.path}: {exc}") from None
        self.con.execute("SET TimeZone = 'UTC'")

    def ensure_schema(self) -> None:
        for t in tables():
            self.con.execute(ddl(t))
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {LOADED_TABLE} (key VARCHAR NOT NULL, partition VARCHAR NOT NULL, "
            "status VARCHAR NOT NULL, error VARCHAR, loadedAt TIMESTAMP NOT NULL)"
        )

    def loaded_keys(self, partition: str) -> set[str]:
        rows = self.con.execute(f"SELECT key FROM {LOADED_TABLE} WHERE partition = ?", [partition]).fetchall()
        return {r[0] for r in rows}

    def write_batch(self, rows: dict[str, list[dict[str, Any]]], objects: list[LoadedObject]) -> int:
        with tempfile.TemporaryDirectory(prefix="tallystick-load-", dir=self.path.parent) as tmp:
            files = {}
            for t in tables():
                path = Path(tmp) / f"{t.name}.ndjson"
                with path.open("wb") as f:
                    for row in rows.get(t.name, []):
                        f.write(_encoder.encode(row))
                        f.write(b"\n")
                files[t.name] = path
            obj_path = Path(tmp) / "objects.ndjson"
            obj_path.write_bytes(b"".join(_encoder.encode(o.__dict__) + b"\n" for o in objects))
            return self._insert(files, obj_path)

    def _read(self, t: Table, path: Path) -> str:
        columns = ", ".join(f"'{c.name}': '{_TYPES[c.kind]}'" for c in t.columns)
        return f"read_ndjson('{path}', columns={{{columns}}}, format='newline_delimited')"

    def _insert(self, files: dict[str, Path], obj_path: Path) -> int:
        sessions_table, *children = tables()
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            if files["sessions"].stat().st_size:
                source = self._read(sessions_table, files["sessions"])
                con.execute(f"CREATE OR REPLACE TEMP TABLE _batch AS SELECT * FROM {source}")
                # A session stored under two keys (its ID reused with another start date) loads once.
                con.execute('DELETE FROM _batch WHERE "sessionId" IN (SELECT "sessionId" FROM sessions)')
                inserted = con.execute("SELECT count(*) FROM _batch").fetchone()
                con.execute("INSERT INTO sessions SELECT * FROM _batch")
                for child in children:
                    if files[child.name].stat().st_size:
                        con.execute(
                            f'INSERT INTO "{child.name}" SELECT c.* FROM {self._read(child, files[child.name])} c '
                            'SEMI JOIN _batch b ON c."sessionId" = b."sessionId"'
                        )
                con.execute("DROP TABLE _batch")
            else:
                inserted = (0,)
            if obj_path.stat().st_size:
                con.execute(
                    f"INSERT INTO {LOADED_TABLE} SELECT key, partition, status, error, now()::TIMESTAMP FROM "
                    f"read_ndjson('{obj_path}', columns={{'key': 'VARCHAR', 'partition': 'VARCHAR', "
                    "'status': 'VARCHAR', 'error': 'VARCHAR'})"
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(inserted[0]) if inserted else 0

    def query(self, sql: str, parameters: list[Any] | None = None) -> QueryResult:
        try:
            cursor = self.con.execute(sql, parameters or [])
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, cursor.fetchall() if columns else [])
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip()) from None

    def close(self) -> None:
        self.con.close()
