"""A bucket in S3, Google Cloud Storage or Azure Blob storage, reached through obstore.

obstore (the Python binding of Rust's ``object_store``) does the protocol work: request
signing, credentials from the environment, retries, pagination. This module adapts it
to the small ``Store`` interface and turns its errors into one-line ones.

Create-only writes, per backend (all a single request; nothing to clean up on failure):

- S3: ``PUT`` with ``If-None-Match: *``; a second writer gets ``412``.
- GCS: ``PUT`` with ``x-goog-if-generation-match: 0``; a second writer gets ``412``.
- Azure: ``Put Blob`` with ``If-None-Match: *``; a second writer gets ``409``.

The service makes the object visible only once the whole body has arrived and is
stored durably, so a writer killed mid-request leaves either no object or the complete
one, and ``put_if_absent`` returns only after the service has acknowledged the write.

One race is harmless by design: if the response to a successful ``PUT`` is lost and
obstore retries, the retry meets the object it just created and reports ``412``, so
``put_if_absent`` answers False ("already stored") for an object this call created. The
object is stored either way; the ingest service answers 304 instead of 201.

``check`` proves that the service honours create-only writes rather than trusting it:
it writes the probe ``.tallystick/check`` create-only and, if that write says it created
the probe, writes it create-only once more, which must report "already exists". An
S3-compatible server that ignores ``If-None-Match`` (it would answer 201 to every
duplicate and overwrite the stored session) fails the readiness check with
``StorageMisconfigured`` instead of silently breaking deduplication. Once the probe
exists, the first write's "already exists" is the proof, so a check costs one write and
one ``HEAD`` as before.

Keys whose first segment starts with ``.`` are the store's own; listings never show them.

Messages never show secrets: the endpoint is shown without userinfo, and obstore's
error text is scrubbed of userinfo, signatures, tokens and the secret values given in
the storage URL (``scrub``).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from obstore.exceptions import (
    AlreadyExistsError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)

from tallystick.storage.base import (
    AccessDenied,
    BucketNotFound,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageMisconfigured,
    StorageUnavailable,
    Store,
    check_key,
)

if TYPE_CHECKING:
    from obstore.store import ObjectStore, RetryConfig

PROBE_KEY = ".tallystick/check"

# Fail within seconds, not obstore's default three minutes: the ingest service would
# rather answer 503 quickly and let the client retry later.
RETRY: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=15),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2), "base": 2},
}

_BUCKET_MISSING = ("NoSuchBucket", "ContainerNotFound", "The specified bucket does not exist")
_AUTH_FAILED = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "InvalidAuthenticationInfo",
    "403 Forbidden",
    "401 Unauthorized",
    "token request",
    "169.254.169.254",
    "/latest/api/token",  # the instance-metadata credential endpoint: nothing else supplied credentials
    "computeMetadata",
    "credential",
)
_UNREACHABLE = ("error sending request", "Connection refused", "dns error", "timed out", "operation timed out")
_SECRET_IN_TEXT = re.compile(r"(sig|signature|X-Amz-Signature|X-Amz-Credential|token)=[^&\s]+", re.IGNORECASE)
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^\s/?#]*@", re.IGNORECASE)


class Backend:
    """How one kind of service is named in messages: what to create, what to set."""

    def __init__(
        self,
        scheme: str,
        service: str,
        container: str,
        create_hint: str,
        credentials_hint: str,
        *,
        create_only: str = "a create-only write",
    ) -> None:
        self.scheme = scheme
        self.service = service
        self.container = container
        self.create_hint = create_hint
        self.credentials_hint = credentials_hint
        self.create_only = create_only  # how the service is asked for a create-only write


MEMORY = Backend("memory", "memory store", "store", "", "", create_only="mode='create'")


class BucketStore(Store):
    """A ``Store`` over any obstore store; ``url`` is the storage URL with secrets removed."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        url: str,
        backend: Backend,
        bucket: str,
        endpoint: str = "",
        secrets: tuple[str, ...] = (),
        opened_from: str = "",
    ) -> None:
        self._store = store
        self._opened_from = opened_from  # the URL as given, secrets included: for reopen_url only
        self.url = strip_userinfo(url)
        self.backend = backend
        self.bucket = bucket
        self.endpoint = strip_userinfo(endpoint)
        self._secrets = secrets  # values messages must never show (scrubbed from obstore's text)

    def reopen_url(self) -> str:
        return self._opened_from or self.url

    # -- writes ---------------------------------------------------------------------------

    def put_if_absent(self, key: str, data: bytes) -> bool:
        check_key(key)
        try:
            self._store.put(key, data, mode="create", use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:  # noqa: BLE001 - every failure becomes a StorageError
            raise self._error(exc) from None
        return True

    async def put_if_absent_async(self, key: str, data: bytes) -> bool:
        check_key(key)
        try:
            await self._store.put_async(key, data, mode="create", use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        return True

    def delete(self, key: str) -> bool:
        check_key(key)
        try:
            self._store.head(key)
            self._store.delete(key)
        except FileNotFoundError as exc:
            if _bucket_missing(str(exc)):
                raise self._error(exc) from None
            return False
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        return True

    # -- reads ----------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            return bytes(self._store.get(key).bytes())
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, key) from None

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        # obstore lists by whole path segments; narrow to the string prefix here.
        # Every service lists in key (UTF-8 byte) order, which is Python's string order,
        # so the keys with this prefix are one run: stop at the first key past it.
        directory = prefix.rpartition("/")[0]
        try:
            for chunk in self._store.list(directory or None, offset=start_after, chunk_size=1000):
                for meta in chunk:
                    key = meta["path"]
                    if key.startswith(".") or (start_after is not None and key <= start_after):
                        continue  # bookkeeping, or a service that ignores the offset (Azure)
                    if not key.startswith(prefix):
                        if key > prefix:
                            return
                        continue
                    yield ObjectInfo(key, meta["size"], meta["last_modified"])
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        directory = prefix.rstrip("/")
        try:
            result = self._store.list_with_delimiter(directory or None)
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None
        cut = len(directory) + 1 if directory else 0
        return sorted(p[cut:] for p in result["common_prefixes"] if not (not directory and p.startswith(".")))

    def check(self) -> None:
        """Prove bucket, credentials, network and create-only writes with a probe object; raise if any fails."""
        try:
            if self._create(PROBE_KEY) and self._create(PROBE_KEY):
                raise StorageMisconfigured(
                    f"{self.backend.service} {self._where()} does not honour conditional writes "
                    f"({self.backend.create_only}): a second create-only write of {PROBE_KEY} succeeded, so "
                    "duplicate sessions would overwrite each other; use a service that supports it"
                )
            self._store.head(PROBE_KEY)
        except StorageError:
            raise
        except FileNotFoundError as exc:
            if _bucket_missing(str(exc)):
                raise self._error(exc) from None
            raise StorageUnavailable(
                f"{self.backend.service} {self._where()} accepted the probe {PROBE_KEY} but cannot read it back "
                f"({self._first_line(str(exc), 160)}): retrying later may work"
            ) from None
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc) from None

    def _create(self, key: str) -> bool:
        """One create-only write of the probe; True if the service says it created the object."""
        try:
            self._store.put(key, b"ok", mode="create", use_multipart=False)
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    # -- errors ---------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.backend.container} {self.bucket!r}" + (f" at {self.endpoint}" if self.endpoint else "")

    def _first_line(self, text: str, limit: int = 240) -> str:
        return _first_line(scrub(text, self._secrets), limit)

    def _error(self, exc: Exception, key: str | None = None) -> StorageError:
        """One line that says what failed and what to do about it."""
        text = str(exc)
        where = self._where()
        if _bucket_missing(text):
            return BucketNotFound(
                f"{self.backend.service} {where} does not exist: "
                f"create it ({self.backend.create_hint.replace('<name>', self.bucket)}) "
                "or fix the storage URL"
            )
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or any(m in text for m in _AUTH_FAILED):
            return AccessDenied(
                f"{self.backend.service} {where}: no credentials found or they were rejected "
                f"({self._first_line(text, 160)}): {self.backend.credentials_hint}"
            )
        if isinstance(exc, FileNotFoundError) and key is not None:
            return ObjectNotFound(key)
        if any(m in text for m in _UNREACHABLE):
            return StorageUnavailable(
                f"{self.backend.service} {where} cannot be reached ({self._first_line(text, 160)}): "
                "check the endpoint and the network; retrying later may work"
            )
        return StorageUnavailable(f"{self.backend.service} {where} failed: {self._first_line(text)}")


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without URL userinfo, signatures, tokens or any of the ``secrets`` values."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 8:  # shorter ones are test values, and replacing them would garble the text
            text = text.replace(secret, "***")
    return _SECRET_IN_TEXT.sub(r"\1=…", strip_userinfo(text))


def strip_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it (``http://user:password@host``) replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text)


def _bucket_missing(text: str) -> bool:
    return any(m in text for m in _BUCKET_MISSING)


def _first_line(text: str, limit: int = 240) -> str:
    line = scrub(text.strip().split("\n", 1)[0])
    return line if len(line) <= limit else line[: limit - 1] + "…"
