"""The daily rollup: refreshed after each load, idempotent, never used stale, and the same answers as ``sessions``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tallystick import demo
from tallystick.analysis import AnalysisError, Filter, Scope, run
from tallystick.storage.local import LocalStore
from tallystick.warehouse import rollup
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader
from warehouse.conftest import put


def _load(directory: Path, n: int) -> Path:
    """``n`` demo sessions loaded into ``directory/wh.duckdb`` and rolled up; the file's path."""
    store = LocalStore(directory / "store")
    for s in demo.generate(n, users=40, seed=5):
        put(store, s)
    warehouse = DuckDBWarehouse(directory / "wh.duckdb")
    Loader(store, warehouse, workers=0).run()
    assert not rollup.is_fresh(warehouse, "'demo'")  # loading alone leaves derived tables to their step
    rollup.refresh(warehouse)
    warehouse.close()
    return directory / "wh.duckdb"


@pytest.fixture(scope="module")
def loaded_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """Factory: the warehouse file of ``n`` sessions, loaded once per size for the whole module (loading is
    most of each test's time); tests change only their own copy."""
    built: dict[int, Path] = {}

    def get(n: int) -> Path:
        if n not in built:
            built[n] = _load(tmp_path_factory.mktemp(f"rollup-{n}"), n)
        return built[n]

    return get


@pytest.fixture
def loaded(loaded_files: Callable[[int], Path], tmp_path: Path) -> Callable[..., DuckDBWarehouse]:
    """Factory: ``loaded(n=400)`` opens this test's own copy (``tmp_path/wh.duckdb``) of a loaded warehouse."""

    def open_copy(n: int = 400) -> DuckDBWarehouse:
        shutil.copyfile(loaded_files(n), tmp_path / "wh.duckdb")  # closed, so checkpointed: no WAL beside it
        return DuckDBWarehouse(tmp_path / "wh.duckdb")

    return open_copy


def test_refresh_after_a_load_is_fresh_and_idempotent(loaded: Callable[..., DuckDBWarehouse]) -> None:
    """After a load and a refresh the rollup is fresh, a second refresh redoes no day, and it counts every session."""
    warehouse = loaded()
    assert rollup.is_fresh(warehouse, "'demo'")
    assert rollup.refresh(warehouse) == 0
    total = warehouse.query(f"SELECT sum(sessions) FROM {rollup.TABLE}").rows[0][0]
    assert total == warehouse.query("SELECT count(*) FROM sessions").rows[0][0]
    warehouse.close()


def test_stale_after_a_delete_until_refreshed(loaded: Callable[..., DuckDBWarehouse]) -> None:
    """Deleting sessions makes the rollup stale (analyses stop using it); a refresh redoes only that day."""
    warehouse = loaded()
    day = warehouse.query('SELECT min(CAST("sessionStartTime" AS DATE)) FROM sessions').rows[0][0]
    warehouse.delete_sessions(f"CAST(\"sessionStartTime\" AS DATE) = DATE '{day}'")
    assert not rollup.is_fresh(warehouse, "'demo'")
    assert rollup.refresh(warehouse) == 1
    assert rollup.is_fresh(warehouse, "'demo'")
    warehouse.close()


CASES = [
    ("adoption", {}),
    ("nudges", {}),
    ("breakdown", {"attribute": "shell"}),
    ("breakdown", {"attribute": "shell", "every": "week"}),
    ("breakdown", {"attribute": "pythonVersion", "every": "month"}),
    ("breakdown", {"attribute": "ciSystem"}),
    ("feature-impact", {"feature": "tabCompletion", "outcome": "UnknownCommand"}),
    ("feature-impact", {"feature": "tabCompletion", "exit_code": 1}),
    ("common-factor", {"event": "ContainerStartFailed"}),
    ("common-factor", {"exit_code": 3}),
    ("distribution", {"attribute": "projectTasks"}),
    ("distribution", {"attribute": "projectTasks", "per": "user"}),
]


