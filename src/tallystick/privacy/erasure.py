"""Erasure from the user's own machine: ``POST /v1/erasures``, no account, no oracle.

The client keeps a random 32-byte ``secret`` beside its user ID and puts
``commitment = sha256("tallystick-erasure-v1\\n" + userId + "\\n" + secret)`` into every
session as the attribute ``telemetryErasureCommitment`` (``schema/_rules.py``). To erase,
it sends ``{"userId", "secret"}`` once, then forgets both and starts over with new ones.

Design note
-----------
Steps, in this order:

1. **Answer.** ``record`` checks only the request's form (400 for a malformed one: that
   depends on the request alone), computes the commitment, writes a pending request,
   and the endpoint answers 202 with the same body for every well-formed request. The
   server never looks up whether the user exists or whether the secret is right before
   answering, so an unknown user, a wrong secret, a right one and an already-erased user
   cost the same work and get the same answer: there is nothing to probe, by status,
   body or timing. The replica that took the request refuses matching sessions at once,
   until its next tombstone refresh.
2. **Delete.** The load cycle (``tallystick load``/``up``) calls ``process_pending``
   after each load: it deletes, from storage and every warehouse table, the sessions of
   that user that carry that commitment and started before the request (the derived
   tables are refreshed by ``delete_matching``), and the quarantine samples that hold the
   user ID and the commitment (rejected sessions of the user). If it deleted any sessions,
   the proof holds, and it writes a *commitment tombstone* (``tombstones.py``), kept ``tombstones.KEEP_DAYS``.
   A request is re-applied at every load for ``SETTLE_SECONDS`` (well past every
   replica's refresh), so a session that reached a replica before it saw the tombstone
   is deleted too; then the pending object goes.
3. **Refuse.** From their next tombstone refresh on, ingest replicas refuse (400,
   ``deletedUser``) a session of that user that carries that commitment and started
   before the request: a session still queued on another machine of the user, or late.

Why a wrong secret deletes nothing: the deletion matches the commitment computed *from
the secret sent*; a wrong secret gives a commitment no stored session carries, so
nothing is deleted, no tombstone is written, and the pending object goes after
``SETTLE_SECONDS``: a flood of guesses leaves no lasting trace (only the rate limit
bounds what waits meanwhile). The verification happens in the load cycle, long after
the answer, so it cannot leak into it.

What this costs: an erasure whose sessions have none on the server yet (all still
queued on the user's machines) writes no tombstone, so such a session uploaded more
than ``SETTLE_SECONDS`` later is kept. The client deletes its own queue when it asks,
so only a copy of its data directory on another machine is affected.

Races: the client retries a request that got no answer; re-sending is harmless (the
pending write is create-only, keyed by time, user and commitment). A tombstone written
twice (two warehouses over one bucket, or a re-application) is the same object.
``process_pending`` running twice deletes nothing more the second time.

What is kept: tombstones and pending requests hold the user ID, the commitment and a
time; never the secret, never the requester's address. The per-client rate limit
(``erasure_rate_per_second``) lives in one process's memory, like ingest's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tallystick.privacy import quarantine
from tallystick.privacy.tombstones import Tombstones
from tallystick.schema import ValidationError, _rules
from tallystick.storage import Store

log = logging.getLogger("tallystick.privacy")

PREFIX = "privacy/v1/erasures/"
SETTLE_SECONDS = 600.0  # re-applied at each load this long: far beyond any tombstone refresh
ANSWER = {
    "message": "Erasure recorded: sessions of this user ID that carry the commitment to this secret and started "
    "before now are refused from now on and deleted at the server's next load. The same answer is given whether "
    "or not any such session exists."
}


@dataclass(frozen=True)
class Erasure:
    """One request, as kept in the store: whose sessions, which commitment, since when."""

    user_id: str
    commitment: str
    requested_at: datetime

    @property
    def key(self) -> str:
        return f"{PREFIX}{int(self.requested_at.timestamp() * 1000):013d}-{self.user_id}-{self.commitment}.json"

    def body(self) -> bytes:
        return json.dumps(
            {"userId": self.user_id, "commitment": self.commitment, "requestedAt": self.requested_at.isoformat()}
        ).encode()


def problems(tree: Any) -> list[ValidationError]:
    """What is wrong with a request body's form (``{"userId", "secret"}``); empty if nothing."""
    if not isinstance(tree, dict):
        return [ValidationError("", "type", None, "the body must be an object with userId and secret")]
    errors = [
        ValidationError(key, "unknownField", key, f"{key} is not a field of an erasure request")
        for key in tree
        if key not in ("userId", "secret")
    ]
    user_id, secret = tree.get("userId"), tree.get("secret")
    if user_id is None:
        errors.append(ValidationError("userId", "required", None, "userId is required"))
    elif not isinstance(user_id, str) or not _rules._compiled(_rules.UUID4_PATTERN).match(user_id):
        errors.append(
            ValidationError(
                "userId", "pattern", user_id, f"userId must be {_rules.PATTERN_DESCRIPTIONS[_rules.UUID4_PATTERN]}"
            )
        )
    if secret is None:
        errors.append(ValidationError("secret", "required", None, "secret is required"))
    elif not _rules.is_erasure_secret(secret):
        # The value is not echoed back: it may be a real secret with a typo.
        errors.append(ValidationError("secret", "pattern", None, "secret must be 64 lower-case hex digits"))
    return errors


