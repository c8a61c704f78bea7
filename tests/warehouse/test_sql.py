"""The dialect helpers give the same answers on DuckDB, ClickHouse 18.16 and chDB; views and typed columns."""

from __future__ import annotations

import io
import sys
from datetime import date, datetime

import pytest

from sessions import session
from tallystick.client import _environment
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Warehouse
from tallystick.warehouse.loader import Loader
from tallystick.warehouse.sql import dialect
from tallystick.warehouse.tables import ENVIRONMENT_ATTRIBUTES
from warehouse.conftest import put

USER = "5a1c2e3f-4b5d-4c6e-8f70-8192a3b4c5d6"


@pytest.fixture
def loaded(store: LocalStore, warehouse: Warehouse) -> Warehouse:
    attributes = {"shell": "fish", "size": 12, "ratio": 0.5, "isCI": True, "nothing": None, "text": 'a"b\\c'}
    put(
        store,
        session(
            userId=USER,
            sessionStartTime="2026-05-06T12:00:00Z",
            sessionEndTime="2026-05-06T12:00:01Z",
            attributes=attributes,
        ),
    )
    put(
        store,
        session(
            userId=USER,
            sessionStartTime="2026-05-06T13:00:00Z",
            sessionEndTime="2026-05-06T13:00:03Z",
            applicationVersion="1.5.0",
            attributes={"shell": 3, "osName": "Linux", "ci": False},
        ),
    )
    Loader(store, warehouse).run()
    return warehouse


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("shell", "string", ["fish", None]),
        ("shell", "number", [None, 3.0]),
        ("size", "number", [12.0, None]),
        ("ratio", "number", [0.5, None]),
        ("isCI", "bool", [True, None]),
        ("nothing", "string", [None, None]),
        ("text", "string", ['a"b\\c', None]),
        ("missing", "bool", [None, None]),
    ],
    ids=str,
)
def test_attribute_extracts_typed_values(loaded: Warehouse, name: str, kind: str, expected: list[object]) -> None:
    """An attribute of the wrong type, null or absent is NULL; the rest come back typed."""
    d = loaded.sql
    rows = loaded.query(
        f'SELECT {d.attribute("attributes", name, kind)} FROM sessions ORDER BY "sessionStartTime"'  # type: ignore[arg-type]
    ).rows
    assert [r[0] for r in rows] == expected


def test_time_and_aggregate_helpers(loaded: Warehouse) -> None:
    """Day, week and month truncation, quantiles, count_if and arg_max agree across engines."""
    d = loaded.sql
    start = '"sessionStartTime"'
    duration, version = '"durationMs"', '"applicationVersion"'
    parts = [
        d.day(start),
        d.trunc("week", start),
        d.trunc("month", start),
        d.quantile(0.5, duration),
        d.quantiles([0.0, 1.0], duration),
        d.count_if(f"{duration} > 1500"),
        d.arg_max(version, start),
        d.days_between(d.timestamp("2026-05-01"), start),
    ]
    selected = ", ".join(f"{p} AS c{i}" for i, p in enumerate(parts))
    # ClickHouse 18.16 has no positional GROUP BY: group by aliases.
    rows = loaded.query(f"SELECT {selected} FROM sessions GROUP BY c0, c1, c2, c7").rows
    assert rows == [(date(2026, 5, 6), date(2026, 5, 4), date(2026, 5, 1), 2000.0, [1000.0, 3000.0], 1, "1.5.0", 5)]


def test_parameters_bind_on_every_engine(loaded: Warehouse) -> None:
    """``?`` placeholders take strings and datetimes, quotes included."""
    rows = loaded.query(
        "SELECT count(*) FROM sessions WHERE \"userId\" = ? AND \"sessionStartTime\" >= ? AND '?' = '?'",
        [USER, datetime(2026, 5, 6, 12, 30)],
    ).rows
    assert rows == [(1,)]


def test_views_answer_common_questions(loaded: Warehouse) -> None:
    """user_days has one row per user and day; sessions_env has typed environment columns."""
    assert loaded.query(
        'SELECT "day", "sessionCount", "lastVersion", "totalDurationMs" FROM user_days WHERE "userId" = ?', [USER]
    ).rows == [(date(2026, 5, 6), 2, "1.5.0", 4000.0)]
    rows = loaded.query('SELECT "osName", "ci", "shell" FROM sessions_env ORDER BY "sessionStartTime"').rows
    assert rows == [(None, None, "fish"), ("Linux", False, None)]


def test_environment_columns_match_what_the_client_records() -> None:
    """The typed columns of sessions_env are exactly the attributes the client's environment describes."""
    described = _environment.describe({"SHELL": "/bin/zsh", "CI": "true"}, io.StringIO(), io.StringIO())
    kinds = {bool: "bool", str: "string", int: "number", float: "number", type(None): "string"}
    names = dict(ENVIRONMENT_ATTRIBUTES)
    if not sys.platform.startswith("linux"):
        names = {k: v for k, v in names.items() if not k.startswith("osDistribution")}
    assert set(described) == set(names)
    for name, value in described.items():
        assert value is None or kinds[type(value)] == names[name], name


def test_unknown_names_are_refused() -> None:
    """Attribute names that could inject SQL, unknown units and dialects raise ValueError with the rule."""
    with pytest.raises(ValueError, match="not an attribute name"):
        dialect("duckdb").attribute("attributes", "x') OR 1=1 --")
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        dialect("postgres")
    with pytest.raises(ValueError, match="time unit"):
        dialect("clickhouse").trunc("year", "x")  # type: ignore[arg-type]
