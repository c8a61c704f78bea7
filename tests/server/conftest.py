"""Fixtures of the API contract tests: the app in a thread, or ``tallystick serve`` as a process."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.api import Api, serve_in_thread
from fixtures.ingest import IngestServer
from tallystick.storage.local import LocalStore


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The ingest API over real HTTP with durable local storage in a temp directory."""
    yield from serve_in_thread(LocalStore(tmp_path / "sessions"))


@pytest.fixture
def api_with(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Factory: ``api_with(**settings)`` → the API in a thread with those ServerConfig settings."""
    stops: list[Iterator[Api]] = []

    def start(**settings: Any) -> Api:
        runner = serve_in_thread(LocalStore(tmp_path / f"sessions-{len(stops)}"), **settings)
        stops.append(runner)
        return next(runner)

    yield start
    for runner in stops:
        next(runner, None)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


class ServerProcess(IngestServer):
    """``tallystick serve`` for ``demo`` with settings from a TOML file; restarts keep its port and storage."""

    def __init__(self, workdir: Path, settings: dict[str, Any]) -> None:
        config_text = "".join(f"{k} = {_toml(v)}\n" for k, v in settings.items())
        super().__init__(workdir, ["demo"], config_text=config_text)
        self.workdir = workdir
        self.storage = Path(self.storage_url)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, then the exit code (SIGKILL after ``timeout``: the test then fails on the code)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
        self.process = None
        return code

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: ``server_process(**settings)`` → a started ``tallystick serve`` process (killed afterwards)."""
    servers: list[ServerProcess] = []

    def start(**settings: Any) -> ServerProcess:
        workdir = tmp_path / f"server-{len(servers)}"
        workdir.mkdir()
        server = ServerProcess(workdir, settings)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.kill()
