"""The schema package's public surface."""

from __future__ import annotations

import pytest

from tallystick import schema


def test_all_is_sorted_and_resolvable() -> None:
    """__all__ is sorted and every name in it can be imported (they load lazily)."""
    assert schema.__all__ == sorted(schema.__all__)
    for name in schema.__all__:
        assert getattr(schema, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    """A name the package does not have raises AttributeError, as for any module."""
    with pytest.raises(AttributeError, match="Nope"):
        getattr(schema, "Nope")  # noqa: B009
