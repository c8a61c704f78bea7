"""``--retention-days``: sessions older than N days are deleted from storage and warehouse on a schedule.

``tallystick up`` and ``tallystick load`` run ``Retention.run_if_due`` after a load:
at most once per ``every_seconds`` (an hour), it deletes sessions that started
more than ``days`` whole UTC days ago (``tallystick.warehouse.cycle``; one dated ahead of
its arrival by a client's clock ages from its arrival) and quarantine samples as old, sweeps
sessions of recently deleted users that arrived before ingest saw their tombstone,
and prunes tombstones older than ``tombstones.KEEP_DAYS``. The clock is a seam for
tests. Default: ``DEFAULT_DAYS`` (about 13 months: a year-on-year view of a month
keeps working); ``off`` keeps everything.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module on every run: the warehouse loads only when retention runs
    from tallystick.storage import Store
    from tallystick.warehouse import Warehouse

DEFAULT_DAYS = 400
MAX_DAYS = 36_500
SWEEP_DAYS = 2  # tombstones this recent are swept after each scheduled run


def parse_days(text: str) -> int | None:
    """``N`` (whole days, at least 1) or ``off``."""
    if text.strip().lower() in ("off", "never", "forever"):
        return None
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days: use e.g. 400, or off") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: keep at least 1 day, or use off to keep everything")
    if days > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_DAYS} days (100 years), or use off")
    return days


@dataclass
class Swept:
    """What one scheduled run removed."""

    objects: int = 0
    sessions: int = 0
    tombstones: int = 0
    samples: int = 0

    def __str__(self) -> str:
        samples = f", {self.samples:,} quarantine samples" if self.samples else ""
        return (
            f"{self.sessions:,} sessions and {self.objects:,} objects deleted{samples}, "
            f"{self.tombstones:,} tombstones pruned"
        )


class Retention:
    """The retention schedule: ``run_if_due`` once per ``every_seconds`` of ``clock`` time."""

    def __init__(
        self,
        days: int | None,
        *,
        every_seconds: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.days = days
        self.every = timedelta(seconds=every_seconds)
        self.clock = clock
        self.last: datetime | None = None

    def due(self) -> bool:
        """Whether a run is due: ``every`` has passed, or the clock went back (set right after running ahead)."""
        if self.last is None:
            return True
        elapsed = self.clock() - self.last
        return elapsed >= self.every or elapsed < timedelta(0)

    def run_if_due(self, store: Store, warehouse: Warehouse) -> Swept | None:
        if not self.due():
            return None
        return self.run(store, warehouse)

    def run(self, store: Store, warehouse: Warehouse) -> Swept:
        from tallystick.privacy import quarantine
        from tallystick.privacy.tombstones import Tombstones
        from tallystick.warehouse.cycle import delete_older_than

        now = self.clock()
        self.last = now
        swept = Swept()
        if self.days is not None:
            deleted = delete_older_than(store, warehouse, self.days, today=now.date())
            swept.objects, swept.sessions = deleted.objects, deleted.sessions
            # Rejected sessions sampled by quarantine are copies too: they age like sessions.
            swept.samples = quarantine.prune(
                store, datetime.combine(now.date(), time(), UTC) - timedelta(days=self.days)
            )
        tombstones = Tombstones(store)
        recent = {d: t for d, t in tombstones.read().items() if now - t <= timedelta(days=SWEEP_DAYS)}
        for user_id, deleted_at in tombstoned_users(warehouse, recent).items():
            objects, sessions = sweep(store, warehouse, user_id, deleted_at)
            swept.objects += objects
            swept.sessions += sessions
        swept.tombstones = tombstones.prune(now)
        return swept


def tombstoned_users(warehouse: Warehouse, digests: dict[str, datetime]) -> dict[str, datetime]:
    """The user IDs behind ``digests`` (user digest -> deletion time) among sessions loaded since.

    Tombstones hold only a digest of the ID, so the IDs of sessions ingested from a day before
    the oldest deletion on (those that may have slipped past a replica's tombstone refresh),
    and of sessions stored without an ingestion time, are hashed and matched.
    """
    if not digests:
        return {}
    from tallystick.privacy.tombstones import user_digest

    since = (min(digests.values()) - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    rows = warehouse.query(
        'SELECT DISTINCT "userId" FROM sessions '
        f'WHERE "ingestionTime" IS NULL OR "ingestionTime" >= {warehouse.sql.timestamp(since)}'
    ).rows
    found = {}
    for (user_id,) in rows:
        when = digests.get(user_digest(str(user_id)))
        if when is not None:
            found[str(user_id)] = when
    return found


def sweep(store: Store, warehouse: Warehouse, user_id: str, deleted_at: datetime) -> tuple[int, int]:
    """Delete the (loaded) sessions of ``user_id`` that started before ``deleted_at``: (objects, sessions)."""
    from tallystick.warehouse.cycle import delete_user

    deleted = delete_user(store, warehouse, user_id, before=deleted_at, load_first=False)
    return deleted.objects, deleted.sessions


def after_load(retention: Retention | None) -> list[tuple[str, Callable[[Store, Warehouse], object]]]:
    """The privacy steps of the load cycle (``tallystick.warehouse.cycle.run``), in order.

    Erasures users asked for from their machines first (``erasure.py``: after the load, so
    sessions stored but not yet loaded are found), then retention when it is due.
    """
    from tallystick.privacy.erasure import process_pending

    steps: list[tuple[str, Callable[[Store, Warehouse], object]]] = [("erasure", process_pending)]
    if retention is not None:
        steps.append(("retention", retention.run_if_due))
    return steps
