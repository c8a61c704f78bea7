"""The client's exceptions: one base, a subclass per failure.

They are raised only in strict mode (``Config(strict=True)``, which
``tallystick.testing.capture`` turns on), so a tool author learns of a bad name
in their tests; in production the client drops what it cannot send and counts it.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every exception the Tallystick client raises."""


class ConfigError(ClientError):
    """The configuration cannot work: fix the ``Config`` passed to ``configure``."""


class InvalidData(ClientError, ValueError):
    """An event, span or attribute breaks the wire contract: rename it or change its value."""
