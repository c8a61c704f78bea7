"""ClickHouse, the warehouse for scale: a server (or cluster) reached over HTTP, or chDB in-process.

Specs: ``clickhouse://[user[:password]@]host[:8123]/database`` (``clickhouses://``
for TLS) and ``chdb:///path/to/dir[?database=name]`` (embedded ClickHouse, for
tests and single-machine use). The SQL is what ClickHouse 18.16 (Debian's
package) accepts, which current ClickHouse (chDB 26.x) accepts too; the tests
run it on both.

Why not a client library: clickhouse-connect (0.8 and later) reads
``system.settings.readonly`` when it connects, a column ClickHouse 18.16 lacks, so
it cannot talk to the server the tests run. ClickHouse's HTTP interface is small
(POST a statement, read the answer), so ``http.client`` from the standard library
does it here in a few lines, for every server version.

Design note: loading without transactions
-----------------------------------------
ClickHouse has no multi-statement transactions, and an insert is atomic only per
block and partition. One batch is written in this order:

1. Ask which of the batch's session IDs the warehouse already holds; those are
   duplicates, not inserted again.
2. Insert an *intent* row per new session into ``_tallystick_loaded``
   (``status = 'pending'``, with its ``sessionId``). The checkpoint table has a
   single partition, so each insert of it is one part: all or nothing.
3. Insert events, spans, then sessions (any of these may be cut short).
4. Insert the final row per object (``loaded`` or ``rejected``).

``loaded_keys`` counts only final rows, so an object is skipped only once step 4
is in. ``recover()``, run before every load, looks for intent rows without a
final row: the batch was interrupted somewhere in 2-4, so its new sessions may
be partly inserted. It deletes every row of those session IDs (a mutation, waited
for), and marks the intents ``aborted``; the objects are then simply new again.

The loader runs recovery and its writes holding ``loading()``, a lock table only one process
can create, so the intents recovery finds are never those of a live loader (``tallystick
delete-user`` loads first, often while a scheduled loader runs). Recovery then waits until no
statement of another (dead) loader is still running on the server (every statement carries a
``tallystick-`` query_id): a loader killed while sending an insert can leave the server
finishing it, and a delete issued before that insert commits would miss its rows. After
deleting, it checks that no row of those sessions is left, and deletes again if one was.

Failure points: before 2, nothing was written. Between 2 and 4, recovery removes
the partial rows. During 4, some objects may have final rows and others not;
the latter are recovered and reloaded, the former are complete because all data
was inserted before 4 started. A session ID already in the warehouse is never in
an intent row (step 1), so recovery cannot delete a session loaded earlier from
another object. Duplicate session IDs within a batch are removed by the loader.
The crash test kills the loader at random points, on the 18.16 server and on chDB.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json
import os
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlencode, urlsplit

import duckdb
import msgspec

from tallystick.warehouse import rollup, sandbox
from tallystick.warehouse.base import Batch, QueryError, QueryResult, Warehouse, WarehouseError, WarehouseUnavailable
from tallystick.warehouse.dialect import CLICKHOUSE
from tallystick.warehouse.tables import Table, tables
from tallystick.warehouse.transform import CLICKHOUSE_CSV, clickhouse_select_sql, read_sql
from tallystick.warehouse.views import views

LOADED_TABLE = "_tallystick_loaded"
_UNKNOWN_DATABASE = re.compile(r"Code: 81\b")  # UNKNOWN_DATABASE, on 18.16 and 26.x alike
_TABLE_EXISTS = re.compile(r"Code: 57\b")  # TABLE_ALREADY_EXISTS
LOCK_TABLE = "_tallystick_loader_lock"
LOCK_WAIT_SECONDS = 3600.0  # a load of a month's sessions fits; then the waiting run fails with the fix


def _died_here(holder: str) -> bool:
    """Whether the lock's holder (``host pid token``) was a process of this host that is gone."""
    host, _, rest = holder.partition(" ")
    pid = rest.partition(" ")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


_encoder = msgspec.json.Encoder()
_TYPES = {"string": "String", "timestamp": "DateTime('UTC')", "attributes": "String", "float": "Float64"}
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_ID_CHUNK = 20_000
QUERY_ID_PREFIX = "tallystick-"  # every statement's query_id: recovery waits for a dead loader's inserts
_ids = itertools.count()
MUTATION_TIMEOUT = 300.0
SETTINGS = {
    "output_format_json_quote_64bit_integers": "0",
    "max_query_size": str(64 * 2**20),
}


