"""The SQL sandbox: what a statement typed by a person may do, on every engine.

The dashboard's SQL page and ``tallystick query`` run SQL that someone typed (or
pasted from somewhere). Both go through this module, so both hold the same rules:

- **one statement, and it is a query.** The engine says what the statement is, not a
  pattern over its text: DuckDB's parser (``extract_statements`` and each statement's
  ``StatementType``), ClickHouse's ``readonly=1`` (the server refuses every statement
  that is not a read, table functions such as ``file()``, ``url()`` and ``remote()``
  included, and any attempt to change a setting). The HTTP interface refuses several
  statements in one request; chDB would run them all, so there the statement is placed
  inside ``SELECT * FROM (...)`` where only one query parses.
- **no file or network access.** DuckDB: ``enable_external_access=false`` (no
  ``read_csv``, ``COPY``, ``ATTACH``, ``EXPORT``, ``INSTALL``, URLs), and no spilling to
  disk: DuckDB always allows its own temp directory (``<warehouse>.tmp/``) even with
  external access off, so a query could write or list files there. A query that needs
  more memory than the limit fails instead. ``lock_configuration`` keeps a query from
  turning any of it back on. ClickHouse: ``readonly=1`` (above).
- **a time limit**: DuckDB's connection is interrupted by a timer; ClickHouse stops the
  statement itself (``max_execution_time``).
- **a result size**: at most ``max_rows`` rows, else a refusal naming the limit
  (ClickHouse: ``max_result_rows`` with ``result_overflow_mode=throw``), and a memory
  limit on both.

Every refusal is one line (``Refused``) saying what was refused and what to do. An
operator who wants the raw engine uses its own shell (``duckdb FILE``,
``clickhouse-client``); ``docs/querying.md`` says how.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tallystick.warehouse.base import QueryError

if TYPE_CHECKING:
    import duckdb


class Refused(QueryError):
    """The sandbox refused a statement; the message says why, in one line."""


@dataclass(frozen=True)
class Limits:
    """How far one sandboxed statement may go."""

    timeout_seconds: float = 10.0
    max_rows: int = 1_000_000
    memory: str = "1GB"


DUCKDB_CONFIG: dict[str, str | int | float | bool] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "temp_directory": "",  # no spilling: DuckDB always allows its temp directory, even with access off
    "threads": 2,
}
# Connection-level settings (DuckDB refuses them in the connect config), set before locking:
# without the progress bar off, a query running over two seconds draws one on the server's stdout.
DUCKDB_SESSION = ("SET TimeZone = 'UTC'", "SET enable_progress_bar = false")

TOO_LONG = "the query took too long and was stopped ({seconds:g} s): narrow it down or add a LIMIT"
TOO_MANY_ROWS = "the answer has over {rows:,} rows: add a LIMIT or aggregate"
NO_ACCESS = "the SQL sandbox has no file or network access: {message}"
NOT_A_QUERY = "the SQL sandbox is read-only: only one query (SELECT ...) may run here, not {kind}"


def connect_duckdb(path: Path, limits: Limits = Limits()) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file read-only inside the sandbox (raises ``duckdb.Error`` if it cannot)."""
    import duckdb

    config: dict[str, Any] = dict(DUCKDB_CONFIG, memory_limit=limits.memory)
    con = duckdb.connect(str(path), read_only=True, config=config)
    try:
        for statement in DUCKDB_SESSION:
            con.execute(statement)
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_duckdb(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse ``sql`` unless DuckDB's parser finds exactly one statement, of type SELECT."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None
    if not statements:
        raise Refused("write a query first, e.g. SELECT count(*) FROM sessions")
    if len(statements) > 1:
        raise Refused(f"one statement at a time, please (this has {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise Refused(NOT_A_QUERY.format(kind=kind.name.replace("_", " ")))


def clickhouse_settings(limits: Limits = Limits()) -> dict[str, str]:
    """The ClickHouse settings that hold the sandbox, sent with every sandboxed statement."""
    return {
        "readonly": "1",
        "max_execution_time": f"{max(1, round(limits.timeout_seconds))}",
        "max_result_rows": str(limits.max_rows),
        "result_overflow_mode": "throw",
        "max_memory_usage": str(_bytes(limits.memory)),
    }


def clickhouse_subquery(sql: str, settings: Mapping[str, str]) -> str:
    """``sql`` as the only subquery of a statement carrying ``settings`` (for chDB, which runs
    every statement of a text): an INSERT, a second statement or a FORMAT clause do not parse
    there. A newline ends a trailing ``--`` comment; a trailing ``;`` is dropped."""
    inner = sql.rstrip().rstrip(";").rstrip()
    pairs = ", ".join(f"{k} = {_clickhouse_literal(v)}" for k, v in settings.items())
    return f"SELECT * FROM (\n{inner}\n) SETTINGS {pairs}"


_CODE = re.compile(r"Code: (\d+)")


def clickhouse_refusal(message: str, limits: Limits) -> QueryError:
    """The engine's error as one line, naming the sandbox when it was the sandbox that refused."""
    match = _CODE.search(message)
    code = int(match.group(1)) if match else 0
    text = _first_line(message)
    if code == 164:  # READONLY: writes, settings and table functions
        return Refused(f"the SQL sandbox is read-only: {text}")
    if code == 159:  # TIMEOUT_EXCEEDED
        return Refused(TOO_LONG.format(seconds=limits.timeout_seconds))
    if code == 396:  # TOO_MANY_ROWS_OR_BYTES
        return Refused(TOO_MANY_ROWS.format(rows=limits.max_rows))
    if code == 62:  # SYNTAX_ERROR: also what a second statement or a non-query becomes
        return Refused(f"not one query (the SQL sandbox is read-only, one SELECT at a time): {text}")
    return QueryError(text)


def _first_line(message: str) -> str:
    text = message.strip().splitlines()[0] if message.strip() else message
    text = re.sub(r", e\.what\(\) = .*$", "", text)  # 18.16's suffix
    return text[:500]


def _clickhouse_literal(value: str) -> str:
    return value if value.isdigit() else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _bytes(size: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", size)
    if not match or match.group(2).upper() not in _UNITS:
        raise ValueError(f"{size!r} is not a size: use e.g. 512MB or 1GB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
