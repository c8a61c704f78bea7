"""``tallystick query``'s SQL sandbox on DuckDB, the ClickHouse 18.16 server and chDB: one read-only
query, no files, no network, a time limit and a row limit, each refusal one line.

The command runs in this process (``cli.main``): chDB allows one session per process, so a
second process could not open the test's chDB directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sessions import session
from tallystick import cli
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Limits, QueryError, open_warehouse
from tallystick.warehouse.loader import Loader
from tallystick.warehouse.sandbox import clickhouse_subquery
from warehouse.conftest import load_all, put


@pytest.fixture
def loaded(warehouse_spec: str, store: LocalStore) -> str:
    """The engine's spec, its warehouse holding one session."""
    put(store, session(applicationId="demo"))
    load_all(store, warehouse_spec)
    return warehouse_spec


def engine(spec: str) -> str:
    return spec.split("://", maxsplit=1)[0] if "://" in spec else "duckdb"


def query(capsys: pytest.CaptureFixture[str], spec: str, sql: str, *flags: str) -> tuple[int, str, str]:
    code = cli.main(["query", "--warehouse", spec, "--format", "csv", *flags, sql])
    out, err = capsys.readouterr()
    return code, out, err


def refusal(capsys: pytest.CaptureFixture[str], spec: str, sql: str, *flags: str) -> str:
    """The one error line ``tallystick query`` prints for ``sql``, which must be refused."""
    code, out, err = query(capsys, spec, sql, *flags)
    assert code == 1, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tallystick: error: ")
    return lines[0]


def counts(spec: str) -> list[int]:
    warehouse = open_warehouse(spec)
    try:
        return [int(warehouse.query(f"SELECT count(*) FROM {t}").rows[0][0]) for t in ("sessions", "events", "spans")]
    finally:
        warehouse.close()


