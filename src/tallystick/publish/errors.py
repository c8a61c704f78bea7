"""The publish package's errors: each message says what was wrong and what to change."""

from __future__ import annotations


class PublishError(Exception):
    """Base of the publish package's errors."""


class BadConfig(PublishError):
    """The publish configuration is malformed or names something that does not exist."""


class Unpublishable(PublishError):
    """The analysis asked for cannot be published with minimum cell counts."""
