"""Tombstones: the record that one user's data was deleted, which ingest consults.

A tombstone is an object in the same store as the sessions, so every ingest replica
sees it (each re-reads them every ``tombstone_refresh_seconds``: replicas sharing a
bucket agree within that time). Two kinds:

- ``privacy/v1/tombstones/<user digest>/<deletedAt ms>.json``: the maintainer's
  ``tallystick delete-user``; it covers every session of the user ID.
- ``privacy/v1/tombstones/<user digest>/<deletedAt ms>-<commitment>.json``: an erasure
  the user asked for from their own machine (``erasure.py``); it covers only the
  sessions carrying that ``telemetryErasureCommitment``. One made with a wrong
  secret therefore covers nothing, whoever wrote it.

A tombstone does not hold the user ID: it holds its *digest* (SHA-256 of a domain tag and
the ID, ``user_digest``), the time and the commitment (itself a one-way hash), nothing else.
The ID is a random version-4 UUID (122 random bits), so the digest cannot be turned back
into it, yet ingest can still tell that an arriving session's user was deleted by hashing
the session's ID, and the retention sweep finds the user's late sessions by hashing the IDs
the warehouse holds. After a deletion a scan of everything Tallystick wrote for the ID finds
nothing, tombstones included. Tombstones written before digests (a plain user ID in the key)
are still read, as the digest of that ID. They are pruned by the retention job after
``KEEP_DAYS`` (clients discard queued sessions after 30 days, so by then no old session can
arrive).

Ingest refuses (400, rule ``deletedUser``) a session of a tombstoned user that
*started before* the deletion: an old queued session uploaded later is not
resurrected. A session that started after it is accepted, so someone who keeps
using the tool is not silently blocked forever (a user who wants no data at all
disables telemetry, which also deletes the client's user ID).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tallystick.storage import Store

PREFIX = "privacy/v1/tombstones/"
KEEP_DAYS = 90
_DOMAIN = b"tallystick-tombstone-v1\0"
_DIGEST = re.compile(r"[0-9a-f]{64}")


def user_digest(user_id: str) -> str:
    """The one-way digest a tombstone holds instead of the user ID (64 hex digits)."""
    return hashlib.sha256(_DOMAIN + user_id.encode("utf-8", "surrogatepass")).hexdigest()


def _key(user_id: str, when: datetime, commitment: str | None = None) -> str:
    suffix = f"-{commitment}" if commitment else ""
    return f"{PREFIX}{user_digest(user_id)}/{int(when.timestamp() * 1000):013d}{suffix}.json"


def _parse(key: str) -> tuple[str, datetime, str | None] | None:
    """(user digest, time, commitment or None) of a tombstone's key; None for anything else.

    A key written before digests names the user ID itself: it is read as that ID's digest.
    """
    user, _, name = key[len(PREFIX) :].partition("/")
    millis, _, commitment = name.removesuffix(".json").partition("-")
    try:
        when = datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    digest = user if _DIGEST.fullmatch(user) else user_digest(user)
    return digest, when, commitment or None


class Tombstones:
    """The store's tombstones, with an in-memory copy refreshed at most every ``refresh_seconds``.

    Everything is keyed by user digest (``user_digest``); methods taking a user ID hash it.
    """

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
        fields = {"userDigest": user_digest(user_id), "deletedAt": when.astimezone(UTC).isoformat()}
        if commitment:
            fields["commitment"] = commitment
        return json.dumps(fields).encode()

    def add(self, user_id: str, when: datetime, *, commitment: str | None = None) -> None:
        """Record that ``user_id``'s data (only that with ``commitment``, if given) was deleted at ``when``."""
        self.store.put_if_absent(_key(user_id, when, commitment), self.body(user_id, when, commitment))
        self.remember(user_id, when, commitment)

    def remember(self, user_id: str, when: datetime, commitment: str | None = None) -> None:
        """Take a tombstone this process wrote into the in-memory copy at once."""
        digest = user_digest(user_id)
        if commitment is None:
            self._deleted[digest] = max(when, self._deleted.get(digest, when))
        else:
            mine = self._committed.setdefault(digest, {})
            mine[commitment] = max(when, mine.get(commitment, when))

    def read(self) -> dict[str, datetime]:
        """User digest -> latest deletion time, for every user the maintainer deleted, from the store."""
        return self._read()[0]

    def read_committed(self) -> dict[str, dict[str, datetime]]:
        """The users' own erasures: user digest -> commitment -> latest time, from the store."""
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
        return self._deleted.get(user_digest(user_id)) if self._deleted else None

    def refuses(self, user_id: str, started: datetime, commitment: object = None) -> datetime | None:
        """The deletion time if a session of ``user_id`` that started at ``started`` must be refused.

        ``commitment``: the session's ``telemetryErasureCommitment``, if any; a user's own
        erasure covers only sessions carrying the commitment it was made for.
        """
        if not (self._deleted or self._committed):
            return None
        digest = user_digest(user_id)
        when = self._deleted.get(digest)
        if when is not None and started < when:
            return when
        if self._committed and isinstance(commitment, str):
            when = self._committed.get(digest, {}).get(commitment)
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
