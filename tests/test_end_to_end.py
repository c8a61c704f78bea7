"""The walking pipeline with real processes: sessions over HTTP, into storage, loaded into DuckDB."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from fixtures.ingest import IngestServer
from tallystick import demo
from tallystick.storage import open_store
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader


def test_sessions_flow_from_http_to_warehouse(ingest_server: Callable[..., IngestServer], tmp_path: Path) -> None:
    """Demo sessions sent to a real server subprocess arrive in DuckDB exactly once, values intact."""
    server = ingest_server(apps=["demo"])
    sessions = list(demo.generate(300, seed=3))
    counts = demo.send(server.url, sessions)
    assert counts == {201: 300}
    assert demo.send(server.url, sessions[:50]) == {304: 50}
    assert sorted(server.stored_session_ids()) == sorted(s["sessionId"] for s in sessions)

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        stats = Loader(open_store(server.storage_url), warehouse).run()
        assert (stats.loaded, stats.rejected) == (300, 0)
        by_version = dict(warehouse.query("SELECT applicationVersion, count(*) FROM sessions GROUP BY 1").rows)
        expected: dict[str, int] = {}
        for s in sessions:
            expected[s["applicationVersion"]] = expected.get(s["applicationVersion"], 0) + 1
        assert by_version == expected
        n_events = sum(len(s["events"]) for s in sessions)
        n_spans = sum(len(s["spans"]) for s in sessions)
        assert warehouse.query("SELECT count(*) FROM events").rows == [(n_events,)]
        assert warehouse.query("SELECT count(*) FROM spans").rows == [(n_spans,)]
        shells = dict(warehouse.query("SELECT attributes->>'shell', count(*) FROM sessions GROUP BY 1").rows)
        assert sum(shells.values()) == 300 and set(shells) <= {s for s, _ in demo.SHELLS}
        first = sessions[0]
        row = warehouse.query(
            'SELECT "userId", "sessionStartTime"::VARCHAR FROM sessions WHERE "sessionId" = ?', [first["sessionId"]]
        ).rows
        assert row == [(first["userId"], first["sessionStartTime"].replace("T", " ").rstrip("Z"))]
        again = Loader(open_store(server.storage_url), warehouse).run()
        assert (again.pending, again.loaded) == (0, 0)
    finally:
        warehouse.close()


def test_cli_up_demo_then_query(tmp_path: Path) -> None:
    """`tallystick up --demo` serves, sends demo data and loads it, printing only its own lines (no JSON logs)."""
    data = tmp_path / "data"
    argv = [
        sys.executable,
        "-m",
        "tallystick.cli",
        "up",
        "--demo",
        "--port",
        "0",
        "--data-dir",
        str(data),
        "--demo-sessions",
        "400",
        "--load-every",
        "1s",
    ]
    lines: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as up:
        try:
            assert up.stderr is not None
            loaded = 0
            for line in up.stderr:  # bounded: ends once all 400 are loaded, or after 60 lines
                lines.append(line)
                if line.startswith("loader: "):
                    loaded += int(line.split()[1].replace(",", ""))
                if loaded >= 400 or len(lines) > 60:
                    break
            query = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tallystick.cli",
                    "query",
                    "--data-dir",
                    str(data),
                    "--format",
                    "csv",
                    "SELECT count(*) AS n FROM sessions",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            up.terminate()
            up.wait(timeout=20)
            lines += up.stderr.readlines() if up.stderr else []  # what it printed while stopping
    assert "demo: sent 400 sessions" in "".join(lines)
    assert lines[0].startswith("tallystick up: ingest on http://127.0.0.1:")
    assert [line for line in lines if line.lstrip().startswith("{")] == []  # uvicorn's are for `serve`
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines() == ["n", "400"]
