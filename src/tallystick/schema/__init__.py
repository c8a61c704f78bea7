"""The session contract (wire contract v1): Structs, rules, validation.

Importing this package is free of third-party imports, so the standard-library
client can use ``tallystick.schema._rules``; the msgspec-based names load on
first use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs the client milliseconds
if TYPE_CHECKING:
    from typing import Any

    from tallystick.schema.errors import InvalidSession, SchemaError, ValidationError
    from tallystick.schema.session import Event, Session, SessionBatch, Span
    from tallystick.schema.validate import decode_json, parse_session, session_from_tree, validation_errors

_HOMES = {
    "InvalidSession": "errors",
    "SchemaError": "errors",
    "ValidationError": "errors",
    "Event": "session",
    "Session": "session",
    "SessionBatch": "session",
    "Span": "session",
    "decode_json": "validate",
    "parse_session": "validate",
    "session_from_tree": "validate",
    "validation_errors": "validate",
}

__all__ = [
    "Event",
    "InvalidSession",
    "SchemaError",
    "Session",
    "SessionBatch",
    "Span",
    "ValidationError",
    "decode_json",
    "parse_session",
    "session_from_tree",
    "validation_errors",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tallystick.schema' has no attribute {name!r}")
    # __import__ rather than importlib: importing importlib costs the client's start-up.
    module = __import__(f"tallystick.schema.{home}", fromlist=[name])
    return getattr(module, name)
