"""The SQL that differs between engines, in one place: everything that reads writes one SQL text.

Analyses, the dashboard (overview, explore, analyses), publishing, erasure and the
views write portable SQL and ask the warehouse's dialect for the few pieces that differ::

    d = warehouse.sql                  # or dialect_of(warehouse) / dialect("duckdb")
    sql = f"SELECT {d.day('sessionStartTime')} AS day, {d.attribute('attributes', 'shell')} AS shell, "
    sql += f"{d.quantile(0.9, 'durationMs')} AS p90 FROM sessions GROUP BY day, shell"

``DuckDBDialect`` and ``ClickHouseDialect`` (chDB speaks it too) are the two
implementations; the base class documents each piece and holds what is the same on
both. No module outside this one (and the engines' own warehouse modules) writes an
engine's function names or tests an engine's name to choose SQL; a test says so.

What is the same everywhere (and so needs no helper): the tables ``sessions``,
``events``, ``spans`` with wire-named columns, ``count(*)``, ``count(DISTINCT x)``,
``min``/``max``/``avg``/``sum``, ``CASE``, ``IN``, ``LIKE``, ``INTERVAL n DAY``,
``ORDER BY``/``LIMIT``, and ``?`` placeholders for parameters (every warehouse
binds them). Identifiers are camelCase, so quote them (``"sessionId"``) or keep
their case; both engines accept either.

Not portable to ClickHouse 18.16, so avoid: positional ``GROUP BY 1`` (an error) and
``ORDER BY 1`` (silently sorts by the constant 1!): group and order by an alias
instead; ``FILTER (WHERE ...)`` (use ``count_if``); ``::`` casts (use ``CAST(x AS
type)`` with a type both know, or a helper); ``WITH name AS (subquery)`` (use
``shared``). ``LIMIT n OFFSET m`` works on both.

Attributes are read two ways. ``attribute(column, name, kind)`` gives a typed value,
NULL when the JSON value is of another ``kind`` (``string``, ``number`` or ``bool``,
the names ``attribute_kinds`` reports). ``attribute_text`` gives any scalar as text
(``true``, ``12``, ``fish``): what a filter ``shell=fish`` or ``ci=true`` compares,
and ``text_number`` reads such a text as a number.

Literals inlined into analyses' SQL come from ``literal`` (after validation); names
only from our own validated inputs. The ClickHouse side keeps to what ClickHouse 18.16
(Debian's package) accepts, which current ClickHouse accepts too: the ``attributes``
column is the compact JSON text msgspec writes, read with ``visitParamExtract*`` (fast,
and exact for the flat objects the wire contract allows); there is no DateTime64, so
times have second resolution there (``durationMs`` columns keep the precise durations).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from tallystick.schema import _rules

if TYPE_CHECKING:
    from collections.abc import Sequence

AttributeKind = Literal["string", "number", "bool"]
TimeUnit = Literal["day", "week", "month"]

# The attribute-name rule as a bare regular expression, for the SQL that finds names in JSON text.
_NAME_REGEX = _rules.ATTRIBUTE_NAME_PATTERN.removeprefix("^").removesuffix(_rules.END)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


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


def _check_timestamp(text: str) -> str:
    if not _TIMESTAMP.match(text):
        raise ValueError(f"{text!r} is not a timestamp: write YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC)")
    return text if " " in text else text + " 00:00:00"


def _check_unit(unit: str) -> None:
    if unit not in ("day", "week", "month"):
        raise ValueError(f"time unit {unit!r}: use 'day', 'week' or 'month'")


def _check_kind(kind: str) -> None:
    if kind not in ("string", "number", "bool"):
        raise ValueError(f"attribute kind {kind!r}: use 'string', 'number' or 'bool'")


class Dialect:
    """The SQL pieces that differ between engines; one instance per engine."""

    name: str = ""

    # Attributes (the JSON ``attributes`` column)

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        """The attribute ``name`` as a typed value; NULL if absent, null or another type."""
        raise NotImplementedError

    def attribute_text(self, column_sql: str, name: str) -> str:
        """The attribute ``name`` as text whatever its type (``true``, ``12``, ``fish``); NULL if absent or null."""
        raise NotImplementedError

    def text_number(self, text_sql: str) -> str:
        """A text (as ``attribute_text`` gives it) as a DOUBLE; NULL if it is no number."""
        raise NotImplementedError

    def has_attribute(self, column_sql: str, name: str) -> str:
        """True (1 on ClickHouse) when the attribute is present, even if null."""
        raise NotImplementedError

    def attribute_names(self, where_sql: str) -> str:
        """A query of the distinct attribute names (column ``k``) of the sessions ``where_sql`` selects, sorted."""
        raise NotImplementedError

    def attribute_kinds(self, where_sql: str) -> str:
        """A query of (name, kind, sessions) over the sessions ``where_sql`` selects, commonest first;
        kind is an ``AttributeKind`` (null values are left out)."""
        raise NotImplementedError

    # Time

    def trunc(self, unit: TimeUnit, timestamp_sql: str) -> str:
        """The DATE a timestamp falls in: its day, its week (starting Monday) or its month."""
        raise NotImplementedError

    def day(self, timestamp_sql: str) -> str:
        """The DATE (UTC) of a timestamp."""
        return self.trunc("day", timestamp_sql)

    def epoch_seconds(self, timestamp_sql: str) -> str:
        """Whole seconds since 1970-01-01 UTC of a timestamp (truncated: ClickHouse keeps whole seconds)."""
        raise NotImplementedError

    def days_between(self, earlier_sql: str, later_sql: str) -> str:
        """Whole days from one DATE or timestamp to another (calendar days, UTC)."""
        raise NotImplementedError

    def timestamp(self, iso_text: str) -> str:
        """A timestamp literal (UTC) from ``YYYY-MM-DD[ HH:MM:SS]``."""
        raise NotImplementedError

    # Aggregates and numbers

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

    def user_key(self, column_sql: str = '"userId"') -> str:
        """A 64-bit hash of an ID, to count and group users by: integer keys hash and compare far faster
        than 36-character strings. Engines hash differently, but a collision among even a million
        users has a chance of about 1 in 30 million, so counts agree."""
        raise NotImplementedError

    def log_bin(self, value_sql: str, per_e: int) -> str:
        """Integer bin of ``value`` on a log scale, ``per_e`` bins per factor e (values below 1 µs clamp)."""
        raise NotImplementedError

    def sample(self, id_sql: str, fraction: float) -> str:
        """A condition true for about ``fraction`` of random UUIDs, the same rows on every engine."""
        if fraction >= 1:
            return "1 = 1"
        threshold = format(max(1, math.ceil(fraction * 65536)), "04x") if fraction * 65536 < 65536 else "ffff"
        return f"substring({id_sql}, 33, 4) < '{threshold}'"

    def sample_by(self, id_sql: str, fractions: Sequence[tuple[str, float]], *, every: bool = False) -> str:
        """A condition keeping about a fraction of the IDs in each group of rows: ``fractions`` pairs a condition
        (SQL) with the fraction of IDs to keep where it holds (the first that holds counts); rows of no group
        are all kept, and ``every`` says there are none (then one comparison drops most rows before the
        groups are told apart). For IDs random from their first four characters, as the version-4 UUIDs the
        schema requires of user IDs are: a comparison of the ID's start, cheaper than ``sample``'s
        ``substring``, and the same rows on every engine."""
        kept = [(condition, fraction) for condition, fraction in fractions if fraction < 1]
        if not kept:
            return "1 = 1"

        def below(fraction: float) -> str:
            return f"{id_sql} < '{format(round(kept_fraction(fraction) * 65536), '04x')}'"

        whens = " ".join(f"WHEN {condition} THEN {below(fraction)}" for condition, fraction in kept)
        chosen = f"(CASE {whens} ELSE 1 = 1 END)"
        return f"({below(max(f for _, f in kept))} AND {chosen})" if every and len(kept) == len(fractions) else chosen

    # Query shape and literals

    def shared(self, sql: str, **subqueries: str) -> str:
        """``sql`` with each ``{name}`` in it standing for a subquery that it reads more than once.

        DuckDB computes each once, as a materialized CTE (a large one computed twice was most of
        the time of ``nudges``); ClickHouse 18.16 has no WITH for subqueries, so there the
        subquery is pasted in at each use.
        """
        for name in subqueries:
            if not (name.isascii() and name.isidentifier()):
                raise ValueError(f"not a subquery name: {name!r}")
        return self._shared(sql, subqueries)

    def _shared(self, sql: str, subqueries: dict[str, str]) -> str:
        raise NotImplementedError

    def literal(self, value: object) -> str:
        """A SQL literal for a validated Python value (naive datetimes are UTC)."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return self._boolean(value)
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("not a finite number")
            return repr(value)
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return self.timestamp(value.strftime("%Y-%m-%d %H:%M:%S"))
        if isinstance(value, date):
            return self._date(value.isoformat())
        if isinstance(value, str):
            return self._string(value)
        raise TypeError(f"no SQL literal for {type(value).__name__}")

    def in_list(self, column_sql: str, values: Sequence[object]) -> str:
        return f"{column_sql} IN ({', '.join(self.literal(v) for v in values)})"

    def _boolean(self, value: bool) -> str:
        raise NotImplementedError

    def _date(self, iso_date: str) -> str:
        raise NotImplementedError

    def _string(self, text: str) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"


