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
from tallystick.warehouse import rollup


@dataclass(frozen=True)
class Outcome:
    label: str
    condition: str  # SQL on the sessions table, true for a session in scope with the outcome (ask only those)
    count_sql: str | None = None  # SQL counting the sessions in scope with the outcome, when cheaper than a scan
    typed_condition: str = ""  # the same condition on sessions_typed (read it only when Bound.typed(*attributes))
    attributes: tuple[str, ...] = ()  # the session attributes the condition reads
    event: str | None = None  # the event type, for an outcome that is an event

    def on(self, typed: bool) -> str:
        """The condition on ``sessions_typed`` if ``typed``, else on ``sessions``."""
        return self.typed_condition if typed else self.condition

    def none_found(self, b: Bound) -> None:
        """Called when no session in scope has the outcome: an event type that no event in scope has is a
        mistake (UnknownType), not a rate of zero. ``outcome()`` checked the type without the attribute
        filters only (see ``Bound.require_type``)."""
        if self.event is not None:
            b.require_type("events", self.event)


def outcome(b: Bound, params: dict[str, Any], *, event_key: str = "event") -> Outcome:
    event = params.get(event_key)
    exit_code = params.get("exit_code")
    if (event is None) == (exit_code is None):
        raise BadParameter(f"name the outcome: either --{event_key.replace('_', '-')} TYPE or --exit-code N")
    if event is not None:
        b.require_type("events", str(event), with_filters=False)  # cheap; see Outcome.none_found
        # The condition is only ever put to sessions in scope, filters applied: the events need not be
        # matched against the filters again (a second pass over the sessions).
        events = f"FROM events WHERE {b.child_where(str(event), with_filters=False)}"
        ids = f'SELECT "sessionId" {events}'
        # Events carry their session's application, version and start, so child_where selects the events
        # of exactly the sessions in scope: counting their session IDs needs no pass over sessions.
        count = f'SELECT count(DISTINCT "sessionId") FROM events WHERE {b.child_where(str(event))}'
        condition = f'"sessionId" IN ({ids})'
        typed = condition
        if rollup.session_keyed(b.warehouse):  # integers read from sessions_typed, not 36-character IDs
            key = b.dialect.user_key('"sessionId"')
            typed = f"{rollup.SESSION_KEY} IN (SELECT {key} {events})"
        return Outcome(str(event), condition, count, typed_condition=typed, event=str(event))
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
