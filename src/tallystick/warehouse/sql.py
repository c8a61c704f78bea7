"""SQL that differs between warehouses, in one place, so analyses run on every engine.

Analyses write portable SQL and ask the warehouse's dialect for the few pieces
that differ::

    d = dialect_of(warehouse)          # or dialect("duckdb") / dialect("clickhouse")
    sql = f"SELECT {d.day('sessionStartTime')} AS day, {d.attribute('attributes', 'shell')} AS shell, "
    sql += f"{d.quantile(0.9, 'durationMs')} AS p90 FROM sessions GROUP BY day, shell"

What is the same everywhere (and so needs no helper): the tables ``sessions``,
``events``, ``spans`` with wire-named columns, ``count(*)``, ``count(DISTINCT x)``,
``min``/``max``/``avg``/``sum``, ``CASE``, ``IN``, ``LIKE``, ``INTERVAL n DAY``,
``ORDER BY``/``LIMIT``, and ``?`` placeholders for parameters (every warehouse
binds them). Identifiers are camelCase, so quote them (``"sessionId"``) or keep
their case; both engines accept either.

Not portable to ClickHouse 18.16, so avoid: positional ``GROUP BY 1`` (an error) and
``ORDER BY 1`` (silently sorts by the constant 1!): group and order by an alias
instead; ``FILTER (WHERE ...)`` (use ``count_if``); ``::`` casts (use ``CAST(x AS
type)`` with a type both know, or a helper). ``LIMIT n OFFSET m`` works on both.

The ClickHouse side keeps to what ClickHouse 18.16 (Debian's package) accepts,
which current ClickHouse accepts too: the ``attributes`` column is the compact
JSON text msgspec writes, read with ``visitParamExtract*`` (fast, and exact for
the flat objects the wire contract allows); there is no DateTime64, so times
have second resolution there (``durationMs`` columns keep the precise durations).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, Protocol

from tallystick.schema import _rules

if TYPE_CHECKING:
    from collections.abc import Sequence

AttributeKind = Literal["string", "number", "bool"]
TimeUnit = Literal["day", "week", "month"]

# The attribute-name rule as a bare regular expression, for the SQL that finds names in JSON text.
_NAME_REGEX = _rules.ATTRIBUTE_NAME_PATTERN.removeprefix("^").removesuffix(_rules.END)


class HasDialect(Protocol):
    dialect: str


def _check_name(name: str) -> str:
    if not _rules.is_attribute_name(name):
        raise ValueError(f"{name!r} is not an attribute name: use letters and digits, starting with a letter")
    return name


def _check_quantile(q: float) -> float:
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} must be between 0 and 1")
    return float(q)


class Dialect:
    """The SQL pieces that differ between engines; one instance per engine."""

    name: str = ""

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        """The attribute ``name`` of a JSON ``attributes`` column as a typed value; NULL if absent or another type."""
        raise NotImplementedError

    def has_attribute(self, column_sql: str, name: str) -> str:
        """True (1 on ClickHouse) when the attribute is present, even if null."""
        raise NotImplementedError

    def trunc(self, unit: TimeUnit, timestamp_sql: str) -> str:
        """The DATE a timestamp falls in: its day, its week (starting Monday) or its month."""
        raise NotImplementedError

    def day(self, timestamp_sql: str) -> str:
        """The DATE (UTC) of a timestamp."""
        return self.trunc("day", timestamp_sql)

    def quantile(self, q: float, expr: str) -> str:
        """The q-quantile of ``expr``, interpolated linearly (exact on DuckDB; on ClickHouse exact up to 8192 rows)."""
        raise NotImplementedError

    def quantiles(self, qs: Sequence[float], expr: str) -> str:
        """An array of quantiles of ``expr`` (1-based indexing on both engines)."""
        raise NotImplementedError

    def median(self, expr: str) -> str:
        return self.quantile(0.5, expr)

    def count_if(self, condition: str) -> str:
        """How many rows of the group satisfy ``condition``."""
        raise NotImplementedError

    def arg_max(self, value: str, by: str) -> str:
        """``value`` of the row with the largest ``by`` in the group."""
        raise NotImplementedError

    def arg_min(self, value: str, by: str) -> str:
        """``value`` of the row with the smallest ``by`` in the group."""
        raise NotImplementedError

    def to_string(self, expr: str) -> str:
        raise NotImplementedError

    def epoch_seconds(self, timestamp_sql: str) -> str:
        """Seconds since 1970-01-01 UTC of a timestamp, as an integer."""
        raise NotImplementedError

    def days_between(self, earlier_sql: str, later_sql: str) -> str:
        """Whole days from one DATE or timestamp to another (calendar days, UTC)."""
        raise NotImplementedError

    def timestamp(self, iso_text: str) -> str:
        """A timestamp literal (UTC) from ``YYYY-MM-DD[ HH:MM:SS]``."""
        raise NotImplementedError

    def attribute_names(self, where_sql: str) -> str:
        """A query of the distinct attribute names (column ``k``) of the sessions ``where_sql`` selects, sorted."""
        raise NotImplementedError

    def attribute_kinds(self, where_sql: str) -> str:
        """A query of (name, kind, sessions) over the sessions ``where_sql`` selects, commonest first;
        kind is ``string``, ``number`` or ``bool`` (null values are left out)."""
        raise NotImplementedError

    def sample_rows(self, rows: int) -> str:
        """A clause ending a query to read at most about ``rows`` rows (DuckDB samples at random)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"


