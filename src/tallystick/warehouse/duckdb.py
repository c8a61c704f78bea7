"""DuckDB, the embedded default warehouse: one file, no server.

Only one process may open a DuckDB file for writing, and while it does no other
process can open it at all. So the loader opens the file for each load and closes
it after, and readers (``tallystick query``) open it read-only, retrying for a
few seconds if a load holds it.

A batch is written in one transaction: the validated session lines go to a temp
file that ``read_ndjson`` parses (in C++, in parallel), ``transform.py``'s SQL
flattens them into the tables, and the checkpoint rows go in with them.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from tallystick.warehouse import rollup, sandbox
from tallystick.warehouse.base import (
    Batch,
    QueryError,
    QueryResult,
    Warehouse,
    WarehouseUnavailable,
)
from tallystick.warehouse.tables import Table, tables
from tallystick.warehouse.transform import DUCKDB_TYPES, read_sql, select_sql
from tallystick.warehouse.views import views

LOADED_TABLE = "_tallystick_loaded"
LOAD_MEMORY_LIMIT = "512MB"
_encoder = msgspec.json.Encoder()


def ddl(table: Table) -> str:
    columns = ", ".join(f'"{c.name}" {DUCKDB_TYPES[c.kind]}{"" if c.nullable else " NOT NULL"}' for c in table.columns)
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({columns})'


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        wait_seconds: float = 10.0,
        limits: sandbox.Limits | None = None,
    ) -> None:
        """``limits`` opens the file inside the SQL sandbox (``tallystick.warehouse.sandbox``), read-only."""
        self.path = Path(path)
        self.limits = limits
        read_only = read_only or limits is not None
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
                if limits is not None:
                    self.con = sandbox.connect_duckdb(self.path, limits)
                else:
                    self.con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if _is_lock_error(exc) and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                if _is_lock_error(exc):
                    raise WarehouseUnavailable(
                        f"the warehouse {self.path} is in use by another process ({exc}): run this again once "
                        "it lets go (a running `tallystick up` holds it only while it loads)"
                    ) from None
                raise WarehouseUnavailable(f"cannot open the warehouse {self.path}: {exc}") from None
        self._configure()
        self._lock = threading.Lock()  # the loader writes from one thread while it lists from another

    def _configure(self) -> None:
        if self.limits is None:
            self.con.execute("SET TimeZone = 'UTC'")
        if not self.read_only:
            # Commits append to the write-ahead log (durable, replayed after a crash); folding the
            # log into the file is costly and grows with the tables, so do it once per load (on
            # close) rather than every 16 MiB: at a million sessions this halves the load time.
            self.con.execute("SET checkpoint_threshold = '4GB'")
            # DuckDB caches up to 80% of RAM by default; a load streams, so keep the cache small.
            self.con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")

    def compact(self) -> None:
        """Copy the database into a new file and put it in place of the old one.

        DuckDB deletes by marking rows and reuses freed blocks without clearing them, so a
        deleted session's bytes stay in the file (measured: a user ID deleted, checkpointed,
        even its table rewritten, is still found in it). A copy holds only live rows. Crash
        safety: the copy is complete and synced before ``os.replace``; a crash before it
        leaves the old file as it was (and a stale copy, removed by the next compaction).
        """
        fresh = self.path.with_name(self.path.name + ".compact")
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        name = self.con.execute("SELECT current_database()").fetchall()[0][0]
        self.con.execute("ATTACH ? AS _tallystick_compact", [str(fresh)])
        try:
            self.con.execute(f'COPY FROM DATABASE "{name}" TO _tallystick_compact')
        finally:
            self.con.execute("DETACH _tallystick_compact")
        self.con.close()
        fd = os.open(fresh, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(fresh, self.path)
        self.con = duckdb.connect(str(self.path))
        self._configure()

    def ensure_schema(self) -> None:
        for t in tables():
            self.con.execute(ddl(t))
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {LOADED_TABLE} (key VARCHAR NOT NULL, partition VARCHAR NOT NULL, "
            "status VARCHAR NOT NULL, error VARCHAR, loadedAt TIMESTAMP NOT NULL)"
        )
        # Added after the first release of the table: the session an object held (for deletion by user).
        self.con.execute(f'ALTER TABLE {LOADED_TABLE} ADD COLUMN IF NOT EXISTS "sessionId" VARCHAR')
        for name, sql in views(self.sql):
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')

    def loaded_keys(self, partition: str) -> set[str]:
        with self._lock:
            rows = self.con.execute(f"SELECT key FROM {LOADED_TABLE} WHERE partition = ?", [partition]).fetchall()
        return {r[0] for r in rows}

    def write_batch(self, batch: Batch) -> int:
        with tempfile.TemporaryDirectory(prefix="tallystick-load-", dir=self.path.parent) as tmp:
            sessions_path = Path(tmp) / "sessions.ndjson"
            sessions_path.write_bytes(batch.lines)
            objects_path = Path(tmp) / "objects.ndjson"
            with objects_path.open("wb") as f:
                for o in batch.objects:
                    f.write(_encoder.encode(o._asdict()))
                    f.write(b"\n")
            with self._lock:
                return self._insert(sessions_path if batch.lines else None, objects_path if batch.objects else None)

    def _insert(self, sessions_path: Path | None, objects_path: Path | None) -> int:
        con = self.con
        inserted = 0
        con.execute("BEGIN TRANSACTION")
        try:
            if sessions_path is not None:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _batch AS SELECT * FROM {read_sql(sessions_path)}")
                # A session stored under two keys (its ID reused with another start date) loads once.
                con.execute('DELETE FROM _batch WHERE "sessionId" IN (SELECT "sessionId" FROM sessions)')
                row = con.execute("SELECT count(*) FROM _batch").fetchone()
                inserted = int(row[0]) if row else 0
                for t in tables():
                    con.execute(f'INSERT INTO "{t.name}" {select_sql(t, "_batch")}')
                con.execute("DROP TABLE _batch")
            if objects_path is not None:
                path = str(objects_path).replace("'", "''")
                con.execute(
                    f'INSERT INTO {LOADED_TABLE} (key, partition, status, error, loadedAt, "sessionId") '
                    "SELECT key, partition, status, error, now()::TIMESTAMP, session_id FROM "
                    f"read_ndjson('{path}', columns={{'key': 'VARCHAR', 'partition': 'VARCHAR', "
                    "'status': 'VARCHAR', 'error': 'VARCHAR', 'session_id': 'VARCHAR'})"
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return inserted

    def query(self, sql: str, parameters: list[Any] | None = None) -> QueryResult:
        if self.limits is not None:
            return self._sandboxed(sql, parameters, self.limits)
        try:
            cursor = self.con.execute(sql, parameters or [])
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, cursor.fetchall() if columns else [])
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip()) from None

    def _sandboxed(self, sql: str, parameters: list[Any] | None, limits: sandbox.Limits) -> QueryResult:
        sandbox.check_duckdb(self.con, sql)
        timer = threading.Timer(limits.timeout_seconds, self.con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            cursor = self.con.execute(sql, parameters or [])
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(limits.max_rows + 1) if columns else []
        except duckdb.InterruptException:
            raise sandbox.Refused(sandbox.TOO_LONG.format(seconds=limits.timeout_seconds)) from None
        except duckdb.PermissionException as exc:
            raise sandbox.Refused(sandbox.NO_ACCESS.format(message=str(exc).strip().splitlines()[0])) from None
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip()) from None
        finally:
            timer.cancel()
        if len(rows) > limits.max_rows:
            raise sandbox.Refused(sandbox.TOO_MANY_ROWS.format(rows=limits.max_rows))
        return QueryResult(columns, rows)

    def delete_sessions(self, where_sql: str, parameters: list[Any] | None = None) -> None:
        con = self.con
        derived = rollup.forget_statements(self, where_sql)
        con.execute("BEGIN TRANSACTION")
        try:
            for sql in derived:  # before the sessions they are found by
                con.execute(sql, parameters or [])
            for t in reversed(tables()):
                con.execute(f'DELETE FROM "{t.name}" WHERE {where_sql}', parameters or [])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def forget_objects(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, len(keys), 10_000):
            self.con.execute(f"DELETE FROM {LOADED_TABLE} WHERE key IN (SELECT unnest(?))", [keys[i : i + 10_000]])

    def close(self) -> None:
        self.con.close()