class Transport(Protocol):
    """How statements reach ClickHouse: ``execute`` runs one and returns the raw answer."""

    @property
    def where(self) -> str:
        """The server or directory, for messages."""
        ...

    def execute(
        self, sql: str, data: bytes | None = None, *, database: bool = True, settings: dict[str, str] | None = None
    ) -> bytes:
        """``settings`` apply to this statement only (the sandbox's ``readonly=1`` and limits)."""
        ...

    def close(self) -> None: ...


def _ddl(table: Table) -> str:
    columns = []
    for c in table.columns:
        kind = _TYPES[c.kind]
        columns.append(f'"{c.name}" {f"Nullable({kind})" if c.nullable else kind}')
    if table.source_field is None:
        order = '"applicationId", toDate("sessionStartTime"), "userId", "sessionId"'
    else:
        order = '"applicationId", "type", toDate("sessionStartTime"), "sessionId"'
    return (
        f'CREATE TABLE IF NOT EXISTS "{table.name}" ({", ".join(columns)}) ENGINE = MergeTree '
        f'PARTITION BY toYYYYMM("sessionStartTime") ORDER BY ({order})'
    )


def _literal(value: Any) -> str:
    """A bound parameter as ClickHouse SQL: a scalar as the dialect writes it, lists and tuples of them."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    try:
        return CLICKHOUSE.literal(value)
    except (TypeError, ValueError):
        raise QueryError(
            f"cannot bind a {type(value).__name__} parameter: pass str, int, float, bool, date, datetime or list"
        ) from None


def bind(sql: str, parameters: list[Any] | None) -> str:
    """Replace each ``?`` outside quotes and comments with the next parameter as a literal."""
    if not parameters:
        return sql
    out: list[str] = []
    values = iter(parameters)
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and sql[j] != ch:
                j += 2 if sql[j] == "\\" else 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
        elif ch == "?":
            try:
                out.append(_literal(next(values)))
            except StopIteration:
                raise QueryError("more ? placeholders than parameters") from None
            i += 1
        else:
            out.append(ch)
            i += 1
    if next(values, _END) is not _END:
        raise QueryError("more parameters than ? placeholders")
    return "".join(out)


_END = object()
_EPOCH = datetime(1970, 1, 1)


def _convert(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind.startswith("Nullable("):
        return _convert(kind[9:-1], value)
    if kind.startswith("LowCardinality("):
        return _convert(kind[15:-1], value)
    if kind.startswith("DateTime"):
        if value.startswith("0000-00-00"):
            # Old ClickHouse prints DateTime and Date 0 (the epoch) so; a time before 1970 loads as 0.
            return _EPOCH
        return datetime.fromisoformat(value)
    if kind == "Date":
        return _EPOCH.date() if value.startswith("0000-00-00") else date.fromisoformat(value)
    if kind.startswith("Array(") and isinstance(value, list):
        return [_convert(kind[6:-1], v) for v in value]
    if kind.startswith(("Int", "UInt")) and isinstance(value, str):
        return int(value)
    return value


def _result(answer: bytes) -> QueryResult:
    if not answer.strip():
        return QueryResult([], [])
    doc = json.loads(answer)
    meta = doc.get("meta", [])
    names = [m["name"] for m in meta]
    kinds = [m["type"] for m in meta]
    rows = [tuple(_convert(k, v) for k, v in zip(kinds, row, strict=True)) for row in doc.get("data", [])]
    return QueryResult(names, rows)


class HttpTransport:
    """ClickHouse's HTTP interface over ``http.client`` (one keep-alive connection per thread)."""

    def __init__(
        self, host: str, port: int, database: str, user: str, password: str, *, tls: bool, timeout: float
    ) -> None:
        self.host, self.port, self.database, self.tls, self.timeout = host, port, database, tls, timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []  # every thread's, closed by close()
        self._all_lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.tls else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def execute(
        self, sql: str, data: bytes | None = None, *, database: bool = True, settings: dict[str, str] | None = None
    ) -> bytes:
        params = dict(SETTINGS, default_format="JSONCompact", query_id=f"{QUERY_ID_PREFIX}{os.getpid()}-{next(_ids)}")
        params.update(settings or {})
        if database:
            params["database"] = self.database
        if data is None:
            body = sql.encode()
        else:
            params["query"] = sql
            body = data
        path = "/?" + urlencode(params)
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=self._headers)
                response = conn.getresponse()
                answer = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2 or isinstance(exc, ConnectionRefusedError | TimeoutError):
                    raise WarehouseUnavailable(
                        f"cannot reach ClickHouse at {self.where} ({exc}): is the server running, "
                        "and is the spec right (clickhouse://user:password@host:8123/database)?"
                    ) from None
        if response.status != 200:
            message = answer.decode(errors="replace").strip()
            if response.status in (401, 403) or "Code: 516" in message or "Code: 192" in message:
                raise WarehouseUnavailable(f"ClickHouse at {self.where} refused the credentials: {message}")
            raise QueryError(message)
        return answer

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _open_chdb(chdb_session: Any, key: str) -> Any:
    """chDB's session on ``key``; one line saying what to do when another process holds the directory.

    chDB prints why it failed (``Cannot lock file .../status``) on file descriptor 2 itself and
    raises a vaguer RuntimeError, so that output is taken into the message rather than left above it.
    """
    failure: RuntimeError | None = None
    with tempfile.TemporaryFile() as said:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(said.fileno(), 2)
        try:
            return chdb_session.Session(key)
        except RuntimeError as exc:
            failure = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        said.seek(0)
        reason = next((line for line in said.read().decode(errors="replace").splitlines() if line.strip()), "")
    reason = (reason or str(failure)).strip()[:300]
    raise WarehouseUnavailable(
        f"chdb://{key} cannot be opened ({reason}): chDB lets one process at a time use a data directory; "
        "stop the other one (`tallystick up`, `dashboard` or `load --every`), or use a ClickHouse server "
        "to load and read from separate processes"
    )


