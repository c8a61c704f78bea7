"""Privacy tests: a real ``tallystick serve`` with a config file, and HTTP helpers that pick their source address."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.common import wait_until
from fixtures.ingest import IngestServer

DECLARED = """
[applications.mytool]
mode = "{mode}"

[[applications.mytool.attributes]]
name = "projectSize"
type = "number"
description = "Number of files in the project."
why = "To see whether large projects are slow."

[[applications.mytool.events]]
name = "UpdateNudgeShown"
description = "The tool told the user a newer version exists."
why = "To see whether users update when told to."

[[applications.mytool.events.attributes]]
name = "latestVersion"
type = "string"
description = "The newer version offered."

[[applications.mytool.spans]]
name = "LoadConfig"
description = "Reading the tool's configuration file."
why = "To find slow configurations."
"""


def declared(mode: str = "strict", extra: str = "") -> str:
    """A server config declaring ``mytool``'s data, with fast reloads and tombstone refreshes for tests."""
    return "reload_check_seconds = 0.1\ntombstone_refresh_seconds = 0.1\n" + extra + DECLARED.format(mode=mode)


def tool_session(**overrides: Any) -> dict[str, Any]:
    """A valid session of ``mytool`` using only declared names (and built-in ones)."""
    from sessions import session

    base = session(
        applicationId="mytool",
        attributes={"projectSize": 12, "osName": "Linux", "telemetryMs": 1.5, "telemetryDropsExpired": 2},
        events=[{"type": "UpdateNudgeShown", "time": "2026-05-01T10:00:00.100Z", "attributes": {"latestVersion": "2"}}],
        spans=[{"type": "LoadConfig", "startTime": "2026-05-01T10:00:00.010Z", "endTime": "2026-05-01T10:00:00.060Z"}],
    )
    base.update(overrides)
    return base


class Server(IngestServer):
    """``tallystick serve --config FILE`` on 127.0.0.1, started at once; stderr (JSON logs) goes to ``log``."""

    def __init__(self, directory: Path, config_text: str, storage: str, extra: list[str]) -> None:
        super().__init__(directory, storage_url=storage, config_text=config_text, extra=extra)
        self.directory = directory
        self.storage = storage
        self.start()

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, source: str = "127.0.0.1"
    ) -> tuple[int, Any]:
        """One request from ``source`` (any 127.x address works on Linux); (status, decoded JSON or text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        try:
            data = json.dumps(body).encode() if body is not None else None
            sent = {"Content-Type": "application/json", **(headers or {})}
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        text = raw.decode()
        try:
            return response.status, json.loads(text) if text else None
        except ValueError:
            return response.status, text

    def put(self, session: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.request("PUT", "/v1/sessions", session, **kwargs)

    def hup(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)


@pytest.fixture
def privacy_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``privacy_server(config_text, storage=None, extra=[])`` → a started Server (stopped at teardown)."""
    servers: list[Server] = []

    def start(config_text: str, storage: str | None = None, extra: list[str] | None = None) -> Server:
        directory = tmp_path / f"server-{len(servers)}"
        directory.mkdir()
        server = Server(directory, config_text, storage or str(directory / "sessions"), extra or [])
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def tallystick(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI; its result (stdout, stderr, returncode)."""
    return subprocess.run(
        [sys.executable, "-m", "tallystick.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def eventually(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    wait_until(predicate, timeout=timeout, interval=0.1, what=what)
