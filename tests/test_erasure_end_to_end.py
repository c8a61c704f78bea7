"""`mytool telemetry forget`, end to end with real processes: the example tool, `tallystick serve`,
`tallystick load` into DuckDB and the ClickHouse server; a second machine's queued session dropped."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from client.conftest import Tool
from privacy.conftest import Server, declared, tallystick
from tallystick.privacy.erasure import PREFIX as PENDING
from tallystick.storage import open_store
from tallystick.warehouse import open_warehouse


def _stored(url: str) -> dict[str, str]:
    """Session ID -> user ID of every session in storage."""
    store = open_store(url)
    try:
        trees = [json.loads(gzip.decompress(store.get(i.key))) for i in store.list("sessions/")]
        return {t["sessionId"]: t["userId"] for t in trees}
    finally:
        store.close()


def _rows(spec: str, user: str) -> dict[str, int]:
    """Rows of ``user`` in every table, derived tables included (DuckDB: every table with a userId column)."""
    warehouse = open_warehouse(spec)
    try:
        if warehouse.dialect == "duckdb":
            sql = "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'userId'"
            tables = sorted(str(r[0]) for r in warehouse.query(sql).rows)
        else:
            tables = ["events", "sessions", "spans"]
        counts = {
            t: int(warehouse.query(f'SELECT count(*) FROM "{t}" WHERE "userId" = ?', [user]).rows[0][0]) for t in tables
        }
        if warehouse.dialect == "duckdb":  # keyed by a hash of the user ID
            key = warehouse.query("SELECT hash(?::VARCHAR)", [user]).rows[0][0]
            counts["sessions_daily"] = int(
                warehouse.query('SELECT count(*) FROM sessions_daily WHERE "userKey" = ?', [key]).rows[0][0]
            )
        return counts
    finally:
        warehouse.close()


def _load(url: str, spec: str) -> None:
    result = tallystick("load", "--storage", url, "--warehouse", spec)
    assert result.returncode == 0, result.stderr


def test_forget_erases_everywhere_and_drops_a_session_queued_on_a_second_machine(
    tmp_path: Path, clickhouse_spec: str
) -> None:
    """Sessions in storage, DuckDB and ClickHouse; `forget`; every row gone; an older queued session refused."""
    (tmp_path / "server").mkdir()
    server = Server(tmp_path / "server", declared("open"), str(tmp_path / "server" / "sessions"), [])
    try:
        duckdb = str(tmp_path / "w.duckdb")
        online = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"}
        laptop = Tool(tmp_path / "laptop")
        assert laptop.run("telemetry", "allow", env=online).returncode == 0
        for name in ("Ada", "Bob", "Cy"):
            assert laptop.run("hello", name, env=online).returncode == 0
        user = (laptop.data_dir / "user-id").read_text().strip()
        sent = list(_stored(server.storage))
        assert sorted(_stored(server.storage).values()) == [user] * 4, "uploaded (the allow run recorded too)"

        # A second machine with the same telemetry data (a synced home): its session waits, offline.
        desktop = Tool(tmp_path / "desktop")
        shutil.copytree(laptop.data_dir, desktop.data_dir)
        assert desktop.run("hello", "Dee", env={"MYTOOL_TELEMETRY_URL": "http://127.0.0.1:9"}).returncode == 0
        (waiting,) = desktop.queued_ids()

        for spec in (duckdb, clickhouse_spec):
            _load(server.storage, spec)
            rows = _rows(spec, user)
            assert rows["sessions"] == 4 and rows["events"] >= 3 and rows["spans"] >= 3, rows
        assert _rows(duckdb, user)["sessions_typed"] == 4 and _rows(duckdb, user)["sessions_daily"] >= 1

        forgot = laptop.run("telemetry", "forget", env=online)
        assert forgot.returncode == 0, forgot.stderr
        assert "erased" in forgot.stdout
        assert not (laptop.data_dir / "user-id").exists() and not (laptop.data_dir / "erasure-secret").exists()
        assert list((laptop.data_dir / "erasures").glob("*.json")) == [], "the request was sent"
        needles = [user.encode()] + [s.encode() for s in sent]
        files = [p for p in laptop.data_dir.rglob("*") if p.is_file()]
        leftovers = [p.name for p in files if any(n in p.read_bytes() for n in needles)]
        assert leftovers == [], "no file of the client's data directory (queue, held, rejected, state) names them"
        store = open_store(server.storage)
        try:
            assert [i.key for i in store.list(PENDING)], "the server recorded the request"
        finally:
            store.close()

        for spec in (duckdb, clickhouse_spec):
            _load(server.storage, spec)
            assert set(_rows(spec, user).values()) == {0}, _rows(spec, user)
        assert user not in _stored(server.storage).values()

        # The second machine comes online (its back-off over): its session, recorded before the erasure, is refused.
        (desktop.data_dir / "upload-state").unlink()
        assert desktop.run("hello", "Dee", env=online).returncode == 0
        assert len(_stored(server.storage)) == 1, "the desktop's new session, started after the erasure, is kept"
        assert waiting not in _stored(server.storage)
        answers = list((desktop.data_dir / "rejected").glob("*.answer"))
        assert len(answers) == 1 and "deletedUser" in answers[0].read_text()
        _load(server.storage, duckdb)
        warehouse = open_warehouse(duckdb)
        try:
            found = warehouse.query('SELECT count(*) FROM sessions WHERE "sessionId" = ?', [waiting]).rows[0][0]
        finally:
            warehouse.close()
        assert found == 0

        # The laptop goes on under a new user ID, as before.
        assert laptop.run("hello", "Ada", env=online).returncode == 0
        new_user = (laptop.data_dir / "user-id").read_text().strip()
        assert new_user != user and new_user in _stored(server.storage).values()
    finally:
        server.stop()
