"""The storage package's public surface."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallystick import storage
from tallystick.storage import StorageError, open_store
from tallystick.storage.local import LocalStore
from tallystick.storage.memory import MemoryStore


def test_public_names_are_exported_sorted() -> None:
    """__all__ is sorted and names only what the package defines or re-exports."""
    assert storage.__all__ == sorted(storage.__all__)
    assert all(hasattr(storage, name) for name in storage.__all__)


@pytest.mark.parametrize(
    "name", ["AccessDenied", "BucketNotFound", "InvalidStorageUrl", "ObjectNotFound", "StorageUnavailable"]
)
def test_every_error_is_a_storage_error(name: str) -> None:
    """Callers catch StorageError once to cover every storage failure."""
    assert issubclass(getattr(storage, name), StorageError)


@pytest.mark.parametrize("form", ["uri", "path"], ids=["file-url", "plain-path"])
def test_file_urls_and_plain_paths_open_the_local_store(tmp_path: Path, form: str) -> None:
    """file:///dir and a plain directory path both open a LocalStore there."""
    target = tmp_path / "sessions"
    store = open_store(target.as_uri() if form == "uri" else str(target))
    assert isinstance(store, LocalStore)
    assert store.root == target.resolve()


def test_memory_url_opens_a_new_empty_store_each_time() -> None:
    """memory:// is per open: nothing written through one store shows in another."""
    first = open_store("memory://")
    assert isinstance(first, MemoryStore)
    first.put_if_absent("k", b"v")
    assert list(open_store("memory://").list()) == []
