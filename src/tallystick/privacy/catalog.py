"""The data every session carries whatever the application declares: the client's built-ins.

Derived from the catalog in ``tallystick.client._collection`` (the list the client's code is checked
against) plus the session's own fields from the wire contract, so the privacy
listing and the strict-mode check read one source.
"""

from __future__ import annotations

from tallystick.client import _collection
from tallystick.privacy.declarations import Item

SESSION_FIELDS: tuple[Item, ...] = (
    Item("sessionId", "string", "Random ID of one run of the tool.", "To count runs and drop duplicate uploads."),
    Item(
        "userId",
        "string",
        "Random ID made on the first recorded run of an installation; not derived from anything about the user "
        "or machine, and deleted when telemetry is disabled.",
        "To count users and to delete one user's data on request (`tallystick delete-user`).",
    ),
    Item("sessionStartTime", "string", "When the run started (RFC 3339).", "For trends over time and durations."),
    Item("sessionEndTime", "string", "When the run ended.", "For durations."),
    Item("applicationId", "string", "The tool's ID, e.g. mytool.", "To keep each tool's data apart."),
    Item("applicationVersion", "string", "The tool's version.", "To see version adoption and per-version errors."),
    Item("ingestionTime", "string", "When the server received the session (set by the server).", "For loading."),
)


def _items(entries: tuple[tuple[str, str, str], ...], why: str) -> tuple[Item, ...]:
    return tuple(Item(name, kind, description, why) for name, kind, description in entries)


ENVIRONMENT: tuple[Item, ...] = _items(
    _collection.ENVIRONMENT_ATTRIBUTES, "To see which platforms the tool must support and where errors happen."
)
CLIENT: tuple[Item, ...] = _items(
    _collection.CLIENT_ATTRIBUTES, "To check that telemetry does not slow the tool and loses nothing."
)
EVENTS: tuple[Item, ...] = tuple(
    Item(name, "event", description, "To find crashes and interrupted runs.", _items(attributes, ""))
    for name, description, attributes in _collection.EVENTS
)


SPAN_ATTRIBUTES: tuple[Item, ...] = _items(_collection.SPAN_ATTRIBUTES, "To see which operations fail.")


def builtin_span_attribute(name: str) -> bool:
    """Whether the client itself adds an attribute of this name to the tool's spans (``failed``)."""
    return any(item.name == name for item in SPAN_ATTRIBUTES)


def builtin_attribute(name: str) -> bool:
    """Whether the client itself sets a session attribute of this name."""
    return any(_matches(item.name, name) for item in (*ENVIRONMENT, *CLIENT))


def builtin_event(name: str) -> Item | None:
    for item in EVENTS:
        if item.name == name:
            return item
    return None


def _matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1]) and len(name) > len(pattern) - 1
    return name == pattern
