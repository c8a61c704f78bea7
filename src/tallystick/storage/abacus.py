"""Importing an Abacus bucket into Tallystick's storage (``tallystick import``).

Abacus, the ingest service Batect's client was written for, keeps each session as
``v1/<applicationId>/<applicationVersion>/<sessionId>.json``. Importing copies every such
object into Tallystick's layout (``layout.py``), after the same validation ingest applies.

Design note
-----------
Steps of one run:

1. List the source's ``v1/`` keys in key order, starting after the checkpoint's last key
   (``--restart`` or no checkpoint: from the first).
2. For each key: skip it, counted with its reason, unless it is an Abacus session key
   holding a strict UTF-8 JSON session that passes the wire contract and whose
   ``sessionId`` is the one in its key, and that ingest would not refuse as a deleted
   user's (the destination's tombstones: a deletion is not undone by importing again).
3. Store it with a create-only write under its Tallystick key, as sent: the text Abacus
   kept, its ``ingestionTime`` too (the time Abacus received it); an object already there
   (an earlier run, or the same session sent to Tallystick directly) is counted, not
   rewritten.
4. Every ``CHECKPOINT_EVERY`` objects, at the end, and when a run stops part-way (an error,
   Ctrl-C), write the checkpoint (the last key dealt with and the counts so far) atomically:
   a temp file, fsync, rename.

Steps 2 and 3 of up to ``READERS`` keys run at once on a small thread pool (each is mostly
waiting on the source and the destination), at most ``WINDOW`` keys ahead of the oldest not
yet finished. Their outcomes are taken in key order, on the listing thread: the counts, the
examples and the checkpoint's last key are those of a run that read one key at a time, and
a key is in the checkpoint only when it and every key before it are done.

Why a crash or a second run is harmless: writes are create-only, so redoing a key whose
checkpoint was not written yet (one of the pool's keys past the checkpoint, done when the run
stopped) stores nothing twice; a key is in the checkpoint only after its write, and every
earlier key's, returned (durable). A second run lists nothing past the checkpoint and adds
nothing; with ``--restart`` it reads everything again and finds every session already there.
Objects Abacus writes after a run are past the checkpoint only if their keys sort after it:
re-run with ``--restart`` to pick up sessions of versions or applications listed earlier.
"""

from __future__ import annotations

import json
import os
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tallystick.schema import InvalidSession, Session, decode_json, session_from_tree
from tallystick.schema._rules import ATTRIBUTE_VALUE_MAX_LENGTH
from tallystick.storage.base import ObjectNotFound, Store
from tallystick.storage.layout import encode_json, session_key, stamped_json

ABACUS_PREFIX = "v1/"
CHECKPOINT_EVERY = 500
READERS = 8  # objects read and written at once: enough to hide a bucket's latency, few enough to be polite
WINDOW = 4  # keys in flight per reader, ahead of the oldest one not finished
_EXAMPLES = 5  # keys kept per skip reason, to show the user


