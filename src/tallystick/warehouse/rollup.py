"""Tables derived from ``sessions`` that the analyses read instead of parsing every session's JSON.

- ``sessions_daily``: one row per application, UTC day, user (as a 64-bit hash),
  version and value of each environment attribute (``ENVIRONMENT_ATTRIBUTES``, as
  text, the way analyses compare attributes): how many sessions, and
  ``userDayRows``, how many rows that user has that day. Users per day and anything
  are then a ``count(*)`` of rows with ``userDayRows = 1`` plus an exact
  ``count(DISTINCT)`` over the few users with several rows, instead of a distinct
  count over every session.
- ``sessions_typed``: ``sessions`` with the JSON ``attributes`` taken apart, one
  text column ``"attributes.NAME"`` per attribute name seen (at most
  ``MAX_TYPED_ATTRIBUTES``; holding what ``json_extract_string`` gives, so a number
  as DuckDB writes it: ``0.00001``, where Python writes ``1e-05``), and the
  user hash. Reading one attribute is then a column scan, not a JSON parse. On DuckDB also
  the session-ID hash (``SESSION_KEY``, 64-bit, ``session_keyed``): matching events or spans
  to sessions then reads integers from ``sessions_typed``, not 36-character IDs (feature-impact's
  pass 1.9 -> 1.3 CPU-s on 10 million sessions).

No table is derived from ``events``: one row per application, day, user, version and
event type would hold nearly as many rows as there are nudge events (4.3 against 4.9
million in ``bench/analysis.py``'s data, where a user runs the tool about once a day),
so it would save little for its refresh time and disk.

Design note
-----------
Both are derived from ``sessions`` only, one (application, day) at a time, and never
edited in place: ``refresh()`` finds the days whose fingerprint (session count and
XOR of the session-ID hashes) differs from what ``sessions_daily_days`` recorded,
deletes their derived rows and recomputes them, all in one transaction. So:

- ``tallystick load`` (and ``up``'s load cycle) calls ``refresh()`` after each load, as a
  step of its own (``Loader.run()`` only loads). Killed before or
  during it: the transaction rolls back, the fingerprints of the new days still
  differ, and the next refresh (the next load) redoes them. Meanwhile analyses do
  not use the stale tables (below), so they are slower, never wrong.
- Deletions (retention, a user's data) change a day's fingerprint the same way.
- Refreshing twice is harmless: an up-to-date day matches and is skipped.
- A new attribute name adds a column, and then every day is redone (its column
  would be empty on days done before).
- Readers check freshness first (``is_fresh``: per-day session counts against the
  recorded ones, one scan of a date column, ~40 ms on 10 million sessions) and fall
  back to ``sessions`` when stale. Sessions are immutable once loaded; a delete and
  an insert of equally many sessions on one day with no refresh between would pass
  that check (the fingerprint catches it at the next refresh, which every load runs).

On ClickHouse only ``sessions_typed`` (and its day fingerprints) is kept, refreshed the same way
without a transaction: the stale days' fingerprint rows are deleted first, then their typed
rows (mutations, waited for), the typed rows inserted again, and the fingerprints last. Killed
anywhere, those days are unrecorded, so readers ignore the table and the next refresh redoes
them. A deletion (``delete_sessions``) deletes the sessions' typed rows in the same batch of
mutations. Text columns hold what ``attribute_text`` gives there (a number as sent). Measured
on 10 million sessions (``bench/analysis.py``, ``docs/scale-out.md``): reading the ``attributes``
JSON is most of a filtered analysis's time on ClickHouse, as on DuckDB. ``sessions_daily``
is DuckDB only (``has_daily``): ClickHouse 18.16 lacks the window function its refresh uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tallystick.schema import _rules
from tallystick.warehouse.base import Queryable, Warehouse
from tallystick.warehouse.tables import ENVIRONMENT_ATTRIBUTES, table

TABLE = "sessions_daily"
TYPED_TABLE = "sessions_typed"
DAYS_TABLE = "sessions_daily_days"
ATTRIBUTES = tuple(name for name, _ in ENVIRONMENT_ATTRIBUTES)
MAX_TYPED_ATTRIBUTES = 100  # attribute names beyond this many stay in the JSON column only
TYPED_PREFIX = "attributes."
_SESSION_KEY_NAME = "sessionKey"
SESSION_KEY = f'"{_SESSION_KEY_NAME}"'  # hash("sessionId") in DuckDB's sessions_typed
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_DAY = 'CAST("sessionStartTime" AS DATE)'


def _ddl() -> list[str]:
    attrs = "".join(f', "{a}" VARCHAR' for a in ATTRIBUTES)
    return [
        f'CREATE TABLE IF NOT EXISTS {TABLE} ("applicationId" VARCHAR NOT NULL, "day" DATE NOT NULL, '
        f'"userKey" UBIGINT NOT NULL, "applicationVersion" VARCHAR NOT NULL{attrs}, '
        '"sessions" BIGINT NOT NULL, "userDayRows" BIGINT NOT NULL)',
        f"CREATE TABLE IF NOT EXISTS {TYPED_TABLE} AS SELECT * EXCLUDE (attributes), "
        f'0::UBIGINT AS "userKey", 0::UBIGINT AS {SESSION_KEY} FROM sessions LIMIT 0',
        f'CREATE TABLE IF NOT EXISTS {DAYS_TABLE} ("applicationId" VARCHAR NOT NULL, "day" DATE NOT NULL, '
        '"sessions" BIGINT NOT NULL, "fingerprint" UBIGINT NOT NULL)',
    ]


def _fingerprints() -> str:
    return (
        f'SELECT "applicationId", {_DAY} AS "day", count(*) AS "sessions", '
        'bit_xor(hash("sessionId")) AS "fingerprint" FROM sessions GROUP BY ALL'
    )


def _clickhouse(warehouse: Queryable) -> bool:
    return warehouse.dialect == "clickhouse"


def _present(warehouse: Queryable, names: Iterable[str]) -> set[str]:
    """Which of the tables ``names`` exist."""
    listed = ", ".join(f"'{n}'" for n in names)
    if _clickhouse(warehouse):
        sql = f"SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ({listed})"
    else:
        sql = f"SELECT table_name FROM information_schema.tables WHERE table_name IN ({listed})"
    return {str(r[0]) for r in warehouse.query(sql).rows}


def typed_attributes(warehouse: Queryable) -> set[str]:
    """Attribute names with a column of their own in ``sessions_typed`` (as text: ``attribute_text``)."""
    if _clickhouse(warehouse):
        sql = f"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '{TYPED_TABLE}'"
    else:
        sql = f"SELECT column_name FROM information_schema.columns WHERE table_name = '{TYPED_TABLE}'"
    rows = warehouse.query(sql).rows
    return {str(r[0])[len(TYPED_PREFIX) :] for r in rows if str(r[0]).startswith(TYPED_PREFIX)}


def _add_typed_columns(warehouse: Warehouse, stale_days: str) -> bool:
    """Give each new attribute name in the stale days a column; True if any was added (every day is then redone)."""
    have = typed_attributes(warehouse)
    rows = warehouse.query(
        f"SELECT DISTINCT unnest(json_keys(attributes)) FROM sessions WHERE {stale_days} AND attributes IS NOT NULL"
    ).rows
    new = sorted(str(r[0]) for r in rows if _rules.is_attribute_name(str(r[0])) and str(r[0]) not in have)
    new = new[: max(0, MAX_TYPED_ATTRIBUTES - len(have))]
    for name in new:
        warehouse.query(f'ALTER TABLE {TYPED_TABLE} ADD COLUMN "{TYPED_PREFIX}{name}" VARCHAR')
    return bool(new)


def supported(warehouse: Queryable) -> bool:
    """Whether the engine keeps derived tables (``sessions_typed``; ``sessions_daily`` if ``has_daily``)."""
    return warehouse.dialect in ("duckdb", "clickhouse")


def has_daily(warehouse: Queryable) -> bool:
    return warehouse.dialect == "duckdb"


def session_keyed(warehouse: Queryable) -> bool:
    """Whether a fresh ``sessions_typed`` has ``SESSION_KEY``, the session ID's ``Dialect.user_key`` hash."""
    return warehouse.dialect == "duckdb"


