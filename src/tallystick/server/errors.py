"""Failures inside the ingest service that become answers (``app.py``, ``fastroute.py``)."""

from __future__ import annotations


class StoreFailed(Exception):
    """The store could not take a session; the client should retry later (503 with Retry-After)."""
