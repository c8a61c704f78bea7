"""Quarantine: what ingest rejected, counted by application, version and rule, with a small sample of bodies.

Rejected sessions are never stored as sessions. Instead each ingest process keeps,
in memory, counts per (application, version, rule) and per undeclared name (open
mode), and a few sample bodies: at most ``per_key`` per (application, version,
rule) per process, each cut to ``sample_bytes``. ``flush`` (run by the server a few
seconds after a rejection, off the request path) writes to the store:

    privacy/v1/quarantine/counts/<process>.json        this process's counts (replaced on each flush)
    privacy/v1/quarantine/samples/<time>-<random>.json  one sample (created once)

and then deletes the oldest samples beyond ``max_samples``, so the store holds a
bounded, size-capped sample whatever the number of replicas or restarts.
``tallystick rejects`` sums the counts files and shows the newest samples.

Races, and why they are harmless: two replicas pruning at once may both delete the
same oldest sample (a delete of a missing object is a no-op) or leave a few more
than ``max_samples`` until the next flush. A crash loses at most the counts and
samples of the last few seconds; the Prometheus counters have them too. The counts
file is replaced by delete-then-create: a reader between the two sees this
process's counts missing for a moment, never doubled.

Application labels are only registered IDs (else ``(unregistered)``), and at most
``MAX_VERSIONS`` versions per application are named (else ``(other)``), so a hostile
client cannot grow the counts without bound. A sample never holds a client address
(none reaches this module) and is deleted by ``tallystick delete-user`` if it
contains that user's ID, by a user's own erasure if it holds their ID and commitment, and by
retention once older than the retention period. Sessions refused because their user was deleted are
counted but never sampled.
"""

from __future__ import annotations

import builtins
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tallystick.schema import _rules
from tallystick.storage import ObjectNotFound, Store

PREFIX = "privacy/v1/quarantine/"
COUNTS = PREFIX + "counts/"
SAMPLES = PREFIX + "samples/"
MAX_VERSIONS = 50
MAX_NAMES = 200
UNREGISTERED = "(unregistered)"
OTHER = "(other)"
NOT_SAMPLED_RULES = frozenset({"deletedUser"})


@dataclass(frozen=True)
class Rejection:
    """One count: sessions of ``application`` ``version`` rejected for breaking ``rule``."""

    application: str
    version: str
    rule: str
    count: int


class Quarantine:
    """One ingest process's rejection counts and pending samples (thread-safe)."""

    def __init__(
        self,
        store: Store,
        *,
        samples: bool = True,
        max_samples: int = 200,
        sample_bytes: int = 16 * 1024,
        per_key: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.samples = samples and max_samples > 0
        self.max_samples = max_samples
        self.sample_bytes = sample_bytes
        self.per_key = per_key
        self.clock = clock
        self.process = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(clock()))}-{secrets.token_hex(4)}"
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._undeclared: dict[tuple[str, str], int] = {}
        self._versions: dict[str, set[str]] = {}
        self._sampled: dict[tuple[str, str, str], int] = {}
        self._pending: list[bytes] = []
        self.dirty = False

    def labels(self, application: Any, version: Any, registered: Iterable[str]) -> tuple[str, str]:
        """Bounded labels for a client's application ID and version."""
        app = application if isinstance(application, str) and application in registered else UNREGISTERED
        if not (isinstance(version, str) and _rules.is_version(version)):
            return app, OTHER
        with self._lock:
            seen = self._versions.setdefault(app, set())
            if version not in seen and len(seen) >= MAX_VERSIONS:
                return app, OTHER
            seen.add(version)
        return app, version

    def rejected(
        self, app: str, version: str, errors: list[Any], body: bytes | None, *, whose: dict[str, Any] | None = None
    ) -> None:
        """Count a rejected session (``errors``: its ValidationErrors) and maybe keep a sample of its body.

        ``whose``: the body's ``userId``, ``sessionId`` and ``commitment``, kept beside the cut body
        so that a deletion finds the sample even when the cut left them out.
        """
        rules = sorted({e.type for e in errors}) or ["invalid"]
        sample = None
        with self._lock:
            self.dirty = True
            for rule in rules:
                key = (app, version, rule)
                self._counts[key] = self._counts.get(key, 0) + 1
            first = (app, version, rules[0])
            if (
                self.samples
                and body is not None
                and not NOT_SAMPLED_RULES.intersection(rules)
                and self._sampled.get(first, 0) < self.per_key
                and len(self._pending) < self.max_samples
            ):
                self._sampled[first] = self._sampled.get(first, 0) + 1
                sample = first
        if sample is not None:
            text = body[: self.sample_bytes].decode("utf-8", "replace") if body is not None else ""
            ids = {k: v[:128] for k, v in (whose or {}).items() if isinstance(v, str)}
            record = {
                **ids,
                "receivedAt": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
                "applicationId": app,
                "applicationVersion": version,
                "rules": rules,
                "validationErrors": [{"key": e.key, "type": e.type, "message": e.message} for e in errors[:50]],
                "bodyBytes": len(body or b""),
                "truncated": len(body or b"") > self.sample_bytes,
                "body": text,
            }
            with self._lock:
                self._pending.append(json.dumps(record).encode())

    def undeclared(self, app: str, names: Iterable[str]) -> None:
        """Count names a session of ``app`` (open mode) carried without declaring them."""
        with self._lock:
            for name in set(names):
                key = (app, name)
                if key in self._undeclared or sum(1 for a, _ in self._undeclared if a == app) < MAX_NAMES:
                    self._undeclared[key] = self._undeclared.get(key, 0) + 1
                    self.dirty = True

    def flush(self) -> None:
        """Write pending samples and this process's counts, then prune old samples (blocking I/O)."""
        with self._lock:
            pending, self._pending = self._pending, []
            snapshot = {
                "process": self.process,
                "updatedAt": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
                "rejections": [[a, v, r, n] for (a, v, r), n in sorted(self._counts.items())],
                "undeclared": [[a, name, n] for (a, name), n in sorted(self._undeclared.items())],
            }
            self.dirty = False
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
        for data in pending:
            self.store.put_if_absent(f"{SAMPLES}{stamp}-{secrets.token_hex(6)}.json", data)
        key = f"{COUNTS}{self.process}.json"
        self.store.delete(key)
        self.store.put_if_absent(key, json.dumps(snapshot).encode())
        if pending:
            keys = [info.key for info in self.store.list(SAMPLES)]
            for old in keys[: max(0, len(keys) - self.max_samples)]:
                self.store.delete(old)


