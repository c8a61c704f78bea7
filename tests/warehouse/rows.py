"""Turning a validated session into warehouse rows (times in UTC, durations derived)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from tallystick.schema import Session
from tallystick.warehouse.tables import PARENT_COLUMNS, Table, tables


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _row(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in table.columns:
        value = values.get(column.name)
        if column.kind == "timestamp" and value is not None:
            value = _utc(value)
        elif column.kind == "attributes" and value is None:
            value = {}
        row[column.name] = value
    return row


def _duration_ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000.0


def rows_of(session: Session) -> dict[str, list[dict[str, Any]]]:
    """One row for ``sessions`` and one per event and span, keyed by table name."""
    wire = msgspec.to_builtins(session, builtin_types=(datetime,))
    sessions_table, *children = tables()
    top = dict(wire)
    top["durationMs"] = _duration_ms(session.session_start_time, session.session_end_time)
    result = {sessions_table.name: [_row(sessions_table, top)]}
    parent = {name: wire[name] for name in (*PARENT_COLUMNS, "sessionStartTime")}
    for child in children:
        items = wire.get(child.name) or []
        out = []
        for item in items:
            values = {**parent, **item}
            if "startTime" in item:
                values["durationMs"] = _duration_ms(item["startTime"], item["endTime"])
            out.append(_row(child, values))
        result[child.name] = out
    return result
