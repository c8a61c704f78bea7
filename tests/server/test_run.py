"""The service as a process: JSON logs without addresses, and a graceful stop on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixtures.common import wait_until
from sessions import body, session
from tallystick.storage.local import LocalStore


def _put(server: Any, raw: bytes, **headers: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("PUT", "/v1/sessions", raw, {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_logs_are_json_with_request_id_and_no_address(server_process: Callable[..., Any]) -> None:
    """Every log line is a JSON object; request lines carry the request ID and never the client address."""
    server = server_process(log_requests=True)
    assert _put(server, body(session()), **{"X-Request-ID": "trace-42"}).status == 201
    assert _put(server, body(session(userId="nope"))).status == 400
    assert server.terminate() == -signal.SIGTERM  # uvicorn drains, then re-raises the signal it caught
    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    requests = [line for line in lines if line.get("route") == "/v1/sessions"]
    assert [(r["route"], r["status"]) for r in requests] == [("/v1/sessions", 201), ("/v1/sessions", 400)]
    assert requests[0]["requestId"] == "trace-42"
    assert requests[1]["requestId"] and requests[1]["requestId"] != "trace-42"
    assert "127.0.0.1" not in server.log.read_text()
    assert "nope" not in server.log.read_text()  # no session content at info level


def test_sigterm_finishes_requests_in_flight(server_process: Callable[..., Any]) -> None:
    """After SIGTERM the server takes no new connections, answers the request it was receiving, then exits."""
    server = server_process()
    raw = body(session())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(raw)
            + raw[:100]
        )
        time.sleep(0.3)  # the request is in flight: headers in, body half read
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        refused = False
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            refused = True
        sock.sendall(raw[100:])
        answer = sock.recv(65536)
    assert refused
    assert answer.startswith(b"HTTP/1.1 201"), answer
    assert b"connection: close" in answer.lower()
    assert server.process.wait(timeout=15) == -signal.SIGTERM
    server.process = None
    assert "Finished server process" in server.log.read_text()
    assert len(list(LocalStore(server.storage, fsync=False).list("sessions/"))) == 1


def test_ctrl_c_to_the_process_group_is_a_clean_stop(tmp_path: Path) -> None:
    """SIGINT to the whole group (Ctrl-C in a terminal) stops the server cleanly, and its writer process only after.

    The log's writer process (``storage/_writer.py``) gets the signal too; it must keep working until
    the server has answered what is in flight and closed it, leaving no segment to replay.
    """
    storage = tmp_path / "sessions"
    argv = [sys.executable, "-m", "tallystick.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--app", "demo"]
    argv += ["--data-dir", str(tmp_path), "--storage", str(storage)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = int(line.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
        server = types.SimpleNamespace(port=port)
        assert _put(server, body(session())).status == 201
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert "Traceback" not in stderr
    assert list((storage / ".wal").glob("*.log")) == []  # closed, not crashed: nothing to replay
    assert len(list(LocalStore(storage, fsync=False).list("sessions/"))) == 1
    wait_until(lambda: not _group_alive(process.pid), timeout=10, what="the writer process to exit")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
