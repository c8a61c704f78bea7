"""Views that make common questions short, written once with the dialect helpers.

- ``sessions_env``: every session with a typed column per common environment
  attribute (``shell``, ``osName``, ``ci``, ...), so ``WHERE ci`` needs no JSON.
- ``user_days``: one row per application, user and UTC day: how many sessions,
  the first and last start, the version last used and the time spent. Daily and
  monthly active users, retention and adoption curves start here.
"""

from __future__ import annotations

from tallystick.warehouse.dialect import Dialect
from tallystick.warehouse.tables import ENVIRONMENT_ATTRIBUTES


def views(d: Dialect) -> list[tuple[str, str]]:
    """(name, SELECT) of every view, in the order to create them."""
    env = ", ".join(f'{d.attribute("attributes", name, kind)} AS "{name}"' for name, kind in ENVIRONMENT_ATTRIBUTES)
    start = '"sessionStartTime"'
    last_version = d.arg_max('"applicationVersion"', start)
    user_days = (
        f'SELECT "applicationId", "userId", {d.day(start)} AS "day", count(*) AS "sessionCount", '
        f'min({start}) AS "firstSessionStart", max({start}) AS "lastSessionStart", '
        f'{last_version} AS "lastVersion", sum("durationMs") AS "totalDurationMs" '
        f'FROM sessions GROUP BY "applicationId", "userId", {d.day(start)}'
    )
    return [("sessions_env", f"SELECT *, {env} FROM sessions"), ("user_days", user_days)]
