"""The publish package's public surface."""

from __future__ import annotations

from tallystick import publish


def test_public_names_are_exported_sorted() -> None:
    """__all__ is sorted and names only what the package defines or re-exports."""
    assert publish.__all__ == sorted(publish.__all__)
    assert all(hasattr(publish, name) for name in publish.__all__)


def test_every_error_is_a_publish_error() -> None:
    """Callers catch PublishError once to cover every publishing failure."""
    assert issubclass(publish.BadConfig, publish.PublishError)
    assert issubclass(publish.Unpublishable, publish.PublishError)