def _answer(warehouse: DuckDBWarehouse, name: str, scope: Scope, params: dict[str, Any]) -> tuple[Any, ...]:
    """Summary and tables, or the refusal, which must be the same either way too."""
    try:
        report = run(warehouse, name, scope, **params)
    except AnalysisError as exc:
        return ("refused", type(exc).__name__, str(exc))
    return (report.summary, report.tables)


# Analyses that read events or spans: with attribute filters they are restricted to the sessions that
# pass them, found from sessions_typed's columns while fresh.
FILTERED_CASES = [
    ("spans", {"span": "LoadConfig", "attribute": "isCI"}),
    ("event-rate", {"event": "UpdateNudgeShown"}),
    ("event-rate", {"exit_code": 1}),
    ("timing", {}),
]


def test_analyses_answer_alike_with_and_without_the_rollup(loaded: Callable[..., DuckDBWarehouse]) -> None:
    """Analyses that read the rollup give what they give from ``sessions`` (rollup dropped), filters included."""
    warehouse = loaded(1500)
    scopes = [
        Scope("demo"),
        Scope("demo", where=(Filter("shell", "fish"),)),
        Scope("demo", where=(Filter("command", "build"),)),
        Scope("demo", where=(Filter("projectTasks", "12"), Filter("isCI", "false"))),
        Scope("demo", versions=("1.0.0", "1.1.0"), where=(Filter("command", "test"),)),
    ]
    assert rollup.is_fresh(warehouse, "'demo'")
    assert {"shell", "tabCompletion", "projectTasks", "command"} <= rollup.typed_attributes(warehouse)
    cases = CASES + FILTERED_CASES
    with_rollup = [_answer(warehouse, name, s, p) for name, p in cases for s in scopes]
    refused = [a for a in with_rollup if a[0] == "refused"]
    assert len(refused) < len(with_rollup) / 10, refused  # a narrow scope may leave nothing to compare
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    assert [_answer(warehouse, name, s, p) for name, p in cases for s in scopes] == with_rollup
    warehouse.close()


def _spans(warehouse: DuckDBWarehouse, scope: Scope) -> int:
    report = run(warehouse, "timing", scope)
    return sum(row[2] for row in report.table("by_version").rows)


def test_filters_restrict_events_and_spans_through_the_typed_columns_while_fresh(
    loaded: Callable[..., DuckDBWarehouse],
) -> None:
    """A filtered scope finds its sessions in ``sessions_typed`` while fresh (timing's spans follow a value
    changed only there), and in the JSON of ``sessions`` once stale."""
    warehouse = loaded(1500)
    fish = Scope("demo", where=(Filter("shell", "fish"),))
    every, real = _spans(warehouse, Scope("demo")), _spans(warehouse, fish)
    assert 0 < real < every
    warehouse.query(f"UPDATE {rollup.TYPED_TABLE} SET \"{rollup.TYPED_PREFIX}shell\" = 'fish'")
    assert _spans(warehouse, fish) == every
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    assert _spans(warehouse, fish) == real
    warehouse.close()


def test_a_sessions_typed_made_before_the_session_key_is_unused_then_made_anew(
    loaded: Callable[..., DuckDBWarehouse],
) -> None:
    """``sessions_typed`` made before it kept each session ID's hash: not fresh (filtered spans found through the
    JSON, the same answer), and the next refresh makes it anew with the hash of every session."""
    warehouse = loaded(1500)
    fish = Scope("demo", where=(Filter("shell", "fish"),))
    real = _spans(warehouse, fish)
    warehouse.query(f"ALTER TABLE {rollup.TYPED_TABLE} DROP COLUMN {rollup.SESSION_KEY}")
    assert not rollup.is_fresh(warehouse, "'demo'")
    assert _spans(warehouse, fish) == real
    assert rollup.refresh(warehouse) > 0
    assert rollup.is_fresh(warehouse, "'demo'")
    assert (
        warehouse.query(
            f'SELECT count(*) FROM {rollup.TYPED_TABLE} t JOIN sessions s ON t."sessionId" = s."sessionId" '
            f'WHERE t.{rollup.SESSION_KEY} = hash(s."sessionId")'
        ).rows
        == warehouse.query("SELECT count(*) FROM sessions").rows
    )
    assert _spans(warehouse, fish) == real
    warehouse.close()