def _typed_unkeyed(warehouse: Queryable) -> bool:
    """DuckDB's ``sessions_typed`` exists but was made before ``SESSION_KEY``."""
    return bool(
        warehouse.query(
            f"SELECT (SELECT count(*) FROM information_schema.tables WHERE table_name = '{TYPED_TABLE}') "
            f"- (SELECT count(*) FROM information_schema.columns WHERE table_name = '{TYPED_TABLE}' "
            f"AND column_name = '{_SESSION_KEY_NAME}')"
        ).rows[0][0]
    )


def refresh(warehouse: Warehouse) -> int:
    """Recompute the rollup for every day that changed since the last refresh; the number of days redone."""
    if _clickhouse(warehouse):
        return _refresh_clickhouse(warehouse)
    if not supported(warehouse):
        return 0
    if _typed_unkeyed(warehouse):  # made before SESSION_KEY: made anew, every day redone
        warehouse.query(f"DROP TABLE {TYPED_TABLE}")
    present = warehouse.query(
        f"SELECT count(*) FROM information_schema.tables WHERE table_name IN ('{TABLE}', '{TYPED_TABLE}')"
    ).rows[0][0]
    for sql in _ddl():
        warehouse.query(sql)
    if present != 2:  # a derived table is new (first refresh, or an older rollup): redo every day
        warehouse.query(f"DELETE FROM {DAYS_TABLE}")
    attrs = "".join(f", json_extract_string(attributes, '$.{a}') AS \"{a}\"" for a in ATTRIBUTES)
    warehouse.query("BEGIN TRANSACTION")
    try:
        warehouse.query(
            f'CREATE OR REPLACE TEMP TABLE _rollup_stale AS SELECT coalesce(s."applicationId", r."applicationId") '
            'AS "applicationId", coalesce(s."day", r."day") AS "day", s."sessions", s."fingerprint" '
            f'FROM ({_fingerprints()}) s FULL JOIN {DAYS_TABLE} r ON s."applicationId" = r."applicationId" '
            'AND s."day" = r."day" WHERE s."sessions" IS DISTINCT FROM r."sessions" '
            'OR s."fingerprint" IS DISTINCT FROM r."fingerprint"'
        )
        stale = int(warehouse.query("SELECT count(*) FROM _rollup_stale").rows[0][0])
        if stale:
            key = '("applicationId", "day") IN (SELECT "applicationId", "day" FROM _rollup_stale)'
            stale_days = f'("applicationId", {_DAY}) IN (SELECT "applicationId", "day" FROM _rollup_stale)'
            if _add_typed_columns(warehouse, stale_days):
                # A new attribute column: the days done before have it empty, so redo them all.
                warehouse.query(f"DELETE FROM {DAYS_TABLE}")
                warehouse.query(
                    "INSERT INTO _rollup_stale SELECT * FROM ("
                    + _fingerprints()
                    + ') s WHERE ("applicationId", "day") '
                    'NOT IN (SELECT "applicationId", "day" FROM _rollup_stale)'
                )
                stale = int(warehouse.query("SELECT count(*) FROM _rollup_stale").rows[0][0])
            warehouse.query(f"DELETE FROM {TABLE} WHERE {key}")
            warehouse.query(f"DELETE FROM {DAYS_TABLE} WHERE {key}")
            warehouse.query(f"DELETE FROM {TYPED_TABLE} WHERE {stale_days}")
            warehouse.query(
                f"INSERT INTO {TABLE} SELECT *, "
                'count(*) OVER (PARTITION BY "applicationId", "day", "userKey") FROM ('
                f'SELECT "applicationId", {_DAY} AS "day", hash("userId") AS "userKey", "applicationVersion"{attrs}, '
                f"count(*) AS sessions FROM sessions WHERE {stale_days} GROUP BY ALL)"
            )
            typed = sorted(typed_attributes(warehouse))
            paths = ", ".join(f"'$.{a}'" for a in typed)
            columns = "".join(f', a[{i + 1}] AS "{TYPED_PREFIX}{a}"' for i, a in enumerate(typed))
            warehouse.query(
                f'INSERT INTO {TYPED_TABLE} BY NAME SELECT * EXCLUDE (attributes, a), hash("userId") AS "userKey", '
                f'hash("sessionId") AS {SESSION_KEY}{columns} FROM (SELECT *, '
                + (f"json_extract_string(attributes, [{paths}])" if typed else "NULL")
                + f" AS a FROM sessions WHERE {stale_days})"
            )
            warehouse.query(
                f'INSERT INTO {DAYS_TABLE} SELECT "applicationId", "day", "sessions", "fingerprint" '
                'FROM _rollup_stale WHERE "sessions" IS NOT NULL'
            )
        warehouse.query("DROP TABLE _rollup_stale")
        warehouse.query("COMMIT")
    except BaseException:
        warehouse.query("ROLLBACK")
        raise
    return stale


