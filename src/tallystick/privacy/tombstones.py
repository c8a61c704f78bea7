"""Tombstones: the record that one user's data was deleted, which ingest consults.

A tombstone is an object ``privacy/v1/tombstones/<userId>/<deletedAt ms>.json`` in
the same store as the sessions, so every ingest replica sees it. It holds the
anonymous user ID and the time of deletion, nothing else, and is pruned by the
retention job after ``KEEP_DAYS`` (clients discard queued sessions after 30 days,
so by then no old session can arrive).

Ingest refuses (400, rule ``deletedUser``) a session of a tombstoned user that
*started before* the deletion: an old queued session uploaded later is not
resurrected. A session that started after it is accepted, so someone who keeps
using the tool is not silently blocked forever (a user who wants no data at all
disables telemetry, which also deletes the client's user ID).
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tallystick.storage import Store

PREFIX = "privacy/v1/tombstones/"
KEEP_DAYS = 90


def _key(user_id: str, when: datetime) -> str:
    return f"{PREFIX}{user_id}/{int(when.timestamp() * 1000):013d}.json"


class Tombstones:
    """The store's tombstones, with an in-memory copy refreshed at most every ``refresh_seconds``."""

    def __init__(self, store: Store, *, refresh_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._deleted: dict[str, datetime] = {}
        self._refreshed: float | None = None

    def add(self, user_id: str, when: datetime) -> None:
        """Record that ``user_id``'s data was deleted at ``when`` (re-adding is harmless)."""
        body = json.dumps({"userId": user_id, "deletedAt": when.astimezone(UTC).isoformat()}).encode()
        self.store.put_if_absent(_key(user_id, when), body)
        self._deleted[user_id] = max(when, self._deleted.get(user_id, when))

    def read(self) -> dict[str, datetime]:
        """Every tombstoned user and the latest time their data was deleted, from the store."""
        deleted: dict[str, datetime] = {}
        for info in self.store.list(PREFIX):
            user, _, name = info.key[len(PREFIX) :].partition("/")
            try:
                when = datetime.fromtimestamp(int(name.removesuffix(".json")) / 1000, UTC)
            except ValueError:
                continue
            if user not in deleted or when > deleted[user]:
                deleted[user] = when
        return deleted

    def due(self) -> bool:
        return self._refreshed is None or self.clock() - self._refreshed >= self.refresh_seconds

    def refresh(self) -> None:
        self._deleted = self.read()
        self._refreshed = self.clock()

    def deleted_at(self, user_id: str) -> datetime | None:
        return self._deleted.get(user_id)

    def refuses(self, user_id: str, started: datetime) -> datetime | None:
        """The deletion time if a session of ``user_id`` that started at ``started`` must be refused."""
        when = self._deleted.get(user_id)
        return when if when is not None and started < when else None

    def prune(self, now: datetime, keep_days: int = KEEP_DAYS) -> int:
        """Delete tombstones older than ``keep_days``; how many."""
        cutoff = now - timedelta(days=keep_days)
        removed = 0
        infos: builtins.list[str] = [info.key for info in self.store.list(PREFIX)]
        for key in infos:
            try:
                when = datetime.fromtimestamp(int(key.rsplit("/", 1)[1].removesuffix(".json")) / 1000, UTC)
            except ValueError:
                continue
            if when < cutoff and self.store.delete(key):
                removed += 1
        return removed