def request_for(user_id: str, secret: str, now: datetime) -> Erasure:
    """The erasure that ``(user_id, secret)`` asks for at ``now`` (the secret itself is not kept)."""
    return Erasure(user_id, _rules.erasure_commitment(user_id, secret), now.astimezone(UTC))


async def record(store: Store, tombstones: Tombstones, erasure: Erasure) -> None:
    """Write the pending request; this process refuses the matching sessions at once (until its next refresh)."""
    await store.put_if_absent_async(erasure.key, erasure.body())
    tombstones.remember(erasure.user_id, erasure.requested_at, erasure.commitment)


def pending(store: Store) -> list[tuple[str, Erasure]]:
    """Every pending request with its key, oldest first; unreadable ones are skipped."""
    found = []
    for info in store.list(PREFIX):
        try:
            data = json.loads(store.get(info.key))
            erasure = Erasure(str(data["userId"]), str(data["commitment"]), datetime.fromisoformat(data["requestedAt"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipped an unreadable erasure request %s: %s", info.key, exc)
            continue
        found.append((info.key, erasure))
    return found


@dataclass
class Erased:
    """What one ``process_pending`` did."""

    requests: int = 0
    objects: int = 0
    sessions: int = 0
    settled: int = 0
    samples: int = 0

    def __str__(self) -> str:
        samples = f", {self.samples:,} quarantine sample{'' if self.samples == 1 else 's'}" if self.samples else ""
        return (
            f"{self.requests:,} erasure request{'' if self.requests == 1 else 's'} applied: "
            f"{self.sessions:,} session{'' if self.sessions == 1 else 's'} and "
            f"{self.objects:,} object{'' if self.objects == 1 else 's'}{samples}"
        )


def process_pending(store: Store, warehouse: Any, *, now: datetime | None = None) -> Erased:
    """Apply every pending erasure to ``store`` and ``warehouse`` (run right after a load); safe to repeat."""
    from tallystick.warehouse.cycle import delete_matching, delete_rejected_holding

    now = now or datetime.now(UTC)
    erased = Erased()
    requests = pending(store)
    # A rejected session of the user, sampled by quarantine, holds their ID and commitment too.
    erased.samples = quarantine.purge(store, [(e.user_id, e.commitment) for _, e in requests])
    for key, erasure in requests:
        sql = warehouse.sql
        # Whole seconds in SQL: rounded up, so nothing that ingest refuses escapes the deletion.
        ceiling = erasure.requested_at.replace(microsecond=0) + timedelta(seconds=1)
        started_before = sql.timestamp(ceiling.strftime("%Y-%m-%d %H:%M:%S"))
        deleted = delete_matching(
            store,
            warehouse,
            f'"userId" = ? AND "sessionStartTime" < {started_before} AND '
            f"{sql.attribute('attributes', _rules.ERASURE_COMMITMENT_ATTRIBUTE)} = ?",
            [erasure.user_id, erasure.commitment],
        )
        if deleted.sessions:
            # Proven: sessions carried this commitment. Only now a lasting tombstone, so requests with a
            # wrong secret (or a flood of them) leave nothing behind once they settle.
            Tombstones(store).add(erasure.user_id, erasure.requested_at, commitment=erasure.commitment)
        erased.requests += 1
        erased.objects += deleted.objects + delete_rejected_holding(
            store, warehouse, [erasure.user_id, erasure.commitment]
        )
        erased.sessions += deleted.sessions
        if now - erasure.requested_at >= timedelta(seconds=SETTLE_SECONDS):
            store.delete(key)
            erased.settled += 1
    return erased  # delete_matching refreshed the derived tables: the changed days without the erased rows
