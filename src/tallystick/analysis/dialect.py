"""The few SQL pieces that differ between DuckDB and ClickHouse, for the analyses' queries.

Everything engine-specific in ``analysis/`` goes through here, so an analysis is one SQL
text per question. Most pieces come from the warehouse's dialect
(``tallystick.warehouse.sql``); added here are what only analyses need: any scalar
attribute as text (``true``, ``12``, ``fish``, the way filters compare), log-scale
bins, and a sample of rows that is the same on every engine. Literals are inlined
(after validation) rather than bound, because
the two engines bind parameters differently; names come from our own validated inputs.
A subquery read twice in one question is written once, with ``shared``.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Literal

from tallystick.schema import _rules
from tallystick.warehouse.sql import dialect as warehouse_dialect

AttributeKind = Literal["string", "number", "boolean"]


def duckdb_typed(text_sql: str, kind: AttributeKind) -> str:
    """DuckDB SQL turning an attribute's text (as ``json_extract_string`` gives it) into ``kind``."""
    if kind == "number":
        return f"TRY_CAST({text_sql} AS DOUBLE)"
    if kind == "boolean":
        return f"coalesce({text_sql} = 'true', false)"
    return text_sql


class Dialect:
    """SQL fragments for one engine (``duckdb`` or ``clickhouse``)."""

    def __init__(self, name: str) -> None:
        if name not in ("duckdb", "clickhouse"):
            raise ValueError(f"unknown SQL dialect {name!r}")
        self.name = name
        self.base = warehouse_dialect(name)

    @property
    def clickhouse(self) -> bool:
        return self.name == "clickhouse"

    def attribute(self, column_sql: str, name: str, kind: AttributeKind = "string") -> str:
        """The attribute ``name`` of a JSON attributes column; NULL when absent or null.

        ``string`` gives any scalar as text (``true``, ``12``, ``fish``), ``number`` a
        DOUBLE, ``boolean`` true only for JSON ``true``.
        """
        if not _rules.is_attribute_name(name):
            raise ValueError(f"not an attribute name: {name!r}")
        if self.clickhouse:
            text = (
                f"if(visitParamHas({column_sql}, '{name}') AND visitParamExtractRaw({column_sql}, '{name}') != 'null', "
                f"if(substring(visitParamExtractRaw({column_sql}, '{name}'), 1, 1) = '\"', "
                f"visitParamExtractString({column_sql}, '{name}'), visitParamExtractRaw({column_sql}, '{name}')), NULL)"
            )
            if kind == "number":
                return f"toFloat64OrNull({text})"
            if kind == "boolean":
                return f"(visitParamExtractRaw({column_sql}, '{name}') = 'true')"
            return text
        return duckdb_typed(f"json_extract_string({column_sql}, '$.{name}')", kind)

    def shared(self, sql: str, **subqueries: str) -> str:
        """``sql`` with each ``{name}`` in it standing for a subquery that it reads more than once.

        DuckDB computes each once, as a materialized CTE (a large one computed twice was most of
        the time of ``nudges``); ClickHouse 18.16 has no WITH for subqueries, so there the
        subquery is pasted in at each use.
        """
        for name in subqueries:
            if not (name.isascii() and name.isidentifier()):
                raise ValueError(f"not a subquery name: {name!r}")
        if self.clickhouse:
            for name, sub in subqueries.items():
                sql = sql.replace("{" + name + "}", f"({sub})")
            return sql
        for name in subqueries:
            sql = sql.replace("{" + name + "}", name)
        return "WITH " + ", ".join(f"{name} AS MATERIALIZED ({sub})" for name, sub in subqueries.items()) + " " + sql

    def user_key(self, column_sql: str = '"userId"') -> str:
        """A 64-bit hash of an ID, to count and group users by: integer keys hash and compare far faster
        than 36-character strings. Engines hash differently, but a collision among even a million
        users has a chance of about 1 in 30 million, so counts agree."""
        return f"cityHash64({column_sql})" if self.clickhouse else f"hash({column_sql})"

    def day(self, column_sql: str) -> str:
        """The UTC date of a timestamp column."""
        return self.base.day(column_sql)

    def epoch_seconds(self, column_sql: str) -> str:
        """Whole seconds since 1970 (truncated: ClickHouse keeps whole seconds)."""
        if self.clickhouse:
            return f"toInt64(toUInt32({column_sql}))"
        return f"CAST(floor(epoch({column_sql})) AS BIGINT)"

    def log_bin(self, value_sql: str, per_e: int) -> str:
        """Integer bin of ``value`` on a log scale, ``per_e`` bins per factor e (values below 1 µs clamp)."""
        return (
            f"CAST(round(ln(greatest({value_sql}, 0.001)) * {per_e}) AS BIGINT)"
            if not self.clickhouse
            else (f"toInt64(round(log(greatest({value_sql}, 0.001)) * {per_e}))")
        )

    def sample(self, id_sql: str, fraction: float) -> str:
        """A condition true for about ``fraction`` of random UUIDs, the same rows on every engine."""
        if fraction >= 1:
            return "1 = 1"
        threshold = format(max(1, math.ceil(fraction * 65536)), "04x") if fraction * 65536 < 65536 else "ffff"
        return f"substring({id_sql}, 33, 4) < '{threshold}'"

    def literal(self, value: object) -> str:
        """A SQL literal for a validated Python value."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("not a finite number")
            return repr(value)
        if isinstance(value, datetime):
            return self.base.timestamp(value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S"))
        if isinstance(value, date):
            return f"toDate('{value.isoformat()}')" if self.clickhouse else f"DATE '{value.isoformat()}'"
        if isinstance(value, str):
            if self.clickhouse:
                return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            return "'" + value.replace("'", "''") + "'"
        raise TypeError(f"no SQL literal for {type(value).__name__}")

    def in_list(self, column_sql: str, values: list[str]) -> str:
        return f"{column_sql} IN ({', '.join(self.literal(v) for v in values)})"
