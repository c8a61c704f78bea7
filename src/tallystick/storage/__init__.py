"""Object storage behind one small interface, chosen by URL."""

from __future__ import annotations

from tallystick.storage.base import (
    AccessDenied,
    BucketNotFound,
    InvalidStorageUrl,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageMisconfigured,
    StorageUnavailable,
    Store,
)


def open_store(url: str) -> Store:
    """The store a URL names: ``file:///dir`` (or a plain path), ``memory://``, ``s3://``, ``gs://``, ``az://``.

    See docs/storage.md for where each backend takes its endpoint and credentials from.
    Raises InvalidStorageUrl, with what to fix, for a URL that names no usable store.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    if scheme == "file":
        from tallystick.storage.local import LocalStore, path_from_url

        return LocalStore(path_from_url(url))
    if scheme == "memory":
        from tallystick.storage.memory import MemoryStore

        return MemoryStore(url)
    from tallystick.storage.cloud import KINDS, open_bucket, redact

    if scheme in KINDS:
        return open_bucket(url)
    raise InvalidStorageUrl(
        f"unsupported storage URL {redact(url)!r}: use file:///path/to/dir, a plain directory path, memory://, "
        "s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
    )


__all__ = [
    "AccessDenied",
    "BucketNotFound",
    "InvalidStorageUrl",
    "ObjectInfo",
    "ObjectNotFound",
    "StorageError",
    "StorageMisconfigured",
    "StorageUnavailable",
    "Store",
    "open_store",
]