def forget_statements(warehouse: Warehouse, where_sql: str) -> list[str]:
    """SQL that drops the derived rows of the sessions matching ``where_sql``, run before they are deleted.

    ``delete_sessions`` runs these in its own transaction, so no derived row outlives its
    session even when the refresh after a deletion does not happen; that refresh then
    recomputes the days concerned (their fingerprints changed).
    """
    if not supported(warehouse):
        return []
    present = _present(warehouse, (TABLE, TYPED_TABLE))
    if _clickhouse(warehouse):  # sessions_typed has every column of sessions a deletion names but attributes
        return [f"ALTER TABLE {TYPED_TABLE} DELETE WHERE {where_sql}"] if TYPED_TABLE in present else []
    statements = []
    if TYPED_TABLE in present:
        statements.append(
            f'DELETE FROM {TYPED_TABLE} WHERE "sessionId" IN (SELECT "sessionId" FROM sessions WHERE {where_sql})'
        )
    if TABLE in present:
        statements.append(
            f'DELETE FROM {TABLE} WHERE ("applicationId", "day", "userKey") IN '
            f'(SELECT "applicationId", {_DAY}, hash("userId") FROM sessions WHERE {where_sql})'
        )
    return statements


def is_fresh(warehouse: Queryable, app_sql: str) -> bool:
    """True when the rollup exists and records as many sessions per day of the application as ``sessions`` has."""
    if not supported(warehouse):
        return False
    if _clickhouse(warehouse):
        if len(_present(warehouse, (TYPED_TABLE, DAYS_TABLE))) != 2:
            return False
        recorded = warehouse.query(
            f'SELECT toString("day") AS d, sum("sessions") AS n FROM {DAYS_TABLE} '
            f'WHERE "applicationId" = {app_sql} GROUP BY d'
        ).rows
        counts = warehouse.query(
            f'SELECT toString({_CH_DAY}) AS d, count() AS n FROM sessions WHERE "applicationId" = {app_sql} GROUP BY d'
        ).rows
        return {str(d): int(n) for d, n in recorded} == {str(d): int(n) for d, n in counts}
    if len(_present(warehouse, (TABLE, TYPED_TABLE, DAYS_TABLE))) != 3 or _typed_unkeyed(warehouse):
        return False  # absent, or made before SESSION_KEY (the next refresh makes it anew)
    differing = warehouse.query(
        f'SELECT count(*) FROM (SELECT {_DAY} AS "day", count(*) AS n FROM sessions WHERE "applicationId" = {app_sql} '
        f'GROUP BY ALL) s FULL JOIN (SELECT "day", "sessions" AS n FROM {DAYS_TABLE} '
        f'WHERE "applicationId" = {app_sql}) r ON s."day" = r."day" WHERE s.n IS DISTINCT FROM r.n'
    ).rows[0][0]
    return int(differing) == 0


