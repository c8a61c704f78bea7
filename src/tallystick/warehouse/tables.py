"""Warehouse tables derived from the session Structs, so the schema is written once.

``sessions`` has one row per session with the Session's scalar fields; each
list-of-Struct field (``events``, ``spans``) becomes a child table with the
parent's identifying columns first. Column names are the wire names, so SQL
reads like the JSON a client sends: ``SELECT applicationVersion FROM sessions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import msgspec.inspect as mi

from tallystick.schema import Session

Kind = Literal["string", "timestamp", "attributes", "float"]

# Parent columns repeated in child tables so that common questions need no join.
PARENT_COLUMNS = ("sessionId", "userId", "applicationId", "applicationVersion")


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    source_field: str | None = None  # the Session field a child table is made from

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def unwrap(t: mi.Type) -> tuple[mi.Type, bool]:
    """The type under Annotated metadata and ``| None``, and whether ``None`` was allowed."""
    nullable = False
    while True:
        if isinstance(t, mi.Metadata):
            t = t.type
        elif isinstance(t, mi.UnionType) and t.includes_none and len(t.types) == 2:
            nullable = True
            t = next(m for m in t.types if not isinstance(m, mi.NoneType))
        else:
            return t, nullable


def _kind(t: mi.Type) -> Kind:
    if isinstance(t, mi.StrType):
        return "string"
    if isinstance(t, mi.DateTimeType):
        return "timestamp"
    if isinstance(t, mi.DictType):
        return "attributes"
    raise TypeError(f"no warehouse column kind for {t!r}")


def _scalar_columns(struct: mi.StructType) -> list[Column]:
    columns = []
    for f in struct.fields:
        t, nullable = unwrap(f.type)
        if isinstance(t, mi.ListType):
            continue
        columns.append(Column(f.encode_name, _kind(t), nullable or not f.required))
    return columns


@cache
def tables() -> tuple[Table, ...]:
    """sessions, then one child table per list field (events, spans)."""
    info = mi.type_info(Session)
    assert isinstance(info, mi.StructType)
    session_columns = _scalar_columns(info)
    by_name = {c.name: c for c in session_columns}
    result = [Table("sessions", (*session_columns, Column("durationMs", "float", False)))]
    for f in info.fields:
        t, _ = unwrap(f.type)
        if isinstance(t, mi.ListType):
            item, _ = unwrap(t.item_type)
            assert isinstance(item, mi.StructType)
            columns = [by_name[name] for name in PARENT_COLUMNS]
            columns.append(Column("sessionStartTime", "timestamp", False))
            columns += _scalar_columns(item)
            if {"startTime", "endTime"} <= {c.name for c in columns}:
                columns.append(Column("durationMs", "float", False))
            result.append(Table(f.encode_name, tuple(columns), source_field=f.name))
    return tuple(result)


def table(name: str) -> Table:
    for t in tables():
        if t.name == name:
            return t
    raise KeyError(name)


# The environment attributes the client records on every session (``client/_session.py``, ``describe``),
# with their kinds: the ``sessions_env`` view gives each a typed column; every other
# attribute stays queryable by name in the ``attributes`` JSON column. A test checks
# this list against what the client actually records.
ENVIRONMENT_ATTRIBUTES: tuple[tuple[str, Literal["string", "number", "bool"]], ...] = (
    ("osName", "string"),
    ("osVersion", "string"),
    ("osArchitecture", "string"),
    ("osDistribution", "string"),
    ("osDistributionVersion", "string"),
    ("pythonImplementation", "string"),
    ("pythonVersion", "string"),
    ("shell", "string"),
    ("terminal", "string"),
    ("interactive", "bool"),
    ("ci", "bool"),
    ("ciSystem", "string"),
    ("container", "bool"),
    ("containerSystem", "string"),
)