class ChdbTransport:
    """ClickHouse in this process (chDB); one chDB session per data directory and process."""

    _sessions: dict[str, Any] = {}  # noqa: RUF012 - chDB allows one session per process: shared on purpose
    _lock = threading.Lock()

    def __init__(self, path: Path, database: str) -> None:
        try:
            from chdb import session as chdb_session
        except ImportError:
            raise WarehouseUnavailable("chDB is not installed: install it with `pip install chdb`") from None
        self.database = database
        key = str(path.resolve())
        with self._lock:
            if key not in self._sessions:
                try:
                    path.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise WarehouseUnavailable(
                        f"cannot use {path} as chDB's data directory ({exc.strerror}): choose one you can write"
                    ) from None
                if self._sessions:
                    raise WarehouseUnavailable("chDB runs one data directory per process: use the same chdb:// path")
                self._sessions[key] = _open_chdb(chdb_session, key)
            self.session = self._sessions[key]
        self.where = f"chdb://{key}"

    def execute(
        self, sql: str, data: bytes | None = None, *, database: bool = True, settings: dict[str, str] | None = None
    ) -> bytes:
        if settings:
            # One chDB session serves the whole process (the loader too), so per-statement settings
            # go in the statement; chDB runs every statement of a text, so it must be one query.
            if data is not None:
                raise QueryError("a statement with its own settings cannot carry data")
            sql = sandbox.clickhouse_subquery(sql, settings)
        defaults = ", ".join(f"{k}={v}" for k, v in SETTINGS.items())
        with self._lock:
            try:
                if database:
                    self.session.query(f"USE {self.database}")
                if data is not None:
                    text = f"{sql}\n{data.decode()}"
                    self.session.query(text)
                    return b""
                self.session.query(f"SET {defaults}")
                result = self.session.query(sql, "JSONCompact")
            except Exception as exc:  # noqa: BLE001 - chDB raises its own error types (and RuntimeError)
                raise QueryError(str(exc).strip()) from None
        return bytes(result.bytes()) if result is not None else b""

    def close(self) -> None:
        """The chDB session stays open for the process (it cannot be reopened)."""


