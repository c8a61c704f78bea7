"""An outcome of a session: it had an event of some type, or ended with some exit code.

Several analyses ask "which sessions had X?"; this turns ``--event`` or
``--exit-code`` into one SQL condition on the ``sessions`` table, and the same
condition on ``sessions_typed`` (``warehouse/rollup.py``) for analyses that read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tallystick.analysis.errors import BadParameter
from tallystick.analysis.scope import Bound


@dataclass(frozen=True)
class Outcome:
    label: str
    condition: str  # SQL on the sessions table
    count_sql: str | None = None  # SQL counting the sessions in scope with the outcome, when cheaper than a scan
    typed_condition: str = ""  # the same condition on sessions_typed (read it only when Bound.typed(*attributes))
    attributes: tuple[str, ...] = ()  # the session attributes the condition reads

    def on(self, typed: bool) -> str:
        """The condition on ``sessions_typed`` if ``typed``, else on ``sessions``."""
        return self.typed_condition if typed else self.condition


def outcome(b: Bound, params: dict[str, Any], *, event_key: str = "event") -> Outcome:
    event = params.get(event_key)
    exit_code = params.get("exit_code")
    if (event is None) == (exit_code is None):
        raise BadParameter(f"name the outcome: either --{event_key.replace('_', '-')} TYPE or --exit-code N")
    if event is not None:
        b.require_type("events", str(event))
        ids = f'SELECT "sessionId" FROM events WHERE {b.child_where(str(event))}'
        # Events carry their session's application, version and start, so child_where selects the events
        # of exactly the sessions in scope: counting their session IDs needs no pass over sessions.
        count = f'SELECT count(DISTINCT "sessionId") FROM events WHERE {b.child_where(str(event))}'
        condition = f'"sessionId" IN ({ids})'
        return Outcome(str(event), condition, count, typed_condition=condition)
    try:
        code = int(exit_code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadParameter(f"--exit-code must be a whole number, not {exit_code!r}") from None
    b.require_attribute("exitCode")
    literal = b.dialect.literal(str(code))
    return Outcome(
        f"exitCode={code}",
        f"{b.attr('exitCode')} = {literal}",
        typed_condition=f"{b.typed_attr('exitCode')} = {literal}",
        attributes=("exitCode",),
    )
