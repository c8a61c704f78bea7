"""Fixtures of the storage tests."""

from fixtures.wal import open_logs  # noqa: F401 - a fixture: the logs a test opened, closed after it
