"""``tallystick delete-user``: every session of one anonymous user ID, gone from storage and warehouse.

Steps, in this order:

1. Record a tombstone (``tombstones.py``) first, so that ingest replicas refuse the
   user's old sessions from their next refresh on, even while steps 2-3 run.
2. Load, then delete by the warehouse (``tallystick.warehouse.cycle.delete_user``):
   object keys do not contain the user ID, and the warehouse knows which objects held
   which sessions, so a load followed by one indexed query finds them. Scanning and
   decompressing every object of every partition would cost a full read of the store.
3. Delete quarantine samples that contain the user ID.

Re-running is safe and deletes nothing more. A session uploaded in the few seconds
before every ingest replica has refreshed its tombstones (``tombstone_refresh_seconds``)
can still be stored: the retention job sweeps recent tombstones after each load
(``retention.sweep``), and so does running this command again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tallystick.privacy import quarantine
from tallystick.privacy.errors import InvalidUserId
from tallystick.privacy.tombstones import Tombstones
from tallystick.schema import _rules
from tallystick.storage import Store
from tallystick.warehouse import Warehouse
from tallystick.warehouse.cycle import delete_user as delete_from_warehouse


@dataclass(frozen=True)
class UserDeleted:
    """What ``delete_user`` removed, and when the tombstone says it happened."""

    user_id: str
    objects: int
    sessions: int
    samples: int
    deleted_at: datetime


def check_user_id(user_id: str) -> str:
    if not re.match(_rules.UUID4_PATTERN, user_id):
        raise InvalidUserId(
            f"{user_id!r} is not a user ID: give the version-4 UUID the client shows "
            "(`python -m tallystick.client show --app APP` prints it)"
        )
    return user_id


def delete_user(
    store: Store,
    warehouse: Warehouse,
    user_id: str,
    *,
    now: datetime | None = None,
    report: Callable[[str], None] | None = None,
) -> UserDeleted:
    """Delete every session of ``user_id`` from ``store`` and ``warehouse``; safe to repeat.
    ``report`` hears when the load that comes first waits for another process's load."""
    check_user_id(user_id)
    when = now or datetime.now(UTC)
    Tombstones(store).add(user_id, when)
    deleted = delete_from_warehouse(store, warehouse, user_id, load_first=True, report=report)
    samples = quarantine.purge_user(store, user_id)
    return UserDeleted(user_id, deleted.objects, deleted.sessions, samples, when)
