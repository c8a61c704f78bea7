"""Identifiers and times without uuid or datetime."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tallystick.client._session import new_uuid4, rfc3339
from tallystick.schema._rules import UUID4_PATTERN


def test_new_uuid4_is_canonical_version_4() -> None:
    """Generated IDs are lower-case canonical version-4 UUIDs, all different."""
    ids = {new_uuid4() for _ in range(500)}
    assert len(ids) == 500
    for value in ids:
        assert re.match(UUID4_PATTERN, value)
        assert uuid.UUID(value).version == 4


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_rfc3339_round_trips_to_the_microsecond(seconds: float) -> None:
    """rfc3339 writes a UTC time that parses back to the same instant (to 1 µs)."""
    text = rfc3339(seconds)
    assert text.endswith("Z")
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    assert abs(parsed.timestamp() - seconds) <= 1e-6 + abs(seconds) * 1e-15


def test_rfc3339_known_value() -> None:
    """A known instant is written as expected."""
    when = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC).timestamp()
    assert rfc3339(when) == "2024-05-01T12:00:00.250000Z"
