"""The obstore adapter's own checks: create-only writes proven by ``check()``, one-line errors without secrets."""

from __future__ import annotations

from typing import Any

import pytest
from obstore.store import MemoryStore as InMemory

from tallystick.storage import StorageMisconfigured, StorageUnavailable, open_store
from tallystick.storage.bucket import MEMORY, PROBE_KEY, Backend, BucketStore, scrub

S3_LIKE = Backend("s3", "S3", "bucket", "aws s3 mb s3://<name>", "set AWS_*", create_only="PUT with If-None-Match: *")
SECRET = "TOPSECRET-0123456789"


class IgnoresCreateOnly:
    """An obstore store that drops ``mode``: every write succeeds and overwrites, as a server ignoring If-None-Match."""

    def __init__(self) -> None:
        self.inner = InMemory()

    def put(self, key: str, data: bytes, **options: Any) -> Any:
        options.pop("mode", None)
        return self.inner.put(key, data, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class ProbeVanishes:
    """An obstore store that accepts writes but answers every HEAD with not-found (text holding secrets)."""

    def __init__(self) -> None:
        self.inner = InMemory()

    def head(self, key: str) -> Any:
        raise FileNotFoundError(f"Object at location {key} not found: http://admin:{SECRET}@127.0.0.1:1/b/{key}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _store(inner: Any, backend: Backend = S3_LIKE) -> BucketStore:
    endpoint = f"http://admin:{SECRET}@127.0.0.1:1"
    return BucketStore(inner, url="s3://b/p", backend=backend, bucket="b", endpoint=endpoint, secrets=(SECRET,))


def test_check_refuses_a_service_that_ignores_create_only_writes() -> None:
    """A service whose create-only write overwrites fails check() with one line naming the backend's condition."""
    store = _store(IgnoresCreateOnly())
    assert store.put_if_absent("k", b"first") is True
    assert store.put_if_absent("k", b"second") is True  # what check() exists to catch: duplicates overwrite
    with pytest.raises(StorageMisconfigured, match=r"^S3 bucket 'b' at http://\*\*\*@127.0.0.1:1 does not honour") as c:
        store.check()
    message = str(c.value)
    assert "conditional writes (PUT with If-None-Match: *)" in message
    assert "\n" not in message and SECRET not in message


def test_check_passes_on_a_create_only_store_and_again_once_the_probe_exists() -> None:
    """A store that honours create-only passes check() on first use and on every later check."""
    store = _store(InMemory(), MEMORY)
    store.check()
    store.check()
    assert store.put_if_absent(PROBE_KEY.replace(".tallystick", "x"), b"1") is True


def test_check_says_when_the_probe_cannot_be_read_back() -> None:
    """A probe that was written but cannot be read is StorageUnavailable in one line, without secrets."""
    with pytest.raises(StorageUnavailable, match=r"accepted the probe \.tallystick/check but cannot read it back") as c:
        _store(ProbeVanishes()).check()
    assert SECRET not in str(c.value) and "\n" not in str(c.value)


def test_endpoint_is_kept_without_userinfo() -> None:
    """The endpoint a store shows in messages never carries user:password@."""
    assert _store(InMemory()).endpoint == "http://***@127.0.0.1:1"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("PUT http://admin:pw@127.0.0.1:1/b/k failed", "PUT http://***@127.0.0.1:1/b/k failed"),
        ("https://u:p@ss@host/x?X-Amz-Signature=abc", "https://***@host/x?X-Amz-Signature=…"),
        (f"invalid key {SECRET}", "invalid key ***"),
        ("bucket 'short' ok", "bucket 'short' ok"),
    ],
    ids=["userinfo", "at-in-password-and-signature", "given-secret", "short-values-untouched"],
)
def test_scrub_removes_userinfo_signatures_and_given_secrets(text: str, shown: str) -> None:
    """Text from obstore is shown without URL userinfo, request signatures or the URL's secret values."""
    assert scrub(text, (SECRET, "short")) == shown


def test_memory_store_url_never_shows_userinfo() -> None:
    """A memory:// URL given with user:password@ is shown without it."""
    assert open_store(f"memory://admin:{SECRET}@somewhere").url == "memory://***@somewhere"
