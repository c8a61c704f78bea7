"""Fixtures of the API contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.api import Api, serve_in_thread
from tallystick.storage.local import LocalStore


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The ingest API over real HTTP with durable local storage in a temp directory."""
    yield from serve_in_thread(LocalStore(tmp_path / "sessions"))
