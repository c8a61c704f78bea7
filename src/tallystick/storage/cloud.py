"""Storage URLs for S3, Google Cloud Storage and Azure Blob storage.

``s3://bucket/prefix``, ``gs://bucket/prefix`` and ``az://container/prefix`` name a
bucket (and an optional key prefix inside it). Everything else comes, in this order,
from:

1. query parameters on the URL, e.g. ``s3://b/p?endpoint=http://127.0.0.1:9000&region=eu-west-1``
   (the keys are obstore's configuration keys; ``endpoint`` works for all three);
2. the environment, read by obstore: ``AWS_*`` (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
   ``AWS_REGION``, ...), ``GOOGLE_*`` (``GOOGLE_APPLICATION_CREDENTIALS``, ...) and
   ``AZURE_*`` (``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``, ...);
3. the platform: instance roles, workload identity, managed identity.

Without credentials from 1 or 2, obstore asks the cloud's metadata server
(``169.254.169.254``) for the platform's; off that cloud the request waits for a timeout
and its retries, and ``serve`` then started anyway, answering every upload 503. So a URL
with no credentials configured (settings, variables, the cloud CLI's files) is refused at
once with the variables to set, unless this machine shows signs of running on that cloud
(``_on_platform``: the platform's own variables, or its name in the firmware's DMI
strings). Those signs are local files and variables: the refusal waits on no network.

Secrets may be given on the URL (handy for tests and one-off commands) but belong in
the environment; a store's ``url`` attribute never shows them. An ``http://`` endpoint
turns on plain HTTP, which only an emulator or a private network should need.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from tallystick.storage.base import AccessDenied, InvalidStorageUrl
from tallystick.storage.bucket import RETRY, Backend, BucketStore, scrub, strip_userinfo

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore

SECRET_KEYS = frozenset(
    {"secret_access_key", "session_token", "account_key", "sas_key", "client_secret", "bearer_token"}
    | {"service_account_key"}
)
_PREFIXES = ("aws_", "azure_storage_", "azure_", "google_", "gcs_", "goog_")
_BOOL_KEYS = frozenset(
    {"allow_http", "skip_signature", "virtual_hosted_style_request", "unsigned_payload", "use_emulator"}
)
_COMMON_KEYS = frozenset({"endpoint", "allow_http", "skip_signature"})


class _Kind:
    def __init__(
        self,
        *,
        backend: Backend,
        keys: frozenset[str],
        bucket_pattern: str,
        bucket_rule: str,
        endpoint_env: tuple[str, ...],
        build: Callable[[str, str | None, dict[str, Any], ClientConfig], ObjectStore],
        platform: str,
        credential_keys: frozenset[str],
        credential_env: tuple[str, ...],
        credential_files: tuple[str, ...],
        platform_env: tuple[str, ...],
        platform_files: tuple[tuple[str, str], ...],
    ) -> None:
        self.backend = backend
        self.keys = keys | _COMMON_KEYS
        self.bucket_pattern = re.compile(bucket_pattern)
        self.bucket_rule = bucket_rule
        self.endpoint_env = endpoint_env
        self.build = build
        self.platform = platform
        # A setting or variable that holds or names credentials, or a way to get them that obstore
        # takes without a metadata server of the platform's (or with one the operator named).
        self.credential_keys = credential_keys
        self.credential_env = credential_env
        self.credential_files = credential_files  # under the home directory
        # Signs of running on the platform: its variables, or a file (the firmware's DMI strings) starting
        # with a text (any case).
        self.platform_env = platform_env
        self.platform_files = platform_files


def _s3(bucket: str, prefix: str | None, config: dict[str, Any], client: ClientConfig) -> ObjectStore:
    from obstore.store import S3Store

    return S3Store(bucket, prefix=prefix, config=config, client_options=client, retry_config=RETRY)  # type: ignore[arg-type]


def _gcs(bucket: str, prefix: str | None, config: dict[str, Any], client: ClientConfig) -> ObjectStore:
    from obstore.store import GCSStore

    if "endpoint" in config:
        config["base_url"] = config.pop("endpoint")
    return GCSStore(bucket, prefix=prefix, config=config, client_options=client, retry_config=RETRY)  # type: ignore[arg-type]


def _azure(container: str, prefix: str | None, config: dict[str, Any], client: ClientConfig) -> ObjectStore:
    from obstore.store import AzureStore

    return AzureStore(container, prefix=prefix, config=config, client_options=client, retry_config=RETRY)  # type: ignore[arg-type]


_S3 = _Kind(
    backend=Backend(
        "s3",
        "S3",
        "bucket",
        "aws s3 mb s3://<name>",
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an IAM role",
        create_only="PUT with If-None-Match: *",
    ),
    keys=frozenset(
        {
            "region",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "virtual_hosted_style_request",
            "unsigned_payload",
            "metadata_endpoint",
            "checksum_algorithm",
        }
    ),
    bucket_pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    bucket_rule="3-63 lowercase letters, digits, '.' or '-'",
    endpoint_env=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    build=_s3,
    platform="AWS",
    credential_keys=frozenset({"access_key_id", "secret_access_key", "session_token", "metadata_endpoint"}),
    credential_env=(
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",  # EKS (IRSA)
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",  # ECS, Fargate
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",  # EKS Pod Identity
        "AWS_METADATA_ENDPOINT",
        "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
    ),
    credential_files=(".aws/credentials", ".aws/config"),
    platform_env=("AWS_EXECUTION_ENV", "ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"),
    platform_files=(
        ("sys/class/dmi/id/sys_vendor", "amazon"),
        ("sys/class/dmi/id/bios_vendor", "amazon"),
        ("sys/hypervisor/uuid", "ec2"),  # older, Xen-based instances
    ),
)
_GCS = _Kind(
    backend=Backend(
        "gs",
        "Google Cloud Storage",
        "bucket",
        "gcloud storage buckets create gs://<name>",
        "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run with a service account",
        create_only="PUT with x-goog-if-generation-match: 0",
    ),
    keys=frozenset({"service_account", "service_account_key", "application_credentials", "bearer_token"}),
    bucket_pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$",
    bucket_rule="3-222 lowercase letters, digits, '.', '_' or '-'",
    endpoint_env=("GOOGLE_BASE_URL",),
    build=_gcs,
    platform="Google Cloud",
    credential_keys=frozenset({"service_account", "service_account_key", "application_credentials", "bearer_token"}),
    credential_env=(
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_PATH",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "GCE_METADATA_HOST",
        "GCE_METADATA_IP",
    ),
    credential_files=(".config/gcloud/application_default_credentials.json",),
    platform_env=("K_SERVICE", "CLOUD_RUN_JOB", "GAE_ENV", "FUNCTION_TARGET", "CLOUD_SHELL"),
    platform_files=(
        ("sys/class/dmi/id/product_name", "google"),
        ("sys/class/dmi/id/sys_vendor", "google"),
        ("sys/class/dmi/id/bios_vendor", "google"),
    ),
)
_AZURE = _Kind(
    backend=Backend(
        "az",
        "Azure Blob storage",
        "container",
        "az storage container create --name <name>",
        "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a SAS key), or use a managed identity",
        create_only="Put Blob with If-None-Match: *",
    ),
    keys=frozenset(
        {
            "account_name",
            "account_key",
            "sas_key",
            "use_emulator",
            "client_id",
            "client_secret",
            "tenant_id",
            "msi_endpoint",
        }
    ),
    bucket_pattern=r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
    bucket_rule="3-63 lowercase letters, digits or single '-'",
    endpoint_env=("AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"),
    build=_azure,
    platform="Azure",
    credential_keys=frozenset({"account_key", "sas_key", "client_id", "client_secret", "msi_endpoint", "use_emulator"}),
    credential_env=(
        "AZURE_CLIENT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",  # AKS workload identity
        "AZURE_STORAGE_USE_EMULATOR",
        "AZURE_USE_EMULATOR",
        "AZURE_USE_AZURE_CLI",
        "AZURE_MSI_ENDPOINT",
        "IDENTITY_ENDPOINT",  # App Service, Functions, Container Apps, Arc
        "MSI_ENDPOINT",
    ),
    credential_files=(),
    platform_env=(),
    # Every Azure VM carries this chassis asset tag.
    platform_files=(("sys/class/dmi/id/chassis_asset_tag", "7783-7084-3265-9085-8269-3286-77"),),
)
KINDS = {"s3": _S3, "s3a": _S3, "gs": _GCS, "gcs": _GCS, "az": _AZURE, "azure": _AZURE}


def open_bucket(url: str) -> BucketStore:
    """The bucket store a cloud storage URL names; raises InvalidStorageUrl saying what to fix."""
    parts = urlsplit(url)
    kind = KINDS.get(parts.scheme.lower())
    if kind is None:
        raise InvalidStorageUrl(f"unsupported storage URL scheme in {redact(url)!r}: use s3://, gs:// or az://")
    scheme = kind.backend.scheme
    what = kind.backend.container
    bucket = parts.netloc
    if "@" in bucket or ":" in bucket:
        raise InvalidStorageUrl(
            f"put credentials in the environment or the query, not before the {what}: {scheme}://<{what}>/<prefix>"
        )
    if not bucket:
        raise InvalidStorageUrl(f"name the {what} in {redact(url)!r}: {scheme}://<{what}>/<prefix>")
    if not kind.bucket_pattern.match(bucket):
        raise InvalidStorageUrl(f"{bucket!r} is not a valid {kind.backend.service} {what} name: {kind.bucket_rule}")
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise InvalidStorageUrl(f"the prefix in {redact(url)!r} may not contain '.' or '..' segments")
    prefix = "/".join(segments) or None

    config: dict[str, Any] = {}
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise InvalidStorageUrl(f"malformed query in {redact(url)!r}: use ?key=value&key=value") from None
    for key, value in pairs:
        if key not in kind.keys:
            allowed = ", ".join(sorted(kind.keys))
            close = difflib.get_close_matches(key, kind.keys, n=1)
            meant = f" (did you mean {close[0]}?)" if close else ""
            raise InvalidStorageUrl(f"unknown setting {key!r} in the {scheme}:// URL{meant}: use one of {allowed}")
        if key in _BOOL_KEYS:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidStorageUrl(f"setting {key!r} must be true or false, not {value!r}")
            config[key] = value.lower() in ("true", "1")
        else:
            config[key] = value

    named = next((e for e in kind.endpoint_env if os.environ.get(e)), None)
    endpoint = str(config.get("endpoint") or (os.environ[named] if named else ""))
    if endpoint:
        _check_endpoint(endpoint, "the URL's endpoint" if config.get("endpoint") else f"${named}")
    client: ClientConfig = {"connect_timeout": "5s", "timeout": "60s"}
    allow_http = config.pop("allow_http", endpoint.startswith("http://"))
    if allow_http:
        client["allow_http"] = True
    secrets = tuple(v for k, v in pairs if v and is_secret(k))
    try:
        store = kind.build(bucket, prefix, config, client)
    except Exception as exc:  # noqa: BLE001 - obstore reports bad settings with several types
        raise InvalidStorageUrl(
            f"cannot open {redact(url)}: {scrub(str(exc).strip().splitlines()[0], secrets)} "
            f"({kind.backend.credentials_hint}; see docs/storage.md)"
        ) from None
    if not has_credentials(kind, config, os.environ) and not _on_platform(kind, os.environ):
        raise AccessDenied(
            f"{kind.backend.service} {what} {bucket!r}: no credentials, and not on {kind.platform} (no instance "
            f"identity to ask for): {kind.backend.credentials_hint} (see docs/storage.md)"
        )
    return BucketStore(
        store,
        url=redact(url),
        backend=kind.backend,
        bucket=bucket,
        endpoint=strip_userinfo(endpoint),
        secrets=secrets,
        opened_from=url,
    )


def _check_endpoint(endpoint: str, where: str) -> None:
    """An endpoint the client library can use, else InvalidStorageUrl naming ``where`` it came from.

    (obstore panics on a malformed one, at the first request.)"""
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidStorageUrl(f"{where} {strip_userinfo(endpoint)!r} is not a URL: use http(s)://host:port")


def has_credentials(kind: _Kind, config: dict[str, Any], environ: Mapping[str, str], home: str | None = None) -> bool:
    """Whether the URL, the environment or the cloud CLI's files give credentials (or a way to them).

    Anonymous access (``skip_signature``) and any secret-looking variable of the kind's
    prefixes count too: this decides only whether to refuse at once, never which credential wins.
    """
    if config.get("skip_signature") or any(config.get(key) for key in kind.credential_keys):
        return True
    prefix = {"s3": "AWS_", "gs": "GOOGLE_", "az": "AZURE_"}[kind.backend.scheme]
    if any(environ.get(name) for name in kind.credential_env):
        return True
    for name, value in environ.items():
        if value and name.upper().startswith(prefix) and (is_secret(name) or name.upper().endswith("SKIP_SIGNATURE")):
            return True
    home = home if home is not None else os.path.expanduser("~")
    return any(os.path.exists(os.path.join(home, path)) for path in kind.credential_files)


def _on_platform(kind: _Kind, environ: Mapping[str, str], root: str = "/") -> bool:
    """Whether this machine shows signs of running on the kind's cloud (its variables, its DMI strings)."""
    if any(environ.get(name) for name in kind.platform_env):
        return True
    for path, text in kind.platform_files:
        try:
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                if f.read(256).strip().lower().startswith(text):
                    return True
        except OSError:
            continue
    return False


