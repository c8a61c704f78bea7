"""The dashboard package's public surface."""

from __future__ import annotations

from tallystick import dashboard


def test_public_names_are_exported_sorted() -> None:
    """__all__ is sorted and names only what the package defines or re-exports."""
    assert dashboard.__all__ == sorted(dashboard.__all__)
    assert all(hasattr(dashboard, name) for name in dashboard.__all__)
