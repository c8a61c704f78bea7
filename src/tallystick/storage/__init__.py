"""Object storage behind one small interface, chosen by URL."""

from __future__ import annotations

from tallystick.storage.base import (
    InvalidStorageUrl,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    Store,
)


def open_store(url: str) -> Store:
    """The store a URL names: ``file:///dir`` (or a plain path), ``memory://``, ``s3://``, ``gs://``, ``az://``."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    if scheme == "file":
        from tallystick.storage.local import LocalStore, path_from_url

        return LocalStore(path_from_url(url))
    if scheme == "memory":
        from tallystick.storage.memory import MemoryStore

        return MemoryStore(url)
    raise InvalidStorageUrl(
        f"unsupported storage URL {url!r}: use file:///path/to/dir, a plain directory path or memory://"
    )


__all__ = [
    "InvalidStorageUrl",
    "ObjectInfo",
    "ObjectNotFound",
    "StorageError",
    "StorageUnavailable",
    "Store",
    "open_store",
]