def test_a_filter_on_a_number_matches_what_the_json_path_matches(loaded: Callable[..., DuckDBWarehouse]) -> None:
    """A number DuckDB writes otherwise than Python (0.00001 for 1e-05) is matched by the same filter text
    from ``sessions_typed`` as from the JSON: the text ``json_extract_string`` gives, not Python's."""
    warehouse = loaded(1500)
    warehouse.query(
        """INSERT INTO sessions SELECT * REPLACE ('copy-' || "sessionId" AS "sessionId",
        json_merge_patch(attributes, '{"ratio": 1e-05}') AS attributes) FROM sessions WHERE "sessionId" < '8'"""
    )
    rollup.refresh(warehouse)
    assert rollup.is_fresh(warehouse, "'demo'")
    scopes = [Scope("demo", where=(Filter("ratio", text),)) for text in ("0.00001", "1e-05")]
    asked = [
        ("event-rate", {"exit_code": 1}),
        ("breakdown", {"attribute": "command"}),
        ("distribution", {"attribute": "ratio"}),
    ]

    def answers() -> list[tuple[Any, ...]]:
        return [_answer(warehouse, name, scope, params) for name, params in asked for scope in scopes]

    with_rollup = answers()
    assert with_rollup[1][0] == "refused"  # 1e-05 is not what json_extract_string gives
    assert (
        with_rollup[0][0]["sessions"]
        == warehouse.query("SELECT count(*) FROM sessions WHERE \"sessionId\" LIKE 'copy-%'").rows[0][0]
    )
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    assert answers() == with_rollup
    warehouse.close()


def test_a_new_attribute_gets_a_column_on_every_day(loaded: Callable[..., DuckDBWarehouse]) -> None:
    """An attribute first seen in a later load gets its own column, and every day is redone to fill it."""
    warehouse = loaded()
    days = warehouse.query(f"SELECT count(*) FROM {rollup.DAYS_TABLE}").rows[0][0]
    warehouse.query(
        """INSERT INTO sessions SELECT * REPLACE ('new-' || "sessionId" AS "sessionId",
        json_merge_patch(attributes, '{"newThing": 7}') AS attributes) FROM sessions LIMIT 1"""
    )
    assert rollup.refresh(warehouse) == days
    assert "newThing" in rollup.typed_attributes(warehouse)
    assert rollup.is_fresh(warehouse, "'demo'")
    filled = warehouse.query(f'SELECT count("{rollup.TYPED_PREFIX}newThing") FROM {rollup.TYPED_TABLE}').rows[0][0]
    assert filled == 1
    warehouse.close()


def _shells(warehouse: DuckDBWarehouse) -> set[str]:
    report = run(warehouse, "common-factor", Scope("demo"), event="ContainerStartFailed")
    return {row[1] for table in report.tables for row in table.rows if row[0] == "shell"}


def test_common_factor_samples_the_typed_columns_while_fresh(loaded: Callable[..., DuckDBWarehouse]) -> None:
    """common-factor reads its sample's attributes from ``sessions_typed`` while fresh, from the JSON once stale."""
    warehouse = loaded(1500)
    real = _shells(warehouse)
    assert real and "tampered" not in real
    warehouse.query(f"UPDATE {rollup.TYPED_TABLE} SET \"{rollup.TYPED_PREFIX}shell\" = 'tampered'")
    assert _shells(warehouse) == {"tampered"}  # a value changed only in the typed table shows
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    assert _shells(warehouse) == real
    warehouse.close()


