"""Assert on your own tool's telemetry in your tests.

    from tallystick.testing import capture

    def test_nudge_is_recorded():
        with capture() as telemetry:
            mytool.main(["build"])
        assert telemetry.events_of("UpdateNudgeShown")[0]["attributes"] == {"latestVersion": "2.1"}

Inside ``capture`` the client records whatever the consent settings, writes
nothing to disk, sends nothing, installs no hooks, and is strict: a name or value
the wire contract forbids raises ``tallystick.client.InvalidData`` at the call, so
you learn of it here and not from missing data in production. ``configure`` calls
made by the tool under test are checked and adopt its application ID and version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tallystick.client import _api
from tallystick.client._client import Client
from tallystick.client._config import Config

__all__ = ["Capture", "capture"]


class Capture:
    """What a tool recorded while captured; ``session()`` is the session as it would be sent."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._sessions: list[dict[str, object]] = client.sink if client.sink is not None else []

    def session(self) -> dict[str, Any]:
        """The session as it would be sent (sealed at the end of the ``with`` block; a preview before)."""
        if self._sessions:
            return dict(self._sessions[-1])
        assert self._client.session is not None
        return self._client.session.to_dict()

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self.session()["events"])

    @property
    def spans(self) -> list[dict[str, Any]]:
        return list(self.session()["spans"])

    @property
    def attributes(self) -> dict[str, Any]:
        return dict(self.session()["attributes"])

    def events_of(self, type_name: str) -> list[dict[str, Any]]:
        """The events of one type, in order."""
        return [e for e in self.events if e["type"] == type_name]

    def spans_of(self, type_name: str) -> list[dict[str, Any]]:
        """The spans of one type, in order."""
        return [s for s in self.spans if s["type"] == type_name]


@contextlib.contextmanager
def capture(app_id: str = "test-tool", version: str = "0.0.0") -> Iterator[Capture]:
    """Record the telemetry of the code inside the block, in memory, strictly."""
    client = Client(Config(app_id, version, "http://127.0.0.1", install_hooks=False, strict=True), sink=[])
    client.start()
    previous = _api.install(client, capturing=True)
    try:
        yield Capture(client)
    finally:
        _api.restore(previous)  # the client and whether it captured: a nested capture leaves the outer one on
        client.finish()