def open_clickhouse(spec: str, limits: sandbox.Limits | None = None) -> ClickHouseWarehouse:
    """A ClickHouse warehouse from ``clickhouse://…``, ``clickhouses://…`` or ``chdb://…``;
    with ``limits``, every statement runs inside the SQL sandbox (``tallystick.warehouse.sandbox``)."""
    parts = urlsplit(spec)
    if parts.scheme == "chdb":
        database = "tallystick"
        for pair in parts.query.split("&"):
            name, _, value = pair.partition("=")
            if name == "database" and value:
                database = value
        if not (parts.netloc + parts.path).strip("/"):
            raise WarehouseUnavailable(f"name chDB's data directory in {spec!r}: chdb:///path/to/dir")
        path = Path(unquote(parts.netloc + parts.path)).expanduser()
        return ClickHouseWarehouse(
            ChdbTransport(path, _check_database(database)), _check_database(database), limits=limits
        )
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise WarehouseUnavailable(f"unsupported warehouse {spec!r}: use clickhouse://host:8123/database")
    tls = parts.scheme == "clickhouses"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # out of range, or 0: not somewhere a server listens (was taken as the default port)
        raise WarehouseUnavailable(f"the port in {_without_password(spec)!r} is not a port: use 1-65535")
    database = _check_database(parts.path.strip("/") or "default")
    transport = HttpTransport(
        parts.hostname or "127.0.0.1",
        port or (8443 if tls else 8123),
        database,
        unquote(parts.username or "default"),
        unquote(parts.password or ""),
        tls=tls,
        timeout=300.0,
    )
    return ClickHouseWarehouse(transport, database, limits=limits)


def _names_missing_database(message: str, database: str) -> bool:
    """Whether ClickHouse's ``message`` says the spec's ``database`` does not exist (not another one a query
    named: ``SELECT ... FROM nosuch.t`` on a loaded warehouse is the query's mistake)."""
    return bool(_UNKNOWN_DATABASE.search(message)) and re.search(rf"\b{re.escape(database)}\b", message) is not None


def _without_password(spec: str) -> str:
    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _check_database(name: str) -> str:
    if not _DATABASE.match(name):
        raise WarehouseUnavailable(f"{name!r} is not a database name: use letters, digits and underscores")
    return name