def redact(url: str) -> str:
    """The URL as it may be shown: no userinfo, and ``***`` for the values of secret query parameters.

    Userinfo (``user:password@``) is removed from the URL itself and from any URL-valued
    parameter (``endpoint=http://user:password@host``). A parameter is secret whatever its
    case and with or without an ``aws_``/``azure_``/``google_`` prefix
    (``AWS_SECRET_ACCESS_KEY``, ``azure_storage_account_key``): obstore accepts all of
    those spellings, so the message of a rejected URL must not echo any of them.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return strip_userinfo(url)
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    path, qmark, query = tail.partition("?")
    fragment = ""
    if qmark:
        query, hashmark, fragment = query.partition("#")
        fragment = hashmark + fragment
    shown = f"{scheme}://{netloc}{strip_userinfo(path)}"
    if not qmark:
        return shown
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError:
        return f"{shown}?***"
    masked = [(k, "***" if is_secret(k) else strip_userinfo(v)) for k, v in pairs]
    return f"{shown}?{urlencode(masked, safe=':/*@', quote_via=quote)}{strip_userinfo(fragment)}"


def is_secret(key: str) -> bool:
    """Whether a storage setting holds a secret (case-insensitive, ``aws_``/``azure_``/``google_`` prefixes ignored)."""
    name = key.strip().lower()
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    return name not in _BOOL_KEYS and (
        name in SECRET_KEYS
        or name.endswith("key")
        or any(word in name for word in ("secret", "token", "password", "sas", "signature", "credential"))
    )
