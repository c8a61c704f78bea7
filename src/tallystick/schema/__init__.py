"""The session contract (wire contract v1): Structs, rules, validation."""

from tallystick.schema.errors import InvalidSession, SchemaError, ValidationError
from tallystick.schema.session import Event, Session, SessionBatch, Span
from tallystick.schema.validate import decode_json, parse_session, session_from_tree, validation_errors

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
