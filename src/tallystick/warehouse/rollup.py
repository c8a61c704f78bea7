"""A daily rollup of ``sessions`` that the analyses read instead of scanning every session.

``sessions_daily`` has one row per application, UTC day, user (as a 64-bit hash),
version and value of each environment attribute (``ENVIRONMENT_ATTRIBUTES``, as text,
the way analyses compare attributes): how many sessions, and ``userDayRows``, how many
rows that user has that day. Counting users per day and anything is then a
``count(*)`` of rows with ``userDayRows = 1`` plus an exact ``count(DISTINCT)`` over
the few users with several rows, instead of a distinct count over every session.

Design note
-----------
The rollup is derived from ``sessions`` only, one day at a time, and never edited in
place: ``refresh()`` finds the days whose fingerprint (session count and XOR of the
session-ID hashes) differs from what the rollup recorded in ``sessions_daily_days``,
and for each such day deletes its rollup rows and recomputes them, all in one
transaction. So:

- The loader calls ``refresh()`` once after its last batch commits. Killed before or
  during it: the transaction rolls back, the fingerprints of the new days still
  differ, and the next refresh (the next load, or any analysis, see below) redoes them.
- Deletions (retention, a user's data) change a day's fingerprint the same way.
- Refreshing twice is harmless: an up-to-date day matches and is skipped.
- Readers check freshness before use (``is_fresh``: per-day session counts against
  the recorded ones, one cheap scan of a date column); a stale rollup is not used,
  so an answer never comes from it unless it agrees with ``sessions``. (A delete and
  an insert of equally many sessions on one day between two refreshes would pass
  that check; every load and retention run refreshes, so that window is one run.)

DuckDB only for now: ClickHouse analyses keep reading ``sessions``.
"""

from __future__ import annotations

from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.tables import ENVIRONMENT_ATTRIBUTES

TABLE = "sessions_daily"
DAYS_TABLE = "sessions_daily_days"
ATTRIBUTES = tuple(name for name, _ in ENVIRONMENT_ATTRIBUTES)

_DAY = 'CAST("sessionStartTime" AS DATE)'


def _ddl() -> list[str]:
    attrs = "".join(f', "{a}" VARCHAR' for a in ATTRIBUTES)
    return [
        f'CREATE TABLE IF NOT EXISTS {TABLE} ("applicationId" VARCHAR NOT NULL, "day" DATE NOT NULL, '
        f'"userKey" UBIGINT NOT NULL, "applicationVersion" VARCHAR NOT NULL{attrs}, '
        '"sessions" BIGINT NOT NULL, "userDayRows" BIGINT NOT NULL)',
        f'CREATE TABLE IF NOT EXISTS {DAYS_TABLE} ("applicationId" VARCHAR NOT NULL, "day" DATE NOT NULL, '
        '"sessions" BIGINT NOT NULL, "fingerprint" UBIGINT NOT NULL)',
    ]


def _fingerprints() -> str:
    return (
        f'SELECT "applicationId", {_DAY} AS "day", count(*) AS "sessions", '
        'bit_xor(hash("sessionId")) AS "fingerprint" FROM sessions GROUP BY ALL'
    )


def supported(warehouse: Warehouse) -> bool:
    return warehouse.dialect == "duckdb"


def refresh(warehouse: Warehouse) -> int:
    """Recompute the rollup for every day that changed since the last refresh; the number of days redone."""
    if not supported(warehouse):
        return 0
    for sql in _ddl():
        warehouse.query(sql)
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
            warehouse.query(f"DELETE FROM {TABLE} WHERE {key}")
            warehouse.query(f"DELETE FROM {DAYS_TABLE} WHERE {key}")
            warehouse.query(
                f"INSERT INTO {TABLE} SELECT *, "
                'count(*) OVER (PARTITION BY "applicationId", "day", "userKey") FROM ('
                f'SELECT "applicationId", {_DAY} AS "day", hash("userId") AS "userKey", "applicationVersion"{attrs}, '
                "count(*) AS sessions FROM sessions "
                f'WHERE ("applicationId", {_DAY}) IN (SELECT "applicationId", "day" FROM _rollup_stale) '
                "GROUP BY ALL)"
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


def is_fresh(warehouse: Warehouse, app_sql: str) -> bool:
    """True when the rollup exists and records as many sessions per day of the application as ``sessions`` has."""
    if not supported(warehouse):
        return False
    present = warehouse.query(
        f"SELECT count(*) FROM information_schema.tables WHERE table_name IN ('{TABLE}', '{DAYS_TABLE}')"
    ).rows[0][0]
    if present != 2:
        return False
    differing = warehouse.query(
        f'SELECT count(*) FROM (SELECT {_DAY} AS "day", count(*) AS n FROM sessions WHERE "applicationId" = {app_sql} '
        f'GROUP BY ALL) s FULL JOIN (SELECT "day", "sessions" AS n FROM {DAYS_TABLE} '
        f'WHERE "applicationId" = {app_sql}) r ON s."day" = r."day" WHERE s.n IS DISTINCT FROM r.n'
    ).rows[0][0]
    return int(differing) == 0