class DuckDBDialect(Dialect):
    name = "duckdb"

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        _check_kind(kind)
        path = f"'$.{_check_name(name)}'"
        json_types = {"string": "= 'VARCHAR'", "number": "IN ('BIGINT', 'UBIGINT', 'DOUBLE')", "bool": "= 'BOOLEAN'"}
        value = f"json_extract_string({column_sql}, {path})"
        if kind != "string":
            value = f"CAST({value} AS {'DOUBLE' if kind == 'number' else 'BOOLEAN'})"
        return f"CASE WHEN json_type({column_sql}, {path}) {json_types[kind]} THEN {value} END"

    def attribute_text(self, column_sql: str, name: str) -> str:
        return f"json_extract_string({column_sql}, '$.{_check_name(name)}')"

    def text_number(self, text_sql: str) -> str:
        return f"TRY_CAST({text_sql} AS DOUBLE)"

    def has_attribute(self, column_sql: str, name: str) -> str:
        return f"json_exists({column_sql}, '$.{_check_name(name)}')"

    def attribute_names(self, where_sql: str) -> str:
        return f"SELECT DISTINCT unnest(json_keys(attributes)) AS k FROM sessions WHERE {where_sql} ORDER BY 1"

    def attribute_kinds(self, where_sql: str) -> str:
        return (
            "SELECT k, CASE json_type(attributes, '$.' || k) WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'bool' "
            "WHEN 'BIGINT' THEN 'number' WHEN 'UBIGINT' THEN 'number' WHEN 'DOUBLE' THEN 'number' END AS t, "
            f"count(*) AS n FROM sessions, unnest(json_keys(attributes)) AS u(k) WHERE {where_sql} "
            "GROUP BY 1, 2 HAVING t IS NOT NULL ORDER BY 3 DESC, 1"
        )

    def trunc(self, unit: TimeUnit, timestamp_sql: str) -> str:
        _check_unit(unit)
        return f"CAST(date_trunc('{unit}', {timestamp_sql}) AS DATE)"

    def epoch_seconds(self, timestamp_sql: str) -> str:
        return f"CAST(floor(epoch({timestamp_sql})) AS BIGINT)"

    def days_between(self, earlier_sql: str, later_sql: str) -> str:
        return f"date_diff('day', CAST({earlier_sql} AS DATE), CAST({later_sql} AS DATE))"

    def timestamp(self, iso_text: str) -> str:
        return f"CAST('{_check_timestamp(iso_text)}' AS TIMESTAMP)"

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

    def user_key(self, column_sql: str = '"userId"') -> str:
        return f"hash({column_sql})"

    def log_bin(self, value_sql: str, per_e: int) -> str:
        return f"CAST(round(ln(greatest({value_sql}, 0.001)) * {int(per_e)}) AS BIGINT)"

    def _shared(self, sql: str, subqueries: dict[str, str]) -> str:
        for name in subqueries:
            sql = sql.replace("{" + name + "}", name)
        return "WITH " + ", ".join(f"{name} AS MATERIALIZED ({sub})" for name, sub in subqueries.items()) + " " + sql

    def _boolean(self, value: bool) -> str:
        return "true" if value else "false"

    def _date(self, iso_date: str) -> str:
        return f"DATE '{iso_date}'"

    def _string(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"


class ClickHouseDialect(Dialect):
    """ClickHouse 18.16 and newer (the same SQL runs on chDB 26.x)."""

    name = "clickhouse"

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        _check_kind(kind)
        raw = f"visitParamExtractRaw({column_sql}, '{_check_name(name)}')"
        if kind == "string":
            return (
                f"if(substring({raw}, 1, 1) = '\"', visitParamExtractString({column_sql}, '{name}'), "
                "CAST(NULL AS Nullable(String)))"
            )
        if kind == "number":
            return f"if(match({raw}, '^-?[0-9]'), toFloat64OrNull({raw}), CAST(NULL AS Nullable(Float64)))"
        return f"multiIf({raw} = 'true', 1, {raw} = 'false', 0, CAST(NULL AS Nullable(UInt8)))"

    def attribute_text(self, column_sql: str, name: str) -> str:
        raw = f"visitParamExtractRaw({column_sql}, '{_check_name(name)}')"
        return (
            f"if(visitParamHas({column_sql}, '{name}') AND {raw} != 'null', "
            f"if(substring({raw}, 1, 1) = '\"', visitParamExtractString({column_sql}, '{name}'), {raw}), NULL)"
        )

    def text_number(self, text_sql: str) -> str:
        return f"toFloat64OrNull({text_sql})"

    def has_attribute(self, column_sql: str, name: str) -> str:
        return f"visitParamHas({column_sql}, '{_check_name(name)}')"

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

    def trunc(self, unit: TimeUnit, timestamp_sql: str) -> str:
        _check_unit(unit)
        function = {"day": "toDate", "week": "toMonday", "month": "toStartOfMonth"}[unit]
        return f"{function}({timestamp_sql})"

    def epoch_seconds(self, timestamp_sql: str) -> str:
        return f"toInt64(toUInt32({timestamp_sql}))"

    def days_between(self, earlier_sql: str, later_sql: str) -> str:
        return f"(toInt64(toDate({later_sql})) - toInt64(toDate({earlier_sql})))"

    def timestamp(self, iso_text: str) -> str:
        return f"toDateTime('{_check_timestamp(iso_text)}', 'UTC')"

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

    def user_key(self, column_sql: str = '"userId"') -> str:
        return f"cityHash64({column_sql})"

    def log_bin(self, value_sql: str, per_e: int) -> str:
        return f"toInt64(round(log(greatest({value_sql}, 0.001)) * {int(per_e)}))"

    def _shared(self, sql: str, subqueries: dict[str, str]) -> str:
        for name, sub in subqueries.items():
            sql = sql.replace("{" + name + "}", f"({sub})")
        return sql

    def _boolean(self, value: bool) -> str:
        return "1" if value else "0"  # ClickHouse 18.16 has no boolean literal

    def _date(self, iso_date: str) -> str:
        return f"toDate('{iso_date}')"

    def _string(self, text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


DUCKDB = DuckDBDialect()
CLICKHOUSE = ClickHouseDialect()
_DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, CLICKHOUSE)}


def kept_fraction(fraction: float) -> float:
    """The fraction of random IDs that ``Dialect.sample_by`` keeps when asked for ``fraction`` (a whole number of
    65,536ths, at least one)."""
    return 1.0 if fraction >= 1 else max(1, math.ceil(fraction * 65536)) / 65536


def dialect(name: str) -> Dialect:
    """The dialect called ``name`` ("duckdb" or "clickhouse"; chDB speaks "clickhouse")."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown SQL dialect {name!r}: use one of {', '.join(sorted(_DIALECTS))}") from None


def dialect_of(warehouse: HasDialect) -> Dialect:
    """The dialect of a warehouse (anything with a ``dialect`` name)."""
    return dialect(warehouse.dialect)


__all__ = [
    "CLICKHOUSE",
    "DUCKDB",
    "AttributeKind",
    "ClickHouseDialect",
    "Dialect",
    "DuckDBDialect",
    "TimeUnit",
    "dialect",
    "dialect_of",
]
