"""The walking pipeline with real processes: sessions over HTTP, into storage, loaded into DuckDB."""

from __future__ import annotations

import os
import re
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
    """`up --demo`, run by its path as the README does (`.venv/bin/tallystick`, not on $PATH), serves, sends
    demo data and loads it, printing only its own lines (no JSON logs); its `ask it:` line runs as printed."""
    data = tmp_path / "data"
    script = Path(sys.executable).parent / "tallystick"
    cwd = script.parent.parent
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    argv = ["bin/tallystick", "up", "--demo", "--port", "0", "--data-dir", str(data)]
    argv += ["--demo-sessions", "400", "--load-every", "1s"]
    lines: list[str] = []
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as up:
        try:
            assert up.stderr is not None
            loaded = 0
            expected = 400  # at most: sessions whose user has not run the tool again have not arrived
            for line in up.stderr:  # bounded: ends once all that arrived are loaded, or after 60 lines
                lines.append(line)
                if line.startswith("demo: "):
                    stored, sent = re.findall(r"([\d,]+) (?:sessions of history|sent)", line)
                    expected = sum(int(n.replace(",", "")) for n in (stored, sent))
                if line.startswith("loader: "):
                    loaded += int(line.split()[1].replace(",", ""))
                if loaded >= expected or len(lines) > 60:
                    break
            hint = next(line for line in lines if "ask it:" in line).split("ask it:", 1)[1].strip()
            query = subprocess.run(hint, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        finally:
            up.terminate()
            up.wait(timeout=20)
            lines += up.stderr.readlines() if up.stderr else []  # what it printed while stopping
    assert "sessions of history stored as they would have arrived" in "".join(lines)
    assert 300 < expected < 400
    assert lines[0].startswith("tallystick up: ingest on http://127.0.0.1:")
    assert [line for line in lines if line.lstrip().startswith("{")] == []  # uvicorn's are for `serve`
    assert hint.startswith("bin/tallystick query --data-dir ")
    assert query.returncode == 0, query.stderr
    rows = query.stdout.splitlines()
    assert rows[0].split() == ["applicationVersion", "n"]
    assert rows[-1] and sum(int(r.split()[-1]) for r in rows[2:-1]) == expected
