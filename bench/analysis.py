"""How long does each built-in analysis take on 10 million sessions, in DuckDB and in ClickHouse?

    .venv/bin/python bench/analysis.py                    # 10,000,000 sessions, DuckDB then ClickHouse
    .venv/bin/python bench/analysis.py --sessions 1000000 # quicker
    .venv/bin/python bench/analysis.py --engines duckdb   # one engine
    .venv/bin/python bench/analysis.py --path big.duckdb --clickhouse-dir ch/  # keep both between runs
    .venv/bin/python bench/analysis.py --path big.duckdb --engines duckdb --only timing,spans  # some analyses

ClickHouse is Debian's ``clickhouse-server`` (18.16), started here on 127.0.0.1 with its
own data directory (the test suite's starter); the generated tables are copied into it
encoded as the loader writes them there (CSV over HTTP, ``transform.clickhouse_values_sql``),
one pass per table in slices of a million rowids, each exported while the previous one is
inserted (about 3 minutes for 10 million sessions); then ``sessions_typed`` is refreshed there
as the load cycle does (ClickHouse keeps no ``sessions_daily``: ``rollup.has_daily``).

Sessions, events and spans are generated straight into a DuckDB warehouse by SQL
(no HTTP, no storage), following the demo's model (``tallystick.demo``): a user
population with shells, Docker versions, tab completion and BuildKit; releases every
15 days, users lagging behind them (stubborn ones for good, automatic updates after
day 117), a nudge event on every outdated run; the same planted error and span effects;
ingestion on a later run. Then the derived tables are refreshed as the loader does after
a load (``tallystick.warehouse.rollup``; with ``--path`` only days that changed). Each
analysis runs three times (``--repeat``; fewer once its runs took ``--budget`` seconds) on
all sessions and as often with an attribute filter (``--where``, default ``shell=fish``,
about a third of the sessions); the best times are printed beside the best of three plain
``count(*)`` scans of ``sessions`` in the same run, with the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from tallystick import demo
from tallystick.analysis import BadParameter, Filter, Scope, run
from tallystick.warehouse import rollup
from tallystick.warehouse.base import WarehouseError
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.tables import tables
from tallystick.warehouse.transform import CLICKHOUSE_CSV, clickhouse_values_sql

END = datetime(2025, 6, 30, tzinfo=UTC)
DAYS = 180


def _u(i: str, salt: int) -> str:
    """A deterministic uniform [0, 1) from an integer column and a salt."""
    return f"((hash({i}, {salt}) % 1000003) / 1000003.0)"


def _uuid(expr: str) -> str:
    h = f"md5(CAST({expr} AS VARCHAR))"
    return (
        f"substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-4' || substr({h}, 14, 3) || '-a' || "
        f"substr({h}, 18, 3) || '-' || substr({h}, 21, 12)"
    )


def generate(con: duckdb.DuckDBPyConnection, sessions: int, users: int) -> None:
    t = demo.TRUTHS
    start = (END - timedelta(days=DAYS)).replace(tzinfo=None)
    step = DAYS / len(demo.RELEASES)
    releases = "[" + ", ".join(f"'{v}'" for v in demo.RELEASES) + "]"
    auto_day = DAYS * t.auto_update_day
    shells = demo.SHELLS
    cum = 0.0
    shell_case = "CASE"
    for name, w in shells:
        cum += w
        shell_case += f" WHEN {_u('u', 1)} < {cum} THEN '{name}'"
    shell_case += " ELSE 'sh' END"
    cum = 0.0
    docker_case = "CASE"
    for name, w in demo.DOCKER_VERSIONS:
        cum += w
        docker_case += f" WHEN {_u('u', 2)} < {cum} THEN '{name}'"
    docker_case += " ELSE '27.0.1' END"
    con.execute(f"""
        CREATE TEMP TABLE u AS SELECT u,
            {_uuid("'user' || u")} AS user_id,
            {shell_case} AS shell,
            CASE WHEN {_u("u", 3)} < 0.55 THEN 'Linux' WHEN {_u("u", 3)} < 0.9 THEN 'Darwin' ELSE 'Windows' END AS os,
            {docker_case} AS docker,
            {_u("u", 4)} < {t.tab_completion_share} AS tab,
            {_u("u", 5)} < {t.buildkit_share} AS buildkit,
            {_u("u", 6)} < {t.stubborn_share} AS stubborn,
            {_u("u", 7)} < {t.auto_update_share} AS auto,
            -ln(1 - {_u("u", 8)}) * 7 AS lag_days,
            {_u("u", 9)} * {t.auto_update_max_days} AS auto_days,
            greatest(1, round(exp(ln(12) + 0.8 * sqrt(-2 * ln(1 - {_u("u", 10)}))
                * cos(6.2831853 * {_u("u", 11)})))) AS tasks,
            {_u("u", 12)} < 0.2 AS ci
        FROM range({users}) r(u)
    """)
    con.execute(f"""
        CREATE TEMP TABLE g AS
        WITH s AS (
            SELECT i, CAST(floor(pow({_u("i", 20)}, 2) * {users}) AS BIGINT) AS u,
                   {_u("i", 21)} * {DAYS} AS day_f, {_u("i", 22)} AS r1, {_u("i", 23)} AS r2, {_u("i", 24)} AS r3,
                   {_u("i", 25)} AS r4, {_u("i", 26)} AS r5, {_u("i", 27)} AS r6
            FROM range({sessions}) r(i)
        ), v AS (
            SELECT s.*, u.*,
                CAST(floor(day_f / {step}) AS INTEGER) AS latest,
                CASE
                    WHEN u.stubborn THEN least(CAST(floor(day_f / {step}) AS INTEGER), CAST(floor(r6 * 2) AS INTEGER))
                    WHEN u.auto AND day_f - u.auto_days > {auto_day} THEN
                        greatest(CAST(floor((day_f - u.auto_days) / {step}) AS INTEGER), 0)
                    ELSE greatest(CAST(floor((day_f - u.lag_days) / {step}) AS INTEGER), 0)
                END AS ver,
                TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' + to_microseconds(CAST(day_f * 86400e6 AS BIGINT)) AS t0,
                (['build', 'test', 'lint', 'run', 'deploy', 'shell'])[1 + CAST(floor(r5 * 6) AS INTEGER)] AS command
            FROM s JOIN u USING (u)
        )
        SELECT *, {_uuid("'session' || i")} AS session_id,
            {releases}[1 + ver] AS version,
            r1 < {t.unknown_command_rate} * CASE WHEN tab THEN {1 + t.tab_completion_effect} ELSE 1 END AS unknown,
            r2 < CASE WHEN docker = '{t.bad_docker_version}' THEN {t.bad_docker_error_rate}
                      ELSE {t.other_docker_error_rate} END AS docker_error,
            r3 < {t.error_rate} AS error,
            exp(3.0 + 0.4 * (r4 - 0.5) * 3.4) AS config_ms,
            CASE WHEN command = 'build' THEN {t.build_image_median_ms} * exp(0.5 * (r4 - 0.5) * 3.4)
                 * CASE WHEN buildkit THEN {t.buildkit_ratio} ELSE 1 END END AS build_ms,
            exp(7.0 + (r6 - 0.5) * 3.4) AS task_ms
        FROM v
    """)
    con.execute("""
        INSERT INTO sessions SELECT session_id, user_id, t0,
            t0 + to_microseconds(CAST((60 + config_ms + coalesce(build_ms, 0) + task_ms) * 1000 AS BIGINT)),
            'demo', version,
            t0 + to_microseconds(CAST((1 + -ln(1 - r5) * 86400 * 1.5) * 1e6 AS BIGINT)),
            CAST('{"operatingSystem":"' || os || '","shell":"' || shell || '","isCI":' || ci || ',"command":"'
                 || command || '","exitCode":' || CASE WHEN unknown THEN 1 WHEN docker_error THEN 3 WHEN error THEN 2
                 ELSE 0 END || ',"dockerVersion":"' || docker || '","tabCompletion":' || tab || ',"buildKit":'
                 || buildkit || ',"projectTasks":' || CAST(tasks AS BIGINT) || '}' AS JSON),
            60 + config_ms + coalesce(build_ms, 0) + task_ms
        FROM g
    """)
    common = "session_id, user_id, 'demo', version, t0"
    con.execute(f"""
        INSERT INTO events
        SELECT {common}, 'UpdateNudgeShown', t0, CAST('{{}}' AS JSON) FROM g WHERE ver < latest
        UNION ALL SELECT {common}, 'UnknownCommand', t0, CAST('{{}}' AS JSON) FROM g WHERE unknown
        UNION ALL SELECT {common}, '{t.bad_docker_error}', t0, CAST('{{}}' AS JSON) FROM g
            WHERE docker_error AND NOT unknown
        UNION ALL SELECT {common}, 'Error', t0, CAST('{{}}' AS JSON) FROM g
            WHERE error AND NOT unknown AND NOT docker_error
    """)
    con.execute(f"""
        INSERT INTO spans
        SELECT {common}, 'LoadConfig', t0, t0 + to_microseconds(CAST(config_ms * 1000 AS BIGINT)), NULL, config_ms
        FROM g
        UNION ALL SELECT {common}, 'BuildImage', t0, t0 + to_microseconds(CAST(build_ms * 1000 AS BIGINT)),
            CAST('{{"buildKit":' || buildkit || '}}' AS JSON), build_ms FROM g WHERE build_ms IS NOT NULL
        UNION ALL SELECT {common}, 'RunTask', t0, t0 + to_microseconds(CAST(task_ms * 1000 AS BIGINT)),
            CAST('{{"command":"' || command || '"}}' AS JSON), task_ms FROM g
    """)
    con.execute("DROP TABLE g")
    con.execute("DROP TABLE u")
    con.execute("CHECKPOINT")


# A real scan of one column: DuckDB answers a bare count(*) from metadata.
BASELINE = "SELECT count(*) FROM sessions WHERE \"sessionId\" LIKE '%-4%'"

CASES = [
    ("adoption", {}),
    ("nudges", {}),
    ("spans", {"span": "BuildImage", "attribute": "buildKit"}),
    ("event-rate", {"event": "UnknownCommand"}),
    ("breakdown", {"attribute": "shell"}),
    ("feature-impact", {"feature": "tabCompletion", "outcome": "UnknownCommand"}),
    ("common-factor", {"event": "ContainerStartFailed"}),
    ("distribution", {"attribute": "projectTasks"}),
    ("timing", {}),
    ("completeness", {}),
]


def best_of(n: int, fn: object, budget: float = float("inf")) -> float:
    """The best of ``n`` runs, or of fewer once the runs so far took ``budget`` seconds (at least one)."""
    times: list[float] = []
    while len(times) < n and sum(times) < budget:
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def _filter(text: str) -> Filter:
    try:
        return Filter.parse(text)
    except BadParameter as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


ROOT = Path(__file__).resolve().parents[1]
CHUNK_ROWS = 1_000_000


def copy_to_clickhouse(
    source: DuckDBWarehouse, target: Any, tmp: Path, *, chunk_rows: int = CHUNK_ROWS, progress: bool = True
) -> None:
    """Copy sessions, events and spans as the loader writes them there (``transform.clickhouse_values_sql``:
    CSV, attributes as JSON text, times in whole seconds).

    One pass per table in slices of ``chunk_rows`` rowids (DuckDB reads a rowid range without
    scanning the rest), each exported while the previous one is inserted over HTTP.
    """
    target.ensure_schema()
    started = time.perf_counter()
    for table in tables():
        total = int(source.query(f'SELECT count(*) FROM "{table.name}"').rows[0][0])
        last = source.query(f'SELECT max(rowid) FROM "{table.name}"').rows[0][0]
        starts = list(range(0, int(last) + 1, chunk_rows)) if last is not None else []
        names = ", ".join(f'"{n}"' for n in table.names)
        insert = f'INSERT INTO "{table.name}" ({names}) FORMAT CSV'

        def export(i: int, first: int, name: str = table.name, t: Any = table) -> Path:
            part = tmp / f"{name}.{i}.csv"
            rows = f'(SELECT * FROM "{name}" WHERE rowid >= {first} AND rowid < {first + chunk_rows})'
            con = source.con.cursor()  # DuckDB connections are not shared between threads
            try:
                con.execute(f"COPY ({clickhouse_values_sql(t, rows)}) TO '{part}' ({CLICKHOUSE_CSV})")
            finally:
                con.close()
            return part

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(export, 0, 0) if starts else None
            for i in range(len(starts)):
                assert pending is not None
                part = pending.result()
                pending = pool.submit(export, i + 1, starts[i + 1]) if i + 1 < len(starts) else None
                target.transport.execute(insert, part.read_bytes())
                part.unlink()
                if progress:
                    done = min(total, (i + 1) * chunk_rows)
                    print(
                        f"  copying {table.name}: {done:,} of {total:,} rows, {time.perf_counter() - started:.0f} s",
                        file=sys.stderr,
                    )


def _counts(warehouse: Any) -> dict[str, int]:
    return {t.name: int(warehouse.query(f'SELECT count(*) FROM "{t.name}"').rows[0][0]) for t in tables()}


def measure(warehouse: Any, label: str, args: argparse.Namespace, where: tuple[Filter, ...]) -> None:
    """Each analysis's best time on all sessions and with the filter, against a count(*) scan."""
    counts = _counts(warehouse)
    print(f"\n== {label}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    print(f"load average {_load()}")
    baseline = best_of(args.repeat, lambda: warehouse.query(BASELINE))
    print(f"baseline: {BASELINE}: {baseline * 1000:.0f} ms (best of {args.repeat})")
    filtered = Scope("demo", where=where)
    print("filtered: --where " + ", ".join(f"{f.attribute}={f.value}" for f in where) + "\n")
    print(f"{'analysis':<16}{'seconds':>9}{'x baseline':>12}{'filtered':>10}{'x baseline':>12}  target 1 s")
    for name, params in CASES:
        if args.only and name not in args.only:
            continue
        times: list[float] = []
        for scope in (Scope("demo"), filtered):
            try:
                times.append(
                    best_of(args.repeat, lambda n=name, p=params, s=scope: run(warehouse, n, s, **p), args.budget)
                )
            except WarehouseError as exc:  # e.g. ClickHouse's HTTP timeout on a loaded machine: the others still run
                print(f"{name}: {exc}", file=sys.stderr)
                times.append(float("nan"))
        flag = "ok" if max(times) <= 1 else ("over with the filter" if times[0] <= 1 else "over")
        if any(math.isnan(t) for t in times):
            flag = "failed (stderr says why)"
        print(
            f"{name:<16}{times[0]:>9.3f}{times[0] / baseline:>12.1f}{times[1]:>10.3f}{times[1] / baseline:>12.1f}"
            f"  {flag}",
            flush=True,
        )
    print(f"load average {_load()}")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, help="default: sessions / 40")
    parser.add_argument("--path", type=Path, help="DuckDB file (default: a temporary one, deleted after)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each analysis, the best counts (default 3)")
    parser.add_argument(
        "--budget",
        type=float,
        default=10.0,
        help="seconds after which an analysis is not run again (default 10: slow ones run once or twice)",
    )
    parser.add_argument(
        "--clickhouse-dir",
        type=Path,
        help="the ClickHouse server's data directory, kept between runs: the copy is skipped when it "
        "already holds as many rows as the DuckDB file (default: a temporary one)",
    )
    parser.add_argument("--engines", default="duckdb,clickhouse", help="comma-separated: duckdb, clickhouse")
    parser.add_argument(
        "--where",
        type=_filter,
        action="append",
        help="attribute filter of the filtered runs, ATTRIBUTE=VALUE, repeatable (default: shell=fish)",
    )
    parser.add_argument(
        "--only",
        type=lambda text: {n.strip() for n in text.split(",") if n.strip()},
        help="comma-separated analyses to time (default: all): " + ", ".join(n for n, _ in CASES),
    )
    args = parser.parse_args()
    if args.only and args.only - {n for n, _ in CASES}:
        parser.error("--only takes analyses among: " + ", ".join(n for n, _ in CASES))
    engines = {e.strip() for e in args.engines.split(",") if e.strip()}
    if not engines or engines - {"duckdb", "clickhouse"}:
        parser.error("--engines takes duckdb, clickhouse or both, comma-separated")
    where = tuple(args.where or [Filter("shell", "fish")])
    with tempfile.TemporaryDirectory(prefix="tallystick-bench-") as tmp:
        path = args.path or Path(tmp) / "bench.duckdb"
        warehouse = DuckDBWarehouse(path)
        warehouse.ensure_schema()
        if not warehouse.query("SELECT count(*) FROM sessions").rows[0][0]:
            started = time.perf_counter()
            generate(warehouse.con, args.sessions, args.users or max(5, args.sessions // 40))
            print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        started = time.perf_counter()
        days = rollup.refresh(warehouse)  # what the loader does after each load
        print(f"rollup: {days} day(s) refreshed in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
        print(f"python {platform.python_version()}, duckdb {duckdb.__version__}, load average {_load()}")
        if "duckdb" in engines:
            measure(warehouse, "DuckDB (with its derived tables)", args, where)
        if "clickhouse" in engines:
            sys.path.insert(0, str(ROOT / "tests"))
            from fixtures.clickhouse import start_server  # the test suite's server starter, reused
            from tallystick.warehouse import open_warehouse

            server = start_server(args.clickhouse_dir or Path(tmp) / "clickhouse")
            try:
                target = open_warehouse(server.spec("bench"))
                target.ensure_schema()
                if _counts(target) == _counts(warehouse):
                    print(f"\nClickHouse already holds these tables ({args.clickhouse_dir}): not copied again")
                else:
                    target.drop_database()  # a partial copy of an interrupted run
                    started = time.perf_counter()
                    copy_to_clickhouse(warehouse, target, Path(tmp))
                    rows = sum(_counts(warehouse).values())
                    took = time.perf_counter() - started
                    print(
                        f"\ncopied {rows:,} rows into ClickHouse in {took:.0f} s ({rows / took:,.0f} rows/s), "
                        f"load average {_load()}"
                    )
                started = time.perf_counter()
                days = rollup.refresh(target)  # what the load cycle does after each load
                print(
                    f"ClickHouse's sessions_typed: {days} day(s) refreshed in {time.perf_counter() - started:.0f} s, "
                    f"load average {_load()}"
                )
                measure(target, "ClickHouse 18.16 server (with sessions_typed)", args, where)
                target.close()
            finally:
                server.stop()
        warehouse.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