class DuckDBDialect(Dialect):
    name = "duckdb"

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        path = f"'$.{_check_name(name)}'"
        if kind == "string":
            return (
                f"CASE WHEN json_type({column_sql}, {path}) = 'VARCHAR' "
                f"THEN json_extract_string({column_sql}, {path}) END"
            )
        if kind == "number":
            return (
                f"CASE WHEN json_type({column_sql}, {path}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                f"THEN CAST(json_extract_string({column_sql}, {path}) AS DOUBLE) END"
            )
        if kind == "bool":
            return (
                f"CASE WHEN json_type({column_sql}, {path}) = 'BOOLEAN' "
                f"THEN CAST(json_extract_string({column_sql}, {path}) AS BOOLEAN) END"
            )
        raise ValueError(f"attribute kind {kind!r}: use 'string', 'number' or 'bool'")

    def has_attribute(self, column_sql: str, name: str) -> str:
        return f"json_exists({column_sql}, '$.{_check_name(name)}')"

    def trunc(self, unit: TimeUnit, timestamp_sql: str) -> str:
        if unit not in ("day", "week", "month"):
            raise ValueError(f"time unit {unit!r}: use 'day', 'week' or 'month'")
        return f"CAST(date_trunc('{unit}', {timestamp_sql}) AS DATE)"

    def quantile(self, q: float, expr: str) -> str:
        return f"quantile_cont({expr}, {_check_quantile(q)!r})"

    def quantiles(self, qs: Sequence[float], expr: str) -> str:
        levels = ", ".join(repr(_check_quantile(q)) for q in qs)
        return f"quantile_cont({expr}, [{levels}])"

    def count_if(self, condition: str) -> str:
        return f"count_if({condition})"

    def arg_max(self, value: str, by: str) -> str:
        return f"arg_max({value}, {by})"

    def arg_min(self, value: str, by: str) -> str:
        return f"arg_min({value}, {by})"

    def to_string(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def epoch_seconds(self, timestamp_sql: str) -> str:
        return f"CAST(epoch({timestamp_sql}) AS BIGINT)"

    def days_between(self, earlier_sql: str, later_sql: str) -> str:
        return f"date_diff('day', CAST({earlier_sql} AS DATE), CAST({later_sql} AS DATE))"

    def timestamp(self, iso_text: str) -> str:
        return f"CAST('{_check_timestamp(iso_text)}' AS TIMESTAMP)"

    def attribute_names(self, where_sql: str) -> str:
        return f"SELECT DISTINCT unnest(json_keys(attributes)) AS k FROM sessions WHERE {where_sql} ORDER BY 1"

    def attribute_kinds(self, where_sql: str) -> str:
        return (
            "SELECT k, CASE json_type(attributes, '$.' || k) WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'bool' "
            "WHEN 'BIGINT' THEN 'number' WHEN 'UBIGINT' THEN 'number' WHEN 'DOUBLE' THEN 'number' END AS t, "
            f"count(*) AS n FROM sessions, unnest(json_keys(attributes)) AS u(k) WHERE {where_sql} "
            "GROUP BY 1, 2 HAVING t IS NOT NULL ORDER BY 3 DESC, 1"
        )

    def sample_rows(self, rows: int) -> str:
        return f"USING SAMPLE {int(rows)} ROWS"


class ClickHouseDialect(Dialect):
    """ClickHouse 18.16 and newer (the same SQL runs on chDB 26.x)."""

    name = "clickhouse"

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        raw = f"visitParamExtractRaw({column_sql}, '{_check_name(name)}')"
        if kind == "string":
            return (
                f"if(substring({raw}, 1, 1) = '\"', visitParamExtractString({column_sql}, '{name}'), "
                "CAST(NULL AS Nullable(String)))"
            )
        if kind == "number":
            return f"if(match({raw}, '^-?[0-9]'), toFloat64OrNull({raw}), CAST(NULL AS Nullable(Float64)))"
        if kind == "bool":
            return f"multiIf({raw} = 'true', 1, {raw} = 'false', 0, CAST(NULL AS Nullable(UInt8)))"
        raise ValueError(f"attribute kind {kind!r}: use 'string', 'number' or 'bool'")

    def has_attribute(self, column_sql: str, name: str) -> str:
        return f"visitParamHas({column_sql}, '{_check_name(name)}')"

    def trunc(self, unit: TimeUnit, timestamp_sql: str) -> str:
        functions = {"day": "toDate", "week": "toMonday", "month": "toStartOfMonth"}
        if unit not in functions:
            raise ValueError(f"time unit {unit!r}: use 'day', 'week' or 'month'")
        return f"{functions[unit]}({timestamp_sql})"

    def quantile(self, q: float, expr: str) -> str:
        return f"quantile({_check_quantile(q)!r})({expr})"

    def quantiles(self, qs: Sequence[float], expr: str) -> str:
        levels = ", ".join(repr(_check_quantile(q)) for q in qs)
        return f"quantiles({levels})({expr})"

    def count_if(self, condition: str) -> str:
        return f"countIf({condition})"

    def arg_max(self, value: str, by: str) -> str:
        return f"argMax({value}, {by})"

    def arg_min(self, value: str, by: str) -> str:
        return f"argMin({value}, {by})"

    def to_string(self, expr: str) -> str:
        return f"toString({expr})"

    def epoch_seconds(self, timestamp_sql: str) -> str:
        return f"toInt64(toUInt32({timestamp_sql}))"

    def days_between(self, earlier_sql: str, later_sql: str) -> str:
        return f"(toInt64(toDate({later_sql})) - toInt64(toDate({earlier_sql})))"

    def timestamp(self, iso_text: str) -> str:
        return f"toDateTime('{_check_timestamp(iso_text)}', 'UTC')"

    # ClickHouse 18.16 has no function listing a JSON object's keys: a key is what follows ``{`` or
    # ``,`` in quotes before a colon (inside a string value a quote is escaped, so never follows those).
    _PAIRS = f"extractAll(ifNull(attributes, ''), '[{{,](\"{_NAME_REGEX}\":.)')"

    def attribute_names(self, where_sql: str) -> str:
        return (
            f"SELECT DISTINCT arrayJoin(extractAll(ifNull(attributes, ''), '[{{,]\"({_NAME_REGEX})\":')) AS k "
            f"FROM sessions WHERE {where_sql} ORDER BY k"
        )

    def attribute_kinds(self, where_sql: str) -> str:
        last = "substring(kv, length(kv), 1)"
        return (
            f"SELECT extract(kv, '^\"({_NAME_REGEX})\"') AS k, "
            f"multiIf({last} = '\"', 'string', {last} IN ('t', 'f'), 'bool', match({last}, '[-0-9]'), 'number', '') "
            f"AS t, count() AS n FROM sessions ARRAY JOIN {self._PAIRS} AS kv WHERE {where_sql} "
            "GROUP BY k, t HAVING t != '' ORDER BY n DESC, k"
        )

    def sample_rows(self, rows: int) -> str:
        return f"LIMIT {int(rows)}"


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


def _check_timestamp(text: str) -> str:
    if not _TIMESTAMP.match(text):
        raise ValueError(f"{text!r} is not a timestamp: write YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC)")
    return text if " " in text else text + " 00:00:00"


DUCKDB = DuckDBDialect()
CLICKHOUSE = ClickHouseDialect()
_DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, CLICKHOUSE)}


def dialect(name: str) -> Dialect:
    """The dialect called ``name`` ("duckdb" or "clickhouse")."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown SQL dialect {name!r}: use one of {', '.join(sorted(_DIALECTS))}") from None


def dialect_of(warehouse: HasDialect) -> Dialect:
    """The dialect of a warehouse (anything with a ``dialect`` name)."""
    return dialect(warehouse.dialect)


def attribute(column_sql: str, name: str, kind: AttributeKind = "string", *, engine: str = "duckdb") -> str:
    """Shortcut for ``dialect(engine).attribute(...)``."""
    return dialect(engine).attribute(column_sql, name, kind)


__all__ = [
    "CLICKHOUSE",
    "DUCKDB",
    "AttributeKind",
    "ClickHouseDialect",
    "Dialect",
    "DuckDBDialect",
    "TimeUnit",
    "attribute",
    "dialect",
    "dialect_of",
]
