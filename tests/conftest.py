"""Shared test set-up: each area's real-server fixtures live in ``tests/fixtures/``."""

pytest_plugins = [
    "fixtures.common",
    "fixtures.ingest",
    "fixtures.objectstores",
    "fixtures.clickhouse",
    "fixtures.browser",
]