def test_common_factor_reads_the_json_for_numbers_duckdb_writes_otherwise(
    loaded: Callable[..., DuckDBWarehouse],
) -> None:
    """A number DuckDB writes otherwise than Python (0.00001 for 1e-05) sends common-factor back to the JSON."""
    warehouse = loaded(1500)
    warehouse.query(
        """INSERT INTO sessions SELECT * REPLACE ('copy-' || "sessionId" AS "sessionId",
        json_merge_patch(attributes, '{"ratio": 1e-05, "release": "24.10"}') AS attributes) FROM sessions"""
    )
    rollup.refresh(warehouse)
    assert rollup.is_fresh(warehouse, "'demo'")
    typed = warehouse.query(f'SELECT DISTINCT "{rollup.TYPED_PREFIX}ratio" FROM {rollup.TYPED_TABLE}').rows
    assert ("0.00001",) in typed  # not Python's text for the number
    with_rollup = run(warehouse, "common-factor", Scope("demo"), exit_code=3)
    factors = {(row[0], row[1]) for table in with_rollup.tables for row in table.rows}
    assert {("ratio", "1e-05"), ("release", "24.10")} <= factors
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    without = run(warehouse, "common-factor", Scope("demo"), exit_code=3)
    assert (with_rollup.summary, with_rollup.tables) == (without.summary, without.tables)
    warehouse.close()


# Refreshes the rollup of the warehouse argv[1], SIGKILLed just before the first statement starting with argv[2].
_DIE_AT = """
import os, signal, sys
from tallystick.warehouse import rollup
from tallystick.warehouse.duckdb import DuckDBWarehouse
warehouse = DuckDBWarehouse(sys.argv[1])
query = warehouse.query
def dying(sql, parameters=None):
    if sql.lstrip().startswith(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return query(sql, parameters)
warehouse.query = dying
rollup.refresh(warehouse)
"""


@pytest.mark.parametrize(
    "statement",
    [
        "BEGIN",
        "ALTER TABLE",
        f"DELETE FROM {rollup.TABLE} ",
        f"INSERT INTO {rollup.TABLE} ",
        f"INSERT INTO {rollup.TYPED_TABLE} ",
        f"INSERT INTO {rollup.DAYS_TABLE} ",
        "COMMIT",
    ],
)
def test_refresh_killed_midway_leaves_the_rollup_unused_then_redone(
    loaded: Callable[..., DuckDBWarehouse], tmp_path: Path, statement: str
) -> None:
    """SIGKILL at each step of a refresh: the rollup is left stale (analyses read ``sessions``), and the
    next refresh makes it fresh with every session counted once and the same answers."""
    warehouse = loaded(1500)
    warehouse.query(  # a later load: more sessions on every day, with a new attribute
        """INSERT INTO sessions SELECT * REPLACE ('new-' || "sessionId" AS "sessionId",
        json_merge_patch(attributes, '{"newThing": 7}') AS attributes) FROM sessions WHERE "sessionId" < '4'"""
    )
    expected = [(r.summary, r.tables) for r in (run(warehouse, name, Scope("demo"), **p) for name, p in CASES)]
    warehouse.close()
    path = tmp_path / "wh.duckdb"
    died = subprocess.run([sys.executable, "-c", _DIE_AT, str(path), statement], capture_output=True, timeout=120)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()

    warehouse = DuckDBWarehouse(path)
    assert not rollup.is_fresh(warehouse, "'demo'")
    assert [(r.summary, r.tables) for r in (run(warehouse, name, Scope("demo"), **p) for name, p in CASES)] == expected
    assert rollup.refresh(warehouse) > 0
    assert rollup.is_fresh(warehouse, "'demo'")
    sessions = warehouse.query("SELECT count(*) FROM sessions").rows[0][0]
    assert warehouse.query(f"SELECT sum(sessions) FROM {rollup.TABLE}").rows[0][0] == sessions
    assert warehouse.query(f"SELECT count(*), count(DISTINCT sessionId) FROM {rollup.TYPED_TABLE}").rows[0] == (
        sessions,
        sessions,
    )
    assert "newThing" in rollup.typed_attributes(warehouse)
    assert [(r.summary, r.tables) for r in (run(warehouse, name, Scope("demo"), **p) for name, p in CASES)] == expected
    warehouse.close()


