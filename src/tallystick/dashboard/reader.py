"""Read-only, sandboxed access to the warehouse for dashboard requests, on every engine.

The dashboard reads through the read side of the warehouse interface
(``tallystick.warehouse.Queryable``), opened with the SQL sandbox
(``open_warehouse(spec, sandbox=...)``, the same as ``tallystick query``'s): read-only,
one query, no files, no network, a time limit and a result size, on DuckDB, ClickHouse
and chDB alike. Nothing in the dashboard names an engine's own client.

Design note
-----------
Inside ``tallystick up`` one process both loads the warehouse (read-write, once per
cycle) and serves the dashboard (read-only). DuckDB lets a process hold a file one way
or the other, not both at once (and chDB runs in the process), so for those the loader
cycle and every dashboard request take the same lock, one per warehouse (``lock_for``):

1. A request takes the lock, opens the warehouse sandboxed, runs its queries, closes it
   and releases the lock.
2. A loader cycle takes the lock, opens the warehouse read-write, loads, closes, releases.

A ClickHouse server serves readers and the loader at once: requests there take no lock.

Races and why each is harmless:

- A request while a load runs waits for the cycle to end (seconds at most) and then
  sees the freshly committed data; it never sees a half-loaded batch, since a load is
  one transaction and the file is closed before the lock is released.
- A slow query would hold up the loader: every query has a deadline after which it is
  stopped (``timeout_seconds``), so a load waits at most that long.
- Another process (``tallystick query``) opening the file is DuckDB's own business:
  read-only openers share, and the loader retries while they hold it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tallystick.dashboard.errors import BadQuery, NoData
from tallystick.warehouse import (
    Limits,
    Queryable,
    QueryError,
    QueryResult,
    WarehouseError,
    WarehouseUnavailable,
    open_warehouse,
)
from tallystick.warehouse.dialect import Dialect

T = TypeVar("T")

_locks: dict[Path | str, threading.Lock] = {}
_locks_guard = threading.Lock()


def warehouse_path(spec: str | Path) -> Path | None:
    """The DuckDB file a warehouse spec names (a path or ``duckdb:///path``); None for another engine."""
    text = str(spec)
    if text.startswith("duckdb://"):
        text = text.removeprefix("duckdb://")
    elif "://" in text:
        return None
    return Path(text).expanduser().resolve()


def is_server(spec: str | Path) -> bool:
    """Whether the warehouse is a server that readers and the loader share without a lock (ClickHouse)."""
    return str(spec).startswith(("clickhouse://", "clickhouses://"))


def lock_for(spec: str | Path) -> threading.Lock:
    """The process-wide lock of a warehouse: hold it while it is open read-write (see the design note)."""
    key = warehouse_path(spec) or str(spec)
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def jsonable(value: Any) -> Any:
    """A query value as JSON can carry it: times as ISO 8601, decimals as numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


class Connection:
    """The read side of one sandboxed warehouse, open for the length of one request."""

    def __init__(self, warehouse: Queryable) -> None:
        self.warehouse = warehouse

    @property
    def sql(self) -> Dialect:
        return self.warehouse.sql

    def query(self, sql: str, parameters: list[Any] | None = None, max_rows: int | None = None) -> QueryResult:
        """Run one query (the sandbox refuses anything else: ``BadQuery`` with its one-line reason)."""
        try:
            result = self.warehouse.query(sql, parameters)
        except WarehouseUnavailable as exc:  # a server that went away, or has no database before the first load
            raise NoData(f"{exc}; reload this page in a moment") from None
        except QueryError as exc:
            raise BadQuery(str(exc).strip()) from None
        if max_rows is not None and len(result.rows) > max_rows:
            return QueryResult(result.columns, result.rows[:max_rows])
        return result

    def scalar(self, sql: str, parameters: list[Any] | None = None) -> Any:
        rows = self.query(sql, parameters).rows
        return rows[0][0] if rows else None


class Reader:
    """Opens the warehouse read-only and sandboxed for each unit of work, under the file's lock."""

    def __init__(
        self,
        spec: str | Path,
        *,
        lock: threading.Lock | None = None,
        timeout_seconds: float = 10.0,
        wait_seconds: float = 30.0,
    ) -> None:
        self.spec = spec
        self.lock = lock or lock_for(spec)
        self.timeout_seconds = timeout_seconds
        self.wait_seconds = wait_seconds

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if is_server(self.spec):
            yield from self._open()
            return
        if not self.lock.acquire(timeout=self.wait_seconds):
            raise NoData(f"the warehouse {self.spec} is busy loading: try again in a moment")
        try:
            yield from self._open()
        finally:
            self.lock.release()

    def _open(self) -> Iterator[Connection]:
        path = warehouse_path(self.spec)
        if path is not None and not path.exists():
            raise NoData(
                f"no warehouse yet at {path}: the loader creates it on its first cycle "
                "(or run `tallystick load`); reload this page in a few seconds"
            )
        try:
            warehouse = open_warehouse(self.spec, sandbox=Limits(timeout_seconds=self.timeout_seconds))
        except WarehouseError as exc:
            raise NoData(f"cannot open the warehouse {self.spec}: {exc}; try again in a moment") from None
        try:
            yield Connection(warehouse)
        finally:
            warehouse.close()

    def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` on one connection, opened and closed around it (call from a worker thread)."""
        with self.connect() as con:
            return work(con)