@dataclass
class ImportStats:
    """What a run did: ``done`` = imported + already there + skipped (``skipped`` by reason)."""

    imported: int = 0
    already: int = 0
    records: int = 0  # privacy records copied along with a Tallystick store's sessions (copy.py)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    last_key: str | None = None
    resumed_after: str | None = None

    @property
    def done(self) -> int:
        return self.imported + self.already + self.records + sum(self.skipped.values())

    def skip(self, key: str, reason: str) -> None:
        self.skipped[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < _EXAMPLES:
            kept.append(key)

    def summary(self) -> str:
        text = f"{self.imported:,} sessions imported, {self.already:,} already there"
        skipped = sum(self.skipped.values())
        text += f", {skipped:,} skipped"
        if skipped:
            reasons = "; ".join(f"{n:,} {reason}" for reason, n in self.skipped.most_common())
            text += f" ({reasons})"
        if self.records:
            plural = "" if self.records == 1 else "s"
            text += f"; {self.records:,} privacy record{plural} (tombstones, erasure requests, rejection counts) copied"
        return text


def parse_abacus_key(key: str) -> tuple[str, str, str] | None:
    """(applicationId, applicationVersion, sessionId) of ``v1/<app>/<version>/<id>.json``, else None."""
    if not key.startswith(ABACUS_PREFIX) or not key.endswith(".json"):
        return None
    parts = key[len(ABACUS_PREFIX) : -len(".json")].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    app, version, session_id = parts
    return app, version, session_id


class Checkpoint:
    """Where a run got to, in a small JSON file written atomically (see the design note)."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source

    def last_key(self) -> str | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: start over, which is safe (create-only writes)
        if not isinstance(data, dict) or data.get("source") != self.source:
            return None
        after = data.get("after")
        return after if isinstance(after, str) else None

    def save(self, stats: ImportStats) -> None:
        if stats.last_key is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "source": self.source,
            "after": stats.last_key,
            "imported": stats.imported,
            "already": stats.already,
            "skipped": dict(stats.skipped),
            "saved": datetime.now(UTC).isoformat(),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _invalid_reason(exc: InvalidSession) -> str:
    rules = sorted({f"{e.key.split('[')[0].split('.')[0] or 'body'}: {e.type}" for e in exc.errors})
    return "not a valid session (" + ", ".join(rules[:4]) + (", ..." if len(rules) > 4 else "") + ")"


IMPORTED = "imported"
ALREADY = "already"
RECORD = "record"


Refused = Callable[[Session], bool]
"""Whether a session must not be stored (its user was deleted: ``tallystick.privacy.tombstones``)."""

DELETED_USER = "of a user deleted since (a tombstone refuses it, as ingest would)"


def _copy(
    source: Store, dest: Store, key: str, *, max_value_chars: int, now: datetime, refused: Refused | None = None
) -> str:
    """Import one source object into ``dest``: IMPORTED, ALREADY, or why it was skipped. Thread-safe."""
    if parse_abacus_key(key) is None:
        return "not an Abacus session key (v1/<app>/<version>/<sessionId>.json)"
    try:
        data = source.get(key)
    except ObjectNotFound:
        return "deleted while importing"
    try:
        tree = decode_json(data)
        session = session_from_tree(tree, max_value_chars)
    except InvalidSession as exc:
        if exc.errors and exc.errors[0].type in ("json", "utf8"):
            return "not UTF-8 JSON"
        return _invalid_reason(exc)
    if parse_abacus_key(key) != (session.application_id, session.application_version, session.session_id):
        return "key does not match the session's applicationId, applicationVersion and sessionId"
    if refused is not None and refused(session):
        return DELETED_USER
    received = tree.get("ingestionTime")
    text = stamped_json(session, tree, now)
    if isinstance(received, str) and session.ingestion_time is not None and session.ingestion_time.year > 1:
        # Keep when Abacus received it (Go writes its zero time, year 1, when there was none).
        stored = json.loads(text)
        stored["ingestionTime"] = received
        text = json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode()
    return IMPORTED if dest.put_if_absent(session_key(session), encode_json(text)) else ALREADY


def _count(stats: ImportStats, key: str, outcome: str) -> None:
    if outcome == IMPORTED:
        stats.imported += 1
    elif outcome == ALREADY:
        stats.already += 1
    elif outcome == RECORD:
        stats.records += 1
    else:
        stats.skip(key, outcome)
    if stats.last_key is None or key > stats.last_key:  # a prefix listed again (``run_import``) never moves it back
        stats.last_key = key


def import_object(
    source: Store, dest: Store, key: str, stats: ImportStats, *, max_value_chars: int, now: datetime
) -> None:
    """Import one source object into ``dest``, counting the outcome in ``stats``."""
    _count(stats, key, _copy(source, dest, key, max_value_chars=max_value_chars, now=now))


def import_abacus(
    source: Store,
    dest: Store,
    *,
    checkpoint: Checkpoint | None = None,
    restart: bool = False,
    max_value_chars: int = ATTRIBUTE_VALUE_MAX_LENGTH,
    progress: Callable[[ImportStats], None] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    readers: int = READERS,
    refused: Refused | None = None,
) -> ImportStats:
    """Copy every Abacus session in ``source`` into ``dest`` (steps in the design note above),
    ``readers`` objects at a time (1: one after the other, on this thread); a session ``refused``
    says no to (a deleted user's) is skipped, counted with its reason."""
    now = datetime.now(UTC)

    def copy(key: str) -> str:
        return _copy(source, dest, key, max_value_chars=max_value_chars, now=now, refused=refused)

    return run_import(
        source,
        (ABACUS_PREFIX,),
        copy,
        checkpoint=checkpoint,
        restart=restart,
        progress=progress,
        checkpoint_every=checkpoint_every,
        readers=readers,
    )


def run_import(
    source: Store,
    prefixes: tuple[str, ...],
    copy: Callable[[str], str],
    *,
    checkpoint: Checkpoint | None = None,
    restart: bool = False,
    progress: Callable[[ImportStats], None] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    readers: int = READERS,
    stats: ImportStats | None = None,
) -> ImportStats:
    """Steps 1, 3 (through ``copy``, which answers IMPORTED, ALREADY or why it skipped a key) and 4 of
    the design note, over every key under ``prefixes`` (given in key order) after the checkpoint."""
    stats = stats or ImportStats()
    if checkpoint is not None and restart:
        checkpoint.clear()
    after = checkpoint.last_key() if checkpoint is not None else None
    stats.resumed_after = stats.last_key = after
    pool = ThreadPoolExecutor(max(1, readers), thread_name_prefix="tallystick-import")
    pending: deque[tuple[str, Future[str]]] = deque()

    def finish_oldest() -> None:
        key, outcome = pending.popleft()
        _count(stats, key, outcome.result())  # a failed read or write raises here, in key order
        if stats.done % checkpoint_every == 0:
            if checkpoint is not None:
                checkpoint.save(stats)
            if progress is not None:
                progress(stats)

    try:
        for prefix in prefixes:
            # A prefix the checkpoint has passed (privacy/v1/ before sessions/v1/) is listed whole again:
            # what was written there since the last run would otherwise never be copied (writes are create-only).
            passed = after is not None and after > prefix and not after.startswith(prefix)
            for info in source.list(prefix, start_after=None if passed else after):
                pending.append((info.key, pool.submit(copy, info.key)))
                if len(pending) >= max(1, readers) * WINDOW:
                    finish_oldest()
        while pending:
            finish_oldest()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # what is running finishes; the rest never starts
        if checkpoint is not None:
            checkpoint.save(stats)  # every key up to stats.last_key is done, whatever stopped the run
    if progress is not None:
        progress(stats)
    return stats


def checkpoint_name(source_url: str, kind: str = "abacus") -> str:
    """A file name for the checkpoint of importing ``source_url`` (one per source and kind)."""
    import hashlib

    return f"{kind}-import-" + hashlib.sha256(source_url.encode()).hexdigest()[:16] + ".json"


__all__ = [
    "ALREADY",
    "IMPORTED",
    "RECORD",
    "Checkpoint",
    "ImportStats",
    "checkpoint_name",
    "import_abacus",
    "import_object",
    "parse_abacus_key",
    "run_import",
]