def read_counts(store: Store) -> tuple[builtins.list[Rejection], dict[tuple[str, str], int]]:
    """Rejections summed over every process's counts, and undeclared names (application, name) → count."""
    counts: dict[tuple[str, str, str], int] = {}
    undeclared: dict[tuple[str, str], int] = {}
    for info in store.list(COUNTS):
        try:
            data = json.loads(store.get(info.key))
        except (ObjectNotFound, ValueError):
            continue
        for app, version, rule, n in data.get("rejections", []):
            counts[(app, version, rule)] = counts.get((app, version, rule), 0) + int(n)
        for app, name, n in data.get("undeclared", []):
            undeclared[(app, name)] = undeclared.get((app, name), 0) + int(n)
    rejections = [Rejection(a, v, r, n) for (a, v, r), n in counts.items()]
    rejections.sort(key=lambda r: (-r.count, r.application, r.version, r.rule))
    return rejections, undeclared


def read_samples(store: Store, application: str | None = None, limit: int = 5) -> builtins.list[dict[str, Any]]:
    """The newest ``limit`` samples (of ``application`` only, if given), newest first."""
    found: builtins.list[dict[str, Any]] = []
    for key in reversed([info.key for info in store.list(SAMPLES)]):
        if len(found) >= limit:
            break
        try:
            sample = json.loads(store.get(key))
        except (ObjectNotFound, ValueError):
            continue
        if application is None or sample.get("applicationId") == application:
            found.append(sample)
    return found


def clear(store: Store) -> int:
    """Delete every count and sample; how many objects."""
    return sum(store.delete(info.key) for info in builtins.list(store.list(PREFIX)))


def purge_user(store: Store, user_id: str) -> int:
    """Delete the samples that contain ``user_id``; how many."""
    return purge(store, [(user_id, None)])


def purge(store: Store, users: Iterable[tuple[str, str | None]]) -> int:
    """Delete the samples that contain one of ``users``' IDs (and its commitment, when not None); how many.

    A user's own erasure (``erasure.py``) covers only what carries the commitment to their secret,
    so a sample is deleted for it only if it holds both; the maintainer's deletion passes None.
    """
    needles = [(user.encode(), commitment.encode() if commitment else b"") for user, commitment in users]
    removed = 0
    if not needles:
        return removed
    for info in builtins.list(store.list(SAMPLES)):
        try:
            data = store.get(info.key)
        except ObjectNotFound:
            continue
        if any(user in data and proof in data for user, proof in needles) and store.delete(info.key):
            removed += 1
    return removed


def prune(store: Store, before: datetime) -> int:
    """Delete the samples received before ``before`` (retention: they are copies of sessions); how many."""
    stamp = before.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    removed = 0
    for info in builtins.list(store.list(SAMPLES)):
        name = info.key[len(SAMPLES) :]
        if name[:15] < stamp and store.delete(info.key):
            removed += 1
    return removed
