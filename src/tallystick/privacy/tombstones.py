"""Tombstones: the record that one user's data was deleted, which ingest consults.

A tombstone is an object in the same store as the sessions, so every ingest replica
sees it (each re-reads them every ``tombstone_refresh_seconds``: replicas sharing a
bucket agree within that time). Two kinds:

- ``privacy/v1/tombstones/<userId>/<deletedAt ms>.json``: the maintainer's
  ``tallystick delete-user``; it covers every session of the user ID.
- ``privacy/v1/tombstones/<userId>/<deletedAt ms>-<commitment>.json``: an erasure
  the user asked for from their own machine (``erasure.py``); it covers only the
  sessions carrying that ``telemetryErasureCommitment``. One made with a wrong
  secret therefore covers nothing, whoever wrote it.

Each holds the anonymous user ID, the time (and the commitment, a one-way hash),
nothing else, and is pruned by the retention job after ``KEEP_DAYS`` (clients
discard queued sessions after 30 days, so by then no old session can arrive).

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


def _key(user_id: str, when: datetime, commitment: str | None = None) -> str:
    suffix = f"-{commitment}" if commitment else ""
    return f"{PREFIX}{user_id}/{int(when.timestamp() * 1000):013d}{suffix}.json"


def _parse(key: str) -> tuple[str, datetime, str | None] | None:
    """(user ID, time, commitment or None) of a tombstone's key; None for anything else."""
    user, _, name = key[len(PREFIX) :].partition("/")
    millis, _, commitment = name.removesuffix(".json").partition("-")
    try:
        when = datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return user, when, commitment or None


class Tombstones:
    """The store's tombstones, with an in-memory copy refreshed at most every ``refresh_seconds``."""

    def __init__(self, store: Store, *, refresh_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._deleted: dict[str, datetime] = {}
        self._committed: dict[str, dict[str, datetime]] = {}
        self._refreshed: float | None = None

    @staticmethod
    def key(user_id: str, when: datetime, commitment: str | None = None) -> str:
        return _key(user_id, when, commitment)

    @staticmethod
    def body(user_id: str, when: datetime, commitment: str | None = None) -> bytes:
        fields = {"userId": user_id, "deletedAt": when.astimezone(UTC).isoformat()}
        if commitment:
            fields["commitment"] = commitment
        return json.dumps(fields).encode()

    def add(self, user_id: str, when: datetime, *, commitment: str | None = None) -> None:
        """Record that ``user_id``'s data (only that with ``commitment``, if given) was deleted at ``when``."""
        self.store.put_if_absent(_key(user_id, when, commitment), self.body(user_id, when, commitment))
        self.remember(user_id, when, commitment)

    def remember(self, user_id: str, when: datetime, commitment: str | None = None) -> None:
        """Take a tombstone this process wrote into the in-memory copy at once."""
        if commitment is None:
            self._deleted[user_id] = max(when, self._deleted.get(user_id, when))
        else:
            mine = self._committed.setdefault(user_id, {})
            mine[commitment] = max(when, mine.get(commitment, when))

    def read(self) -> dict[str, datetime]:
        """Every user tombstoned by the maintainer and the latest time their data was deleted, from the store."""
        return self._read()[0]

    def read_committed(self) -> dict[str, dict[str, datetime]]:
        """The users' own erasures: user ID -> commitment -> latest time, from the store."""
        return self._read()[1]

    def _read(self) -> tuple[dict[str, datetime], dict[str, dict[str, datetime]]]:
        deleted: dict[str, datetime] = {}
        committed: dict[str, dict[str, datetime]] = {}
        for info in self.store.list(PREFIX):
            parsed = _parse(info.key)
            if parsed is None:
                continue
            user, when, commitment = parsed
            if commitment is None:
                if user not in deleted or when > deleted[user]:
                    deleted[user] = when
            else:
                mine = committed.setdefault(user, {})
                if commitment not in mine or when > mine[commitment]:
                    mine[commitment] = when
        return deleted, committed

    def due(self) -> bool:
        return self._refreshed is None or self.clock() - self._refreshed >= self.refresh_seconds

    def refresh(self) -> None:
        self._deleted, self._committed = self._read()
        self._refreshed = self.clock()

    def deleted_at(self, user_id: str) -> datetime | None:
        return self._deleted.get(user_id)

    def refuses(self, user_id: str, started: datetime, commitment: object = None) -> datetime | None:
        """The deletion time if a session of ``user_id`` that started at ``started`` must be refused.

        ``commitment``: the session's ``telemetryErasureCommitment``, if any; a user's own
        erasure covers only sessions carrying the commitment it was made for.
        """
        when = self._deleted.get(user_id)
        if when is not None and started < when:
            return when
        if self._committed and isinstance(commitment, str):
            when = self._committed.get(user_id, {}).get(commitment)
            if when is not None and started < when:
                return when
        return None

    def prune(self, now: datetime, keep_days: int = KEEP_DAYS) -> int:
        """Delete tombstones older than ``keep_days``; how many."""
        cutoff = now - timedelta(days=keep_days)
        removed = 0
        infos: builtins.list[str] = [info.key for info in self.store.list(PREFIX)]
        for key in infos:
            parsed = _parse(key)
            if parsed is not None and parsed[1] < cutoff and self.store.delete(key):
                removed += 1
        return removed
