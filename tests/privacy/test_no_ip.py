"""No IP address anywhere: storage, warehouse, quarantine, logs, metrics, answers, even behind a proxy.

The client connects from 127.0.0.42 (a unique loopback source) and claims 203.0.113.197
in every proxy header; one request comes from 127.0.0.1, which uvicorn trusts as a
proxy by default, so there its ``X-Forwarded-For`` becomes the request's client
address (used only in memory, by the rate limiter). Neither address may be found
afterwards in any file of the data directory (gzip objects decompressed), in the
warehouse's contents, in the JSON logs at debug level or in the metrics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from fixtures.scan import readable
from privacy.conftest import Server, declared, eventually, tallystick, tool_session
from tallystick.storage.local import LocalStore

SOURCE = "127.0.0.42"
FORWARDED = "203.0.113.197"
PROXY_HEADERS = {"X-Forwarded-For": FORWARDED, "Forwarded": f"for={FORWARDED}", "X-Real-IP": FORWARDED}


def _texts(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory``, gzip members decompressed."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root) / name
            found[str(path)] = readable(path)
    return found


def test_no_client_address_is_persisted_or_logged(tmp_path: Path) -> None:
    """After a whole pipeline run from a distinctive address, grep finds it nowhere."""
    data = tmp_path / "data"
    config = tmp_path / "server.toml"
    config.write_text(
        declared("strict", 'log_requests = true\nlog_level = "debug"\nrate_limit_per_second = 100.0\n').replace(
            "tombstone_refresh_seconds = 0.1", "tombstone_refresh_seconds = 1"
        )
    )
    log = tmp_path / "up.log"
    argv = [sys.executable, "-m", "tallystick.cli", "up", "--port", "0", "--data-dir", str(data)]
    argv += ["--config", str(config), "--load-every", "0.2s"]
    with log.open("wb") as err:
        up = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    try:
        eventually(lambda: "ingest on http://" in log.read_text(), "tallystick up to listen", timeout=30)
        port = int(log.read_text().split("ingest on http://127.0.0.1:", 1)[1].split()[0])
        server = Server.__new__(Server)
        server.port = port
        good = tool_session(attributes={"projectSize": 7})
        assert server.put(good, headers=PROXY_HEADERS, source=SOURCE)[0] == 201
        assert server.put(tool_session(), headers=PROXY_HEADERS)[0] == 201  # via the trusted "proxy"
        bad = tool_session(attributes={"clientAddress": "hidden"})  # undeclared: rejected and sampled
        status, answer = server.put(bad, headers=PROXY_HEADERS, source=SOURCE)
        assert status == 400 and answer["validationErrors"][0]["key"] == "attributes.clientAddress"
        bad_json = server.request("PUT", "/v1/sessions", None, headers=PROXY_HEADERS, source=SOURCE)
        assert bad_json[0] == 400
        missing = server.request("GET", "/nowhere", headers=PROXY_HEADERS, source=SOURCE)
        assert missing[0] == 404 and SOURCE not in str(missing[1]) and FORWARDED not in str(missing[1])
        query = ["query", "--data-dir", str(data), "--format", "csv", "SELECT count(*) FROM sessions"]
        eventually(lambda: tallystick(*query).stdout.split() == ["count_star()", "2"], "the load", timeout=30)
        eventually(lambda: "clientAddress" in tallystick("rejects", "--data-dir", str(data)).stdout, "the counts")
        metrics = server.request("GET", "/metrics", headers=PROXY_HEADERS, source=SOURCE)[1]
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=30)
    dumps = ""
    for table in ("sessions", "events", "spans", "_tallystick_loaded"):
        result = tallystick("query", "--data-dir", str(data), "--format", "csv", f"SELECT * FROM {table}")
        assert result.returncode == 0, result.stderr
        dumps += result.stdout
    texts = _texts(data)
    texts["log"] = log.read_bytes()
    texts["metrics"] = str(metrics).encode()
    texts["warehouse"] = dumps.encode()
    # The grep can fail: what was sent is there to be found.
    assert good["sessionId"].encode() in texts["warehouse"]
    assert any(good["sessionId"].encode() in t for name, t in texts.items() if "/sessions/v1/" in name)
    samples = LocalStore(data / "sessions", fsync=False)  # in a pack, or still in the write-ahead log
    assert any(b"clientAddress" in samples.get(i.key) for i in samples.list("privacy/v1/quarantine/samples/"))
    assert b'"status": 400' in texts["log"] and b"tallystick_rejected_sessions_total" in texts["metrics"]
    for address in (SOURCE, FORWARDED):
        hits = [name for name, text in texts.items() if address.encode() in text]
        assert hits == [], f"{address} found in {hits}"