_CH_DAY = 'toDate("sessionStartTime")'
_NO_DAY = "('', '')"  # an IN list matching nothing


def _days_in(column_sql: str, days: Iterable[tuple[str, str]]) -> str:
    """A condition on ClickHouse: (application, day) is one of ``days`` (validated names, ISO dates)."""
    listed = ", ".join(f"('{a}', '{d}')" for a, d in days if _rules.is_application_id(a) and _ISO_DAY.match(d))
    return f'("applicationId", toString({column_sql})) IN ({listed or _NO_DAY})'


def _refresh_clickhouse(warehouse: Warehouse) -> int:
    """``refresh`` on ClickHouse: ``sessions_typed`` only, in the order the module's note gives."""
    plain = ", ".join(f'"{c.name}"' for c in table("sessions").columns if c.kind != "attributes")
    warehouse.query(
        f'CREATE TABLE IF NOT EXISTS {TYPED_TABLE} ENGINE = MergeTree PARTITION BY toYYYYMM("sessionStartTime") '
        f'ORDER BY ("applicationId", {_CH_DAY}, "userKey") AS SELECT {plain}, cityHash64("userId") AS "userKey" '
        "FROM sessions LIMIT 0"
    )
    warehouse.query(
        f'CREATE TABLE IF NOT EXISTS {DAYS_TABLE} ("applicationId" String, "day" Date, "sessions" UInt64, '
        '"fingerprint" UInt64) ENGINE = MergeTree ORDER BY ("applicationId", "day")'
    )
    current = {
        (str(a), str(d)): (int(n), int(f))
        for a, d, n, f in warehouse.query(
            f'SELECT "applicationId", toString({_CH_DAY}) AS d, count() AS n, '
            'groupBitXor(cityHash64("sessionId")) AS f FROM sessions GROUP BY "applicationId", d'
        ).rows
    }
    recorded = {
        (str(a), str(d)): (int(n), int(f))
        for a, d, n, f in warehouse.query(
            f'SELECT "applicationId", toString("day"), "sessions", "fingerprint" FROM {DAYS_TABLE}'
        ).rows
    }
    stale = sorted(k for k in current.keys() | recorded.keys() if current.get(k) != recorded.get(k))
    if not stale:
        return 0
    have = typed_attributes(warehouse)
    rows = warehouse.query(warehouse.sql.attribute_names(_days_in(_CH_DAY, stale))).rows
    new = sorted(str(r[0]) for r in rows if _rules.is_attribute_name(str(r[0])) and str(r[0]) not in have)
    new = new[: max(0, MAX_TYPED_ATTRIBUTES - len(have))]
    for name in new:
        warehouse.query(f'ALTER TABLE {TYPED_TABLE} ADD COLUMN "{TYPED_PREFIX}{name}" Nullable(String)')
    if new:  # the days done before have the new columns empty: redo them all
        stale = sorted(current.keys() | recorded.keys())
    warehouse.delete_rows(DAYS_TABLE, _days_in('"day"', stale))
    warehouse.delete_rows(TYPED_TABLE, _days_in(_CH_DAY, stale))
    typed = sorted(typed_attributes(warehouse))
    names = "".join(f', "{TYPED_PREFIX}{a}"' for a in typed)
    values = "".join(f", {warehouse.sql.attribute_text('attributes', a)}" for a in typed)
    warehouse.query(
        f'INSERT INTO {TYPED_TABLE} ({plain}, "userKey"{names}) SELECT {plain}, cityHash64("userId"){values} '
        f"FROM sessions WHERE {_days_in(_CH_DAY, stale)}"
    )
    done = [(a, d, *current[(a, d)]) for a, d in stale if (a, d) in current]
    if done:
        rows_sql = ", ".join(f"('{a}', toDate('{d}'), {n}, {f})" for a, d, n, f in done)
        columns = '"applicationId", "day", "sessions", "fingerprint"'
        warehouse.query(f"INSERT INTO {DAYS_TABLE} ({columns}) VALUES {rows_sql}")
    return len(stale)