@pytest.mark.parametrize("engine", ["clickhouse", "chdb"])
def test_clickhouse_keeps_sessions_typed_and_answers_alike(
    engine: str, loaded_files: Callable[[int], Path], request: Any
) -> None:
    """On ClickHouse 18.16 and chDB the refresh builds ``sessions_typed``; analyses read it while fresh (a value
    changed only there moves a filtered answer) and answer as from ``sessions`` once it is stale; a deletion
    takes the deleted sessions' typed rows with it, and the next refresh redoes only the days it touched."""
    from tallystick.warehouse import open_warehouse

    store = LocalStore(loaded_files(1500).parent / "store")  # the module's sessions; a load only reads them
    warehouse = open_warehouse(request.getfixturevalue(f"{engine}_spec"))
    Loader(store, warehouse, workers=0).run()
    assert not rollup.is_fresh(warehouse, "'demo'")
    assert rollup.refresh(warehouse) > 0
    assert rollup.is_fresh(warehouse, "'demo'") and rollup.refresh(warehouse) == 0
    assert {"shell", "tabCompletion", "projectTasks", "command"} <= rollup.typed_attributes(warehouse)
    typed_rows = warehouse.query(f"SELECT count() FROM {rollup.TYPED_TABLE}").rows[0][0]
    assert typed_rows == warehouse.query("SELECT count() FROM sessions").rows[0][0]

    scopes = [Scope("demo"), Scope("demo", where=(Filter("projectTasks", "12"), Filter("isCI", "false")))]
    cases = CASES + FILTERED_CASES
    with_typed = [_answer(warehouse, name, s, p) for name, p in cases for s in scopes]  # type: ignore[arg-type]
    fish = Scope("demo", where=(Filter("shell", "fish"),))
    every, real = _spans(warehouse, Scope("demo")), _spans(warehouse, fish)  # type: ignore[arg-type]
    assert 0 < real < every
    copied = '"sessionId", "applicationId", "applicationVersion", "sessionStartTime"'
    warehouse.query(
        f"INSERT INTO {rollup.TYPED_TABLE} ({copied}, \"{rollup.TYPED_PREFIX}shell\") SELECT {copied}, 'fish' "
        f"FROM {rollup.TYPED_TABLE} WHERE ifNull(\"{rollup.TYPED_PREFIX}shell\", '') != 'fish'"
    )
    assert _spans(warehouse, fish) == every  # type: ignore[arg-type]
    warehouse.query(f"DROP TABLE {rollup.DAYS_TABLE}")
    assert [_answer(warehouse, name, s, p) for name, p in cases for s in scopes] == with_typed  # type: ignore[arg-type]

    warehouse.query(f"TRUNCATE TABLE {rollup.TYPED_TABLE}")
    assert rollup.refresh(warehouse) > 0
    user, days = warehouse.query(
        'SELECT "userId", uniqExact(toDate("sessionStartTime")) AS d FROM sessions GROUP BY "userId" ORDER BY d LIMIT 1'
    ).rows[0]
    warehouse.delete_sessions('"userId" = ?', [user])
    assert warehouse.query(f'SELECT count() FROM {rollup.TYPED_TABLE} WHERE "userId" = ?', [user]).rows[0][0] == 0
    assert not rollup.is_fresh(warehouse, "'demo'")
    assert rollup.refresh(warehouse) == days
    assert rollup.is_fresh(warehouse, "'demo'")
    warehouse.close()