def test_a_query_answers(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The sandbox lets a plain query through, with its answer."""
    code, out, _ = query(capsys, loaded, "SELECT count(*) AS n FROM sessions WHERE \"applicationId\" = 'demo'")
    assert code == 0
    assert out.split() == ["n", "1"]


WRITES = {
    "insert": "INSERT INTO sessions SELECT * FROM sessions",
    "delete": "DELETE FROM events WHERE 1 = 1",
    "drop": "DROP TABLE spans",
    "create": "CREATE TABLE stolen AS SELECT 1 AS a",
    "truncate": "TRUNCATE TABLE events",
    "second statement": "SELECT 1; DROP TABLE spans",
    "second statement after a comment": "SELECT 1 -- x\n; INSERT INTO sessions SELECT * FROM sessions",
}


@pytest.mark.parametrize("sql", WRITES.values(), ids=WRITES.keys())
def test_writes_are_refused(loaded: str, capsys: pytest.CaptureFixture[str], sql: str) -> None:
    """A write, alone or behind a query, is refused in one line and the data stays as it was."""
    before = counts(loaded)
    refusal(capsys, loaded, sql)
    assert counts(loaded) == before


def test_settings_cannot_be_changed(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A statement that would turn the guards off is refused."""
    sql = "SET enable_external_access = true" if engine(loaded) == "duckdb" else "SET readonly = 0"
    assert "read-only" in refusal(capsys, loaded, sql)


def file_reads(spec: str, tmp_path: Path) -> dict[str, str]:
    tmp_path = tmp_path / "files"
    tmp_path.mkdir(exist_ok=True)
    secret = tmp_path / "secret.csv"
    secret.write_text("a\nTOPSECRET42\n")
    if engine(spec) == "duckdb":
        return {
            "read_csv": f"SELECT * FROM read_csv('{secret}')",
            "etc": "SELECT * FROM read_csv('/etc/passwd')",
            "copy": f"COPY sessions TO '{tmp_path}/out.csv'",
            "export": f"EXPORT DATABASE '{tmp_path}/export'",
            "attach": f"ATTACH '{tmp_path}/other.duckdb' AS other",
            "install": "INSTALL httpfs",
        }
    return {
        "file": f"SELECT * FROM file('{secret}', 'TSV', 'a String')",
        "etc": "SELECT * FROM file('/etc/passwd', 'TSV', 'a String')",
        "in subquery": f"SELECT * FROM (SELECT * FROM file('{secret}', 'TSV', 'a String'))",
        "outfile": f"SELECT 1 INTO OUTFILE '{tmp_path}/out.tsv'",
        "insert into file": f"INSERT INTO FUNCTION file('{tmp_path}/out.tsv', 'TSV', 'a String') VALUES ('x')",
    }


def test_files_are_out_of_reach(loaded: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Reading or writing local files (and installing extensions) is refused, each in one line; no file appears."""
    for sql in file_reads(loaded, tmp_path).values():
        line = refusal(capsys, loaded, sql)
        assert "TOPSECRET42" not in line and "root:" not in line, sql
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["secret.csv"]


def test_the_network_is_out_of_reach(
    loaded: str, capsys: pytest.CaptureFixture[str], counting_http_server: tuple[str, list[str]]
) -> None:
    """A query naming a URL is refused and no request leaves the engine."""
    url, hits = counting_http_server
    if engine(loaded) == "duckdb":
        sql = f"SELECT * FROM read_csv('{url}/data.csv')"
    else:
        sql = f"SELECT * FROM url('{url}/data.csv', 'CSV', 'a String, b String')"
    refusal(capsys, loaded, sql)
    assert hits == []


def test_without_the_sandbox_the_same_file_is_read(
    loaded: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The control: the engine itself reads that file, so it is the sandbox that refuses it."""
    if engine(loaded) == "clickhouse":  # the server reads files under its user_files directory only
        server = request.getfixturevalue("clickhouse_server")
        (server.directory / "user_files").mkdir(exist_ok=True)
        (server.directory / "user_files" / "secret.tsv").write_text("TOPSECRET42\n")
        sql = "SELECT * FROM file('secret.tsv', 'TSV', 'a String')"
    else:
        sql = file_reads(loaded, tmp_path)["read_csv" if engine(loaded) == "duckdb" else "file"]
    warehouse = open_warehouse(loaded, read_only=True)
    try:
        assert ("TOPSECRET42",) in warehouse.query(sql).rows
    finally:
        warehouse.close()
    assert "read-only" in refusal(capsys, loaded, sql) or "disabled" in refusal(capsys, loaded, sql)


def test_a_slow_query_is_stopped(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A query past the time limit is stopped by the engine and refused in one line."""
    if engine(loaded) == "duckdb":
        sql = "SELECT count(*) FROM range(10000000000) a, range(1000) b"
    else:
        sql = "SELECT count() FROM (SELECT number FROM system.numbers LIMIT 100000000000)"
    line = refusal(capsys, loaded, sql, "--timeout", "1s")
    assert "took too long" in line


def test_a_large_answer_is_refused(loaded: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An answer over --max-rows is refused, saying to add a LIMIT; one at the limit is printed."""
    source = "range(12) t(number)" if engine(loaded) == "duckdb" else "(SELECT number FROM system.numbers LIMIT 12)"
    line = refusal(capsys, loaded, f"SELECT number FROM {source}", "--max-rows", "5")
    assert "over 5 rows" in line and "LIMIT" in line
    code, out, _ = query(capsys, loaded, f"SELECT number FROM {source} ORDER BY 1 LIMIT 5", "--max-rows", "5")
    assert code == 0
    assert out.split() == ["number", "0", "1", "2", "3", "4"]


def test_chdb_loader_still_writes_beside_a_sandboxed_reader(chdb_spec: str, store: LocalStore) -> None:
    """The sandbox's settings hold for its own statements only (chDB shares one session per process)."""
    reader = open_warehouse(chdb_spec, sandbox=Limits())
    writer = open_warehouse(chdb_spec)
    try:
        writer.ensure_schema()
        with pytest.raises(QueryError, match="read-only"):
            reader.query("INSERT INTO sessions SELECT * FROM sessions")
        put(store, session())
        Loader(store, writer).run()
        assert reader.query("SELECT count(*) FROM sessions").rows == [(1,)]
    finally:
        reader.close()
        writer.close()


def test_chdb_statement_is_one_subquery() -> None:
    """chDB runs every statement of a text: the sandbox puts the text inside one subquery."""
    sql = clickhouse_subquery("SELECT 1 -- note;\n;", {"readonly": "1", "result_overflow_mode": "throw"})
    assert sql == "SELECT * FROM (\nSELECT 1 -- note;\n) SETTINGS readonly = 1, result_overflow_mode = 'throw'"


def test_a_query_naming_a_database_that_does_not_exist_is_the_querys_mistake(
    capsys: pytest.CaptureFixture[str], loaded: str
) -> None:
    """On a loaded warehouse, `FROM nosuchdb.sessions` is refused naming nosuchdb, not 'load first'."""
    code, out, err = query(capsys, loaded, "SELECT count(*) FROM nosuchdb.sessions")
    assert code != 0 and out == "", err
    assert "nosuchdb" in err.lower() and "has no database" not in err and "loader creates it" not in err
