"""The dialect helpers give the same answers on DuckDB, ClickHouse 18.16 and chDB; views and typed columns."""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from datetime import date, datetime
from pathlib import Path

import pytest

import tallystick
from sessions import session
from tallystick.client import _session
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Warehouse
from tallystick.warehouse.dialect import dialect
from tallystick.warehouse.loader import Loader
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


def test_analysis_helpers_agree_across_engines(loaded: Warehouse) -> None:
    """Attributes as text and as numbers, user keys, log bins, epoch seconds and samples answer alike."""
    d = loaded.sql
    start, attrs = '"sessionStartTime"', "attributes"
    parts = [
        d.attribute_text(attrs, "shell"),
        d.text_number(d.attribute_text(attrs, "size")),
        d.attribute_text(attrs, "isCI"),
        d.attribute_text(attrs, "ci"),
        d.attribute_text(attrs, "nothing"),
        d.attribute_text(attrs, "text"),
        d.log_bin('"durationMs"', 4),
        d.epoch_seconds(start),
        d.sample('"sessionId"', 0.5),
        '"sessionId"',
    ]
    selected = ", ".join(f"{p} AS c{i}" for i, p in enumerate(parts))
    rows = loaded.query(f"SELECT {selected} FROM sessions ORDER BY {start}").rows
    assert [r[:8] for r in rows] == [
        ("fish", 12.0, "true", None, None, 'a"b\\c', 28, 1778068800),
        ("3", None, None, "false", None, None, 32, 1778072400),
    ]
    assert [bool(r[8]) for r in rows] == [str(r[9])[32:36] < "8000" for r in rows]
    assert loaded.query(f"SELECT count(DISTINCT {d.user_key()}) FROM sessions").rows == [(1,)]
    twice = d.shared("SELECT (SELECT count(*) FROM {x}) + (SELECT count(*) FROM {x})", x="SELECT 1 AS n FROM sessions")
    assert loaded.query(twice).rows == [(4,)]


def test_literals_read_back_as_given(loaded: Warehouse) -> None:
    """Each engine quotes strings, dates, times, booleans and NULL its own way; all read back as given."""
    d = loaded.sql
    values: list[object] = ["it's a \\ b", date(2026, 5, 6), datetime(2026, 5, 6, 12, 30), True, None, 1.5]
    rows = loaded.query("SELECT " + ", ".join(f"{d.literal(v)} AS c{i}" for i, v in enumerate(values))).rows
    assert list(rows[0]) == values
    versions = d.in_list('"applicationVersion"', ["1.5.0", "o'k"])
    assert loaded.query(f"SELECT count(*) FROM sessions WHERE {versions}").rows == [(1,)]


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
    described = _session.describe({"SHELL": "/bin/zsh", "CI": "true"}, io.StringIO(), io.StringIO())
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


def test_shared_subquery_is_a_cte_on_duckdb_and_pasted_on_clickhouse() -> None:
    """A subquery read twice is computed once on DuckDB; ClickHouse 18.16 (no WITH subqueries) gets it at each use."""
    sql = "SELECT * FROM {x} a JOIN {x} b ON a.n = b.n"
    assert dialect("duckdb").shared(sql, x="SELECT 1 AS n") == (
        "WITH x AS MATERIALIZED (SELECT 1 AS n) SELECT * FROM x a JOIN x b ON a.n = b.n"
    )
    assert dialect("clickhouse").shared(sql, x="SELECT 1 AS n") == (
        "SELECT * FROM (SELECT 1 AS n) a JOIN (SELECT 1 AS n) b ON a.n = b.n"
    )
    with pytest.raises(ValueError, match="subquery name"):
        dialect("duckdb").shared(sql, **{"x; DROP": "SELECT 1"})


# Function names (and clauses) of one engine only; SQL that needs them asks the dialect.
_ENGINE_ONLY = re.compile(
    r"(?<![.\w])(json_extract\w*|json_type|json_exists|json_keys|quantile_cont|date_trunc|date_diff|try_cast|epoch"
    r"|visitParam\w+|cityHash64|toDate\w*|toStartOf\w+|toMonday|toFloat64\w*|toU?Int\d+\w*|countIf|argMax|argMin"
    r"|arrayJoin|multiIf|extractAll|quantiles?)\s*\(|\bAS MATERIALIZED\b|\bUSING SAMPLE\b",
    re.IGNORECASE,
)
_SRC = Path(tallystick.__file__).parent
# The engines' own modules: the dialect, each warehouse, its sandbox and load path, DuckDB's derived tables.
_ENGINE_MODULES = {"dialect", "duckdb", "clickhouse", "sandbox", "transform", "rollup", "bigquery"}
_ENGINE_NAMES = {"duckdb", "clickhouse", "chdb"}


def _readers() -> list[Path]:
    """Every module of ``src/`` but the engines' own."""
    return [
        p
        for p in sorted(_SRC.rglob("*.py"))
        if not (p.parent.name == "warehouse" and p.stem in _ENGINE_MODULES) and "bigquery" not in p.parts
    ]


def test_engine_sql_is_written_only_in_the_dialect() -> None:
    """Outside the engines' modules no SQL names an engine's own function, and no code picks SQL by engine name:
    a second dialect layer (or a piece of one) fails here, whatever it is called."""
    found = []
    for path in _readers():
        source = path.read_text()
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and (m := _ENGINE_ONLY.search(token.string)):
                found.append(f"{path.relative_to(_SRC)}:{token.start[0]}: {m.group(0)}")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Compare):
                names = {n.value for n in [node.left, *node.comparators] if isinstance(n, ast.Constant)}
                names |= {
                    e.value
                    for n in node.comparators
                    if isinstance(n, ast.Tuple | ast.List | ast.Set)
                    for e in n.elts
                    if isinstance(e, ast.Constant)
                }
                if names & _ENGINE_NAMES:
                    found.append(f"{path.relative_to(_SRC)}:{node.lineno}: compares with an engine name")
    assert not found, "engine-specific SQL outside tallystick.warehouse.dialect:\n" + "\n".join(found)
