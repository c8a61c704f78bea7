"""Read-only, sandboxed access to the DuckDB warehouse for dashboard requests.

Design note
-----------
Inside ``tallystick up`` one process both loads the warehouse (read-write, once per
cycle) and serves the dashboard (read-only). DuckDB lets a process hold a file one way
or the other, not both at once, so the loader cycle and every dashboard request take
the same lock, one per warehouse file (``lock_for``):

1. A request takes the lock, opens the file read-only with external access disabled,
   runs its queries, closes the file and releases the lock.
2. A loader cycle takes the lock, opens the file read-write, loads, closes, releases.

Races and why each is harmless:

- A request while a load runs waits for the cycle to end (seconds at most) and then
  sees the freshly committed data; it never sees a half-loaded batch, since a load is
  one transaction and the file is closed before the lock is released.
- A slow query would hold up the loader: every connection has a deadline after which
  it is interrupted (``timeout_seconds``), so a load waits at most that long.
- Another process (``tallystick query``) opening the file is DuckDB's own business:
  read-only openers share, and the loader retries while they hold it.

The sandbox is ``tallystick.warehouse.sandbox``'s, the same as ``tallystick query``'s:
read-only, one query (by DuckDB's statement type), no files, no network, no spilling to
disk, settings locked; the progress bar is off (it would draw on the server's stdout).
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

import duckdb

from tallystick.dashboard.errors import BadQuery, NoData
from tallystick.warehouse import sandbox
from tallystick.warehouse.base import QueryError, QueryResult

T = TypeVar("T")

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def warehouse_path(spec: str | Path) -> Path:
    """The DuckDB file a warehouse spec names (a path or ``duckdb:///path``)."""
    text = str(spec)
    if text.startswith("duckdb://"):
        text = text.removeprefix("duckdb://")
    elif "://" in text:
        raise NoData(f"the dashboard reads DuckDB warehouses; {text!r} is not one: give a DuckDB file path")
    return Path(text).expanduser().resolve()


def lock_for(spec: str | Path) -> threading.Lock:
    """The process-wide lock of a warehouse file: hold it while the file is open read-write."""
    try:
        key = warehouse_path(spec)
    except NoData:
        key = Path(str(spec))  # a server warehouse: the lock costs nothing and is harmless
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
    """One sandboxed read-only connection, open for the length of one request."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def query(self, sql: str, parameters: list[Any] | None = None, max_rows: int | None = None) -> QueryResult:
        try:
            cursor = self._con.execute(sql, parameters or [])
            columns = [d[0] for d in cursor.description or []]
            if not columns:
                return QueryResult([], [])
            rows = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows)
            return QueryResult(columns, rows)
        except duckdb.InterruptException:
            raise BadQuery("the query took too long and was stopped: narrow it down or add a LIMIT") from None
        except duckdb.Error as exc:
            raise BadQuery(str(exc).strip()) from None

    def scalar(self, sql: str, parameters: list[Any] | None = None) -> Any:
        rows = self.query(sql, parameters).rows
        return rows[0][0] if rows else None

    def check(self, sql: str) -> None:
        """Refuse ``sql`` (``BadQuery``) unless it is one query (the sandbox's rule)."""
        try:
            sandbox.check_duckdb(self._con, sql)
        except QueryError as exc:
            raise BadQuery(str(exc)) from None


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

    @property
    def path(self) -> Path:
        return warehouse_path(self.spec)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        path = self.path  # says what to do for a warehouse that is not a DuckDB file
        if not self.lock.acquire(timeout=self.wait_seconds):
            raise NoData(f"the warehouse {path} is busy loading: try again in a moment")
        try:
            if not path.exists():
                raise NoData(
                    f"no warehouse yet at {path}: the loader creates it on its first cycle "
                    "(or run `tallystick load`); reload this page in a few seconds"
                )
            try:
                con = sandbox.connect_duckdb(path)
            except duckdb.Error as exc:
                raise NoData(f"cannot open the warehouse {path}: {exc}; try again in a moment") from None
            timer = threading.Timer(self.timeout_seconds, con.interrupt)
            timer.daemon = True
            try:
                timer.start()
                yield Connection(con)
            finally:
                timer.cancel()
                con.close()
        finally:
            self.lock.release()

    def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` on one connection, opened and closed around it (call from a worker thread)."""
        with self.connect() as con:
            return work(con)