class ClickHouseWarehouse(Warehouse):
    """Sessions in ClickHouse MergeTree tables; see the module's design note for how loads stay exact."""

    dialect = "clickhouse"

    def __init__(self, transport: Transport, database: str, *, limits: sandbox.Limits | None = None) -> None:
        self.transport = transport
        self.database = database
        self.limits = limits

    # --- plumbing -----------------------------------------------------------------------------

    def _run(self, sql: str, data: bytes | None = None) -> bytes:
        settings = None if self.limits is None else sandbox.clickhouse_settings(self.limits)
        try:
            return self.transport.execute(sql, data, settings=settings)
        except QueryError as exc:
            if _names_missing_database(str(exc), self.database):  # nothing loaded yet, or a typo in the spec
                raise WarehouseUnavailable(
                    f"ClickHouse at {self.transport.where} has no database {self.database!r} yet: the loader "
                    "creates it on its first cycle (tallystick load --warehouse ...); or fix the database in the spec"
                ) from None
            if self.limits is None:
                raise
            raise sandbox.clickhouse_refusal(str(exc), self.limits) from None

    def query(self, sql: str, parameters: list[Any] | None = None) -> QueryResult:
        return _result(self._run(bind(sql, parameters)))

    def _strings(self, sql: str) -> list[str]:
        return [str(r[0]) for r in self.query(sql).rows]

    def _insert(self, table: str, columns: list[str], data: bytes, fmt: str = "JSONEachRow") -> None:
        if data:
            names = ", ".join(f'"{c}"' for c in columns)
            self._run(f'INSERT INTO "{table}" ({names}) FORMAT {fmt}', data)

    # --- one loader at a time ----------------------------------------------------------------

    @contextlib.contextmanager
    def loading(self, report: Callable[[str], None] | None = None) -> Iterator[None]:
        """The loader's lock: the table ``_tallystick_loader_lock``, which one ``CREATE TABLE`` makes.

        Creating a table that exists fails, so one process at a time holds it; its one row says
        who (``host pid token``). A holder that died on this host (its PID is gone: a killed
        loader, the next cron run) is taken over at once, by renaming the table away (one rename
        wins) and creating it again; one on another host is waited for, up to ``LOCK_WAIT_SECONDS``.
        """
        owner = f"{socket.gethostname()} {os.getpid()} {secrets.token_hex(4)}"
        self._take_lock(owner, report)
        try:
            yield
        finally:
            with contextlib.suppress(WarehouseError):
                if self._lock_holder() == owner:
                    self._run(f"DROP TABLE IF EXISTS {LOCK_TABLE}")

    def _take_lock(self, owner: str, report: Callable[[str], None] | None) -> None:
        self.transport.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}", database=False)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        unnamed_since: float | None = None
        said = False
        while True:
            try:
                self._run(f"CREATE TABLE {LOCK_TABLE} (owner String) ENGINE = TinyLog")
            except QueryError as exc:
                if not _TABLE_EXISTS.search(str(exc)):
                    raise
            else:
                self._run(f"INSERT INTO {LOCK_TABLE} (owner) FORMAT TabSeparated", owner.encode() + b"\n")
                return
            holder = self._lock_holder()
            now = time.monotonic()
            # No owner yet: created, not written yet; or a holder that died in between.
            unnamed_since = None if holder else (unnamed_since or now)
            if (holder and _died_here(holder)) or (unnamed_since is not None and now - unnamed_since > 30):
                self._break_lock()
                continue
            if now >= deadline:
                raise WarehouseUnavailable(
                    f"another loader ({holder or 'starting'}) has been loading into {self.database} at "
                    f"{self.transport.where} for over {LOCK_WAIT_SECONDS:g}s; if it is not running any more, "
                    f"drop its lock: DROP TABLE {self.database}.{LOCK_TABLE}"
                )
            if not said and report is not None:
                report(f"waiting for another loader ({holder or 'starting'}) to finish loading into {self.database}")
                said = True
            time.sleep(0.2)

    def _lock_holder(self) -> str:
        try:
            rows = self._strings(f"SELECT owner FROM {LOCK_TABLE}")
        except QueryError:
            return ""  # gone since (released or broken): the next CREATE decides
        return rows[0] if rows else ""

    def _break_lock(self) -> None:
        stale = f"{LOCK_TABLE}_stale_{secrets.token_hex(4)}"
        try:
            self._run(f"RENAME TABLE {LOCK_TABLE} TO {stale}")
        except QueryError:
            return  # another process broke it first
        self._run(f"DROP TABLE IF EXISTS {stale}")

    # --- schema -------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        self.transport.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}", database=False)
        for t in tables():
            self._run(_ddl(t))
        self._run(
            f'CREATE TABLE IF NOT EXISTS {LOADED_TABLE} (key String, "partition" String, status String, '
            'error Nullable(String), "sessionId" String, "loadedAt" DateTime(\'UTC\')) '
            'ENGINE = MergeTree ORDER BY ("partition", key)'
        )
        for name, sql in views(self.sql):
            self._run(f'CREATE VIEW IF NOT EXISTS "{name}" AS {sql}')

    # --- loading ------------------------------------------------------------------------------

    def loaded_keys(self, partition: str) -> set[str]:
        return set(
            self._strings(
                bind(
                    f'SELECT DISTINCT key FROM {LOADED_TABLE} WHERE "partition" = ? '
                    "AND status IN ('loaded', 'rejected')",
                    [partition],
                )
            )
        )

    def _existing(self, session_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(session_ids), _ID_CHUNK):
            chunk = session_ids[i : i + _ID_CHUNK]
            # One string literal split on the server parses much faster than 20,000 literals.
            sql = 'SELECT "sessionId" FROM sessions WHERE "sessionId" IN (SELECT arrayJoin(splitByChar(\',\', ?)))'
            found.update(self._strings(bind(sql, [",".join(chunk)])))
        return found

    def _checkpoint(self, rows: Iterable[tuple[str, str, str, str | None, str]]) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        columns = ["key", "partition", "status", "error", "sessionId", "loadedAt"]
        lines = [_encoder.encode(dict(zip(columns, (*row, now), strict=True))) for row in rows]
        if lines:
            self._insert(LOADED_TABLE, columns, b"\n".join(lines) + b"\n")

    def write_batch(self, batch: Batch) -> int:
        existing = self._existing(batch.session_ids) if batch.session_ids else set()
        new_ids = {s for s in batch.session_ids if s not in existing}
        intents: list[tuple[str, str, str, str | None, str]] = []
        claimed: set[str] = set()
        for o in batch.objects:
            if o.status == "loaded" and o.session_id in new_ids and o.session_id not in claimed:
                claimed.add(o.session_id)
                intents.append((o.key, o.partition, "pending", None, o.session_id))
        self._checkpoint(intents)  # step 2 of the design note
        if new_ids:
            for table, data in self._flatten(batch.lines, existing):  # step 3: children first
                self._insert(table.name, table.names, data, fmt="CSV")
        final = [(o.key, o.partition, o.status, o.error, o.session_id or "") for o in batch.objects]
        self._checkpoint(final)  # step 4
        return len(new_ids)

    def _flatten(self, lines: bytes, existing: set[str]) -> Iterator[tuple[Table, bytes]]:
        """CSV data per table (events, spans, then sessions), made by the same SQL DuckDB loads with."""
        sessions_table, *children = tables()
        with tempfile.TemporaryDirectory(prefix="tallystick-ch-") as tmp:
            source = Path(tmp) / "sessions.ndjson"
            source.write_bytes(lines)
            con = duckdb.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"CREATE TEMP TABLE _batch AS SELECT * FROM {read_sql(source)}")
                if existing:
                    con.execute('DELETE FROM _batch WHERE "sessionId" IN (SELECT unnest(?))', [sorted(existing)])
                for t in (*children, sessions_table):
                    out = Path(tmp) / f"{t.name}.csv"
                    con.execute(f"COPY ({clickhouse_select_sql(t, '_batch')}) TO '{out}' ({CLICKHOUSE_CSV})")
                    yield t, out.read_bytes()
            finally:
                con.close()

    def recover(self) -> None:
        pending = self.query(
            f'SELECT key, "partition", "sessionId" FROM {LOADED_TABLE} WHERE status = \'pending\' '
            f"AND key NOT IN (SELECT key FROM {LOADED_TABLE} WHERE status != 'pending')"
        ).rows
        if not pending:
            return
        ids = sorted({str(r[2]) for r in pending if r[2]})
        self._wait_for_other_statements()
        for i in range(0, len(ids), _ID_CHUNK):
            condition = bind('"sessionId" IN ?', [tuple(ids[i : i + _ID_CHUNK])])
            for _ in range(5):  # an insert of the dead loader that landed after the delete: delete again
                self._mutate([f'ALTER TABLE "{t.name}" DELETE WHERE {condition}' for t in tables()])
                left = sum(
                    int(self.query(f'SELECT count() FROM "{t.name}" WHERE {condition}').rows[0][0]) for t in tables()
                )
                if not left:
                    break
            else:
                raise WarehouseError("rows of an interrupted load keep reappearing: is another loader running?")
        self._checkpoint((str(k), str(p), "aborted", None, str(s)) for k, p, s in pending)

    def _wait_for_other_statements(self, timeout: float = 60.0) -> None:
        """Wait until statements of other (dead) loaders have finished on the server.

        A loader killed while sending an insert may leave the server still running
        it; a delete issued before it commits would not see its rows.
        """
        mine = f"{QUERY_ID_PREFIX}{os.getpid()}-%"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = self.query(
                "SELECT count() FROM system.processes WHERE query_id LIKE ? AND query_id NOT LIKE ?",
                [QUERY_ID_PREFIX + "%", mine],
            ).rows
            if not running or int(running[0][0]) == 0:
                return
            time.sleep(0.05)

    # --- deletion -----------------------------------------------------------------------------

    def _mutate(self, statements: list[str]) -> None:
        """Run ALTER … DELETE mutations and wait until ClickHouse has applied them."""
        for sql in statements:
            self._run(sql)
        deadline = time.monotonic() + MUTATION_TIMEOUT
        while True:
            rows = self.query(
                "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", [self.database]
            ).rows
            if not rows or int(rows[0][0]) == 0:
                return
            if time.monotonic() > deadline:
                raise WarehouseError(
                    f"ClickHouse has not finished deleting after {MUTATION_TIMEOUT:.0f}s: "
                    "see system.mutations, then run the deletion again"
                )
            time.sleep(0.05)

    def delete_sessions(self, where_sql: str, parameters: list[Any] | None = None) -> None:
        condition = bind(where_sql, parameters)
        derived = rollup.forget_statements(self, condition)  # sessions_typed: its rows go with their sessions
        self._mutate([*derived, *(f'ALTER TABLE "{t.name}" DELETE WHERE {condition}' for t in reversed(tables()))])

    def delete_rows(self, table: str, where_sql: str) -> None:
        self._mutate([f'ALTER TABLE "{table}" DELETE WHERE {where_sql}'])

    def forget_objects(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, len(keys), _ID_CHUNK):
            condition = bind("key IN ?", [tuple(keys[i : i + _ID_CHUNK])])
            self._mutate([f"ALTER TABLE {LOADED_TABLE} DELETE WHERE {condition}"])

    def drop_database(self) -> None:
        """Remove the whole database (tests give each test its own)."""
        self.transport.execute(f"DROP DATABASE IF EXISTS {self.database}", database=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()
