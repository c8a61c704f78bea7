"""The dashboard package's errors: one base, a subclass per failure, messages that say what to do."""

from __future__ import annotations


class DashboardError(Exception):
    """Base of the dashboard's errors."""


class TokenRequired(DashboardError):
    """The dashboard would be reachable from other machines without a token."""


class BadQuery(DashboardError):
    """A query from the SQL or explore page cannot run; the message says why and what to change."""


class NoData(DashboardError):
    """The warehouse does not exist yet or has no sessions; the message says how to get some."""


class BodyTooLarge(DashboardError):
    """A request body passed the dashboard's limit for its path (answered with 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body too large: at most {limit:,} bytes")
        self.limit = limit
