"""Errors of the schema package."""

from __future__ import annotations

from typing import Any

import msgspec


class ValidationError(msgspec.Struct, rename="camel", array_like=False):
    """One violation of the contract, as sent in a 400 answer's ``validationErrors``.

    ``key`` is the field path (``events[2].time``, ``attributes.shell``; empty for
    the body as a whole) and ``type`` the rule broken (``required``, ``pattern``...).
    """

    key: str
    type: str
    invalid_value: Any
    message: str


class SchemaError(Exception):
    """Base of the schema package's errors."""


class InvalidSession(SchemaError):
    """A session body broke the contract; ``errors`` lists every violation."""

    def __init__(self, errors: list[ValidationError]) -> None:
        self.errors = errors
        first = errors[0].message if errors else "invalid session"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)
