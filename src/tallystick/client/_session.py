"""One run of the host tool as a session of the wire contract. Thread-safe.

Names and values are checked against ``tallystick.schema._rules`` when recorded:
in strict mode a bad one raises ``InvalidData`` (so a tool author's tests catch
it); otherwise it is dropped and counted, and the session stays valid.
"""

from __future__ import annotations

import _thread

from tallystick.client._ids import new_uuid4, rfc3339
from tallystick.schema import _rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tallystick.client._collection import Coverage
    from tallystick.schema._rules import AttributeValue

# Room kept among the session's attributes for the client's own (environment, costs).
RESERVED_ATTRIBUTES = 40


def _invalid(message: str) -> Exception:
    """The InvalidData to raise in strict mode, its module imported only then (most runs never raise)."""
    from tallystick.client._errors import InvalidData

    return InvalidData(message)


def _problem(kind: str, name: object, rule: str) -> str:
    return f"{kind} {name!r} breaks the Tallystick wire contract: it must be {rule}"


def clean_attributes(
    attributes: Mapping[str, object],
    *,
    strict: bool,
    count: Callable[[str, int], None],
    limit: int = _rules.MAX_ATTRIBUTES,
) -> dict[str, AttributeValue]:
    """Attributes that keep the session valid; the rest raise (strict) or are dropped and counted."""
    clean: dict[str, AttributeValue] = {}
    for name, value in attributes.items():
        if not _rules.is_attribute_name(name):
            if strict:
                rule = _rules.PATTERN_DESCRIPTIONS[_rules.ATTRIBUTE_NAME_PATTERN]
                raise _invalid(_problem("attribute name", name, f"{rule}, at most {_rules.NAME_MAX_LENGTH} long"))
            count("invalidAttribute", 1)
            continue
        if isinstance(value, str) and len(value) > _rules.ATTRIBUTE_VALUE_MAX_LENGTH and not strict:
            value = value[: _rules.ATTRIBUTE_VALUE_MAX_LENGTH]  # noqa: PLW2901  (a long text is cut, not lost)
        problem = _rules.attribute_value_problem(value)
        if problem is not None:
            if strict:
                raise _invalid(f"attribute {name!r} has a value the wire contract does not allow: it {problem}")
            count("invalidAttribute", 1)
            continue
        if len(clean) >= limit and name not in clean:
            if strict:
                raise _invalid(f"more than {limit} attributes: the wire contract allows at most {limit}")
            count("tooManyAttributes", 1)
            continue
        clean[name] = value  # type: ignore[assignment]  # checked by attribute_value_problem
    return clean


def check_type_name(kind: str, name: object, *, strict: bool) -> bool:
    """Whether ``name`` may be an event or span type (strict: raise if not)."""
    if _rules.is_type_name(name):
        return True
    if strict:
        rule = _rules.PATTERN_DESCRIPTIONS[_rules.TYPE_NAME_PATTERN]
        raise _invalid(_problem(f"{kind} type", name, f"{rule}, at most {_rules.TYPE_NAME_MAX_LENGTH} long"))
    return False


class Session:
    """The session being recorded: attributes, events and spans, each call thread-safe."""

    def __init__(
        self,
        app_id: str,
        version: str,
        user_id: str,
        *,
        clock: Callable[[], float],
        strict: bool,
        count: Callable[[str, int], None],
    ) -> None:
        self.session_id = new_uuid4()
        self.user_id = user_id
        self.app_id = app_id
        self.version = version
        self.clock = clock
        self.start_time = clock()
        self.strict = strict
        self._count = count
        self._lock = _thread.RLock()  # re-entrant: a signal handler may finish the session mid-call
        self._attributes: dict[str, AttributeValue] = {}
        self._events: list[dict[str, object]] = []
        self._spans: list[dict[str, object]] = []
        # What the user's consent covers (``_collection``); None: everything. Set by the client.
        self.coverage: Coverage | None = None

    def _withhold(self, attributes: Mapping[str, object]) -> Mapping[str, object]:
        coverage = self.coverage
        if coverage is None or all(coverage.attribute(n) for n in attributes if isinstance(n, str)):
            return attributes
        kept = {n: v for n, v in attributes.items() if not isinstance(n, str) or coverage.attribute(n)}
        self._count("notConsented", len(attributes) - len(kept))
        return kept

    def _withheld_type(self, kind: str, type_name: str) -> bool:
        if self.coverage is None or not isinstance(type_name, str) or self.coverage.type(kind, type_name):
            return False
        self._count("notConsented", 1)
        return True

    def set_attributes(self, attributes: Mapping[str, object], *, internal: bool = False) -> None:
        limit = _rules.MAX_ATTRIBUTES if internal else _rules.MAX_ATTRIBUTES - RESERVED_ATTRIBUTES
        attributes = self._withhold(attributes)
        with self._lock:
            room = max(0, limit - len(self._attributes))
            clean = clean_attributes(attributes, strict=self.strict and not internal, count=self._count, limit=room)
            self._attributes.update(clean)

    def add_event(self, type_name: str, attributes: Mapping[str, object], when: float | None = None) -> None:
        if not check_type_name("event", type_name, strict=self.strict):
            self._count("invalidName", 1)
            return
        if self._withheld_type("event", type_name):
            return
        clean = clean_attributes(attributes, strict=self.strict, count=self._count)
        event: dict[str, object] = {"type": type_name, "time": rfc3339(self.clock() if when is None else when)}
        if clean:
            event["attributes"] = clean
        with self._lock:
            if len(self._events) >= _rules.MAX_EVENTS:
                if self.strict:
                    raise _invalid(f"more than {_rules.MAX_EVENTS} events in one session")
                self._count("tooManyEvents", 1)
                return
            self._events.append(event)

    def add_span(self, type_name: str, start: float, end: float, attributes: Mapping[str, object]) -> None:
        if not check_type_name("span", type_name, strict=self.strict):
            self._count("invalidName", 1)
            return
        if self._withheld_type("span", type_name):
            return
        clean = clean_attributes(attributes, strict=self.strict, count=self._count)
        span: dict[str, object] = {"type": type_name, "startTime": rfc3339(start), "endTime": rfc3339(max(end, start))}
        if clean:
            span["attributes"] = clean
        with self._lock:
            if len(self._spans) >= _rules.MAX_SPANS:
                if self.strict:
                    raise _invalid(f"more than {_rules.MAX_SPANS} spans in one session")
                self._count("tooManySpans", 1)
                return
            self._spans.append(span)

    def to_dict(self, end_time: float | None = None) -> dict[str, object]:
        """The session as the wire contract's JSON object, ending now (or at ``end_time``)."""
        end = self.clock() if end_time is None else end_time
        with self._lock:
            tree: dict[str, object] = {
                "sessionId": self.session_id,
                "userId": self.user_id,
                "sessionStartTime": rfc3339(self.start_time),
                "sessionEndTime": rfc3339(max(end, self.start_time)),
                "applicationId": self.app_id,
                "applicationVersion": self.version,
                "attributes": dict(self._attributes),
                "events": list(self._events),
                "spans": list(self._spans),
            }
        return tree
