"""``tallystick dashboard``: the dashboard alone over a warehouse that another process loads."""

from __future__ import annotations

import html
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from fixtures.clickhouse import ClickHouseServer
from fixtures.common import wait_until
from sessions import session
from tallystick.storage.local import LocalStore
from tallystick.warehouse import cycle, open_warehouse
from warehouse.conftest import put


def test_dashboard_alone_serves_the_overview(tmp_path: Path) -> None:
    """It starts on the port given, says where, and its overview counts the warehouse's sessions."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    for _ in range(3):
        put(store, session())
    spec = str(tmp_path / "w.duckdb")
    warehouse = open_warehouse(spec)
    cycle.load(store, warehouse)
    warehouse.close()
    argv = [sys.executable, "-m", "tallystick.cli", "dashboard", "--warehouse", spec, "--port", "0"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("tallystick dashboard on http://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].split("/ ", 1)[0]
        with urllib.request.urlopen(url + "/api/overview", timeout=30) as response:
            body = response.read().decode()
        assert '"sessions": 3' in body or '"sessions":3' in body, body[:300]
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stderr is not None:
            process.stderr.close()


def test_dashboard_refuses_an_open_address_without_a_token(tmp_path: Path) -> None:
    """Listening beyond loopback without a token is refused in one line."""
    argv = [sys.executable, "-m", "tallystick.cli", "dashboard", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert result.stderr.startswith("tallystick: error: ") and len(result.stderr.strip().splitlines()) == 1


def test_dashboard_over_a_clickhouse_not_loaded_yet_or_down_says_so(
    tmp_path: Path, clickhouse_server: ClickHouseServer
) -> None:
    """Started before the first load (no database yet) or over a server that is down, the overview says
    which and what to do, with no 500 and no traceback in the log."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = closed.getsockname()[1]
    cases = {
        clickhouse_server.spec("never_loaded"): "has no database 'never_loaded' yet: the loader creates it",
        f"clickhouse://127.0.0.1:{down}/telemetry": f"cannot reach ClickHouse at http://127.0.0.1:{down}",
    }
    log = tmp_path / "dashboard.log"
    for spec, says in cases.items():
        argv = [sys.executable, "-m", "tallystick.cli", "dashboard", "--warehouse", spec, "--port", "0"]
        with log.open("w") as err, subprocess.Popen(argv, stderr=err, text=True) as process:
            try:
                wait_until(lambda: " on http://" in log.read_text(), timeout=30, what="the dashboard's banner")
                url = log.read_text().split(" on ", 1)[1].split("/ ", 1)[0]
                with urllib.request.urlopen(url + "/", timeout=30) as response:
                    page = html.unescape(response.read().decode())
                with urllib.request.urlopen(url + "/analyses/adoption", timeout=30) as response:
                    analysis = html.unescape(response.read().decode())
            finally:
                process.terminate()
        assert says in page
        assert says in analysis
        assert "Traceback" not in log.read_text()
