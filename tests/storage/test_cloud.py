"""Storage URLs for S3, GCS and Azure: parsing, where settings come from, and one-line errors."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.common import free_port
from fixtures.objectstores import AzureServer, S3Server
from tallystick.storage import (
    AccessDenied,
    BucketNotFound,
    InvalidStorageUrl,
    StorageError,
    StorageUnavailable,
    open_store,
)
from tallystick.storage.cloud import redact


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """obstore reads AWS_*, GOOGLE_* and AZURE_* variables: a developer's own must not leak in."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "AZURE_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", r"name the bucket in 's3:///prefix': s3://<bucket>/<prefix>"),
        ("s3://My_Bucket/p", r"'My_Bucket' is not a valid S3 bucket name: 3-63 lowercase"),
        ("az://a--b/p", r"'a--b' is not a valid Azure Blob storage container name"),
        ("gs://x/p", r"'x' is not a valid Google Cloud Storage bucket name"),
        ("s3://bucket/p?colour=red", r"unknown setting 'colour' in the s3:// URL: use one of access_key_id, "),
        ("s3://bucket/p?regoin=eu-west-1", r"unknown setting 'regoin' in the s3:// URL \(did you mean region\?\): "),
        ("gs://bucket/p?skip_signature=maybe", r"setting 'skip_signature' must be true or false, not 'maybe'"),
        ("s3://bucket/a/../b", r"may not contain '.' or '..' segments"),
        ("s3://key:secret@bucket/p", r"put credentials in the environment or the query, not before the bucket"),
        ("az://container/p", r"Account must be specified .*set AZURE_STORAGE_ACCOUNT_NAME"),
        ("ftp://host/dir", r"unsupported storage URL 'ftp://host/dir': use file:///path/to/dir"),
    ],
    ids=[
        "no-bucket",
        "bad-s3-bucket-name",
        "bad-azure-container-name",
        "short-gcs-bucket-name",
        "unknown-setting",
        "misspelt-setting",
        "bad-boolean",
        "dot-dot-prefix",
        "credentials-in-netloc",
        "azure-without-account",
        "unknown-scheme",
    ],
)
def test_bad_url_raises_invalid_storage_url_saying_what_to_fix(url: str, message: str) -> None:
    """A URL that names no usable store fails at open with one line that says what to change."""
    with pytest.raises(InvalidStorageUrl, match=message) as caught:
        open_store(url)
    assert "\n" not in str(caught.value)


def test_store_url_never_shows_secrets(s3_store_url: Callable[..., str]) -> None:
    """Secret query parameters are replaced by *** in the store's url; the rest is kept."""
    store = open_store(s3_store_url("p") + "&session_token=tok")
    assert "testing" not in store.url.replace("access_key_id=testing", "")
    assert "secret_access_key=***" in store.url
    assert "session_token=***" in store.url
    assert "endpoint=http://127.0.0.1:" in store.url


def test_s3_settings_can_come_from_the_environment(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """With AWS_ENDPOINT_URL and the AWS_* credentials set, a bare s3://bucket/prefix works."""
    bucket = s3_server.create_bucket("from-environment")
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    store = open_store(f"s3://{bucket}/sessions")
    assert store.put_if_absent("k", b"v") is True
    assert open_store(s3_server.url(bucket)).get("sessions/k") == b"v"


def test_azure_settings_can_come_from_the_environment(
    azure_server: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AZURE_STORAGE_ENDPOINT and the account name and key set, a bare az://container works."""
    container = azure_server.create_container("from-environment")
    for name, value in azure_server.env.items():
        monkeypatch.setenv(name, value)
    store = open_store(f"az://{container}")
    assert store.put_if_absent("k", b"v") is True
    store.check()


@pytest.mark.parametrize("backend", ["s3", "azure"])
def test_missing_bucket_says_how_to_create_it(backend: str, s3_server: S3Server, azure_server: AzureServer) -> None:
    """A bucket or container that does not exist gives BucketNotFound naming it and the command to create it."""
    url = s3_server.url("no-such-bucket") if backend == "s3" else azure_server.url("no-such-container")
    store = open_store(url)
    command = "aws s3 mb s3://no-such-bucket" if backend == "s3" else "az storage container create --name no-such"
    with pytest.raises(BucketNotFound, match=command):
        store.check()
    with pytest.raises(BucketNotFound):
        store.put_if_absent("k", b"x")
    with pytest.raises(BucketNotFound):
        list(store.list())


def test_s3_without_credentials_says_which_variables_to_set(s3_server: S3Server) -> None:
    """No keys anywhere (and no instance role) gives AccessDenied naming AWS_ACCESS_KEY_ID."""
    no_metadata = f"http://127.0.0.1:{free_port()}"
    store = open_store(f"s3://bucket/p?endpoint={s3_server.endpoint}&metadata_endpoint={no_metadata}")
    with pytest.raises(AccessDenied, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        store.check()


def test_azure_wrong_key_is_access_denied_without_the_key(azure_server: AzureServer) -> None:
    """A wrong account key gives AccessDenied naming the variables, and never echoes the key."""
    container = azure_server.create_container("wrong-key")
    wrong = base64.b64encode(b"not the key" * 6).decode()
    store = open_store(AzureServer(azure_server.endpoint, account_key=wrong).url(container))
    with pytest.raises(AccessDenied, match="AZURE_STORAGE_ACCOUNT_KEY") as caught:
        store.put_if_absent("k", b"x")
    assert wrong not in str(caught.value)
    assert wrong not in store.url


def test_unreachable_endpoint_fails_fast_as_unavailable() -> None:
    """Nothing listening at the endpoint: StorageUnavailable within seconds (bounded retries), not minutes."""
    url = f"s3://bucket/p?endpoint=http://127.0.0.1:{free_port()}&access_key_id=a&secret_access_key=b"
    store = open_store(url)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match=r"cannot be reached .* check the endpoint and the network"):
        store.put_if_absent("k", b"x")
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("s3://bucket/../x?aws_secret_access_key=TOPSECRET", "s3://bucket/../x?aws_secret_access_key=***"),
        ("s3:///p?AWS_SECRET_ACCESS_KEY=TOPSECRET", "s3:///p?AWS_SECRET_ACCESS_KEY=***"),
        ("minio://admin:TOPSECRET@host/p", "minio://***@host/p"),
        ("s3://b/p?endpoint=http://admin:TOPSECRET@127.0.0.1:1", "s3://b/p?endpoint=http://***@127.0.0.1:1"),
        ("az://c/p?Azure_Storage_Account_Key=TOPSECRET&sas_token=TOPSECRET", None),
        ("gs://b/p?GOOGLE_SERVICE_ACCOUNT_KEY=TOPSECRET&Bearer_Token=TOPSECRET", None),
        ("s3://b/p?Session_Token=TOPSECRET&region=eu-west-1", "s3://b/p?Session_Token=***&region=eu-west-1"),
    ],
    ids=[
        "lowercase-prefixed-key",
        "uppercase-key",
        "userinfo",
        "endpoint-userinfo",
        "azure-spellings",
        "google-spellings",
        "mixed-case",
    ],
)
def test_redact_hides_every_spelling_of_a_secret(url: str, shown: str | None) -> None:
    """Secret parameters in any case or with a cloud prefix, and userinfo anywhere, never show."""
    redacted = redact(url)
    assert "TOPSECRET" not in redacted
    if shown is not None:
        assert redacted == shown


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/../x?aws_secret_access_key=TOPSECRET",
        "s3:///p?AWS_SECRET_ACCESS_KEY=TOPSECRET",
        "minio://admin:TOPSECRET@host/p",
        "s3://bucket/p?AWS_SECRET_ACCESS_KEY=TOPSECRET",
        "az://container/p?account_name=a&account_key=TOPSECRET!!",
    ],
    ids=["dot-dot-prefix", "no-bucket", "unsupported-scheme-userinfo", "unknown-uppercase-setting", "bad-account-key"],
)
def test_rejected_url_messages_never_show_secrets(url: str) -> None:
    """The one-line error for a URL that cannot be opened shows the URL with its secrets masked."""
    with pytest.raises(InvalidStorageUrl) as caught:
        open_store(url)
    assert "TOPSECRET" not in str(caught.value)


def test_endpoint_userinfo_never_shows_in_url_or_errors(s3_server: S3Server) -> None:
    """user:password@ in the endpoint shows neither in store.url nor in any error message."""
    endpoint = s3_server.endpoint.replace("http://", "http://admin:TOPSECRET@")
    unreachable = f"http://admin:TOPSECRET@127.0.0.1:{free_port()}"
    credentials = "access_key_id=testing&secret_access_key=testing-secret"
    missing = open_store(f"s3://no-such-bucket/p?endpoint={endpoint}&{credentials}")
    down = open_store(f"s3://bucket/p?endpoint={unreachable}&{credentials}")
    assert "TOPSECRET" not in missing.url and "TOPSECRET" not in down.url
    assert "endpoint=http://***@127.0.0.1:" in missing.url
    errors: list[Exception] = []
    for action in (missing.check, lambda: missing.put_if_absent("k", b"x"), down.check, lambda: down.get("k")):
        with pytest.raises(StorageError) as caught:
            action()
        errors.append(caught.value)
    assert [type(e) for e in errors] == [BucketNotFound, BucketNotFound, StorageUnavailable, StorageUnavailable]
    for error in errors:
        assert "TOPSECRET" not in str(error) and "testing-secret" not in str(error)
        assert "http://***@127.0.0.1:" in str(error)


@pytest.mark.parametrize(
    ("url", "variable"),
    [
        pytest.param("gs://mybucket/sessions", "GOOGLE_APPLICATION_CREDENTIALS", id="gcs"),
        pytest.param("s3://mybucket/sessions", "AWS_ACCESS_KEY_ID", id="s3"),
        pytest.param("az://mycontainer/sessions?account_name=acme", "AZURE_STORAGE_ACCOUNT_KEY", id="azure"),
    ],
)
def test_serve_without_credentials_fails_at_once_naming_what_to_set(
    url: str, variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials and no sign of the cloud: refused when opened, never asking 169.254.169.254; serve says one line.

    No network exists here, so the metadata server's wait cannot be shown: opening is timed in this
    process (the CLI's own start-up, seconds on a loaded machine, would hide it), then serve's line is checked.
    """
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws, no gcloud credentials
    started = time.monotonic()
    with pytest.raises(AccessDenied, match=f"no credentials, and not on .*{variable}"):
        open_store(url)
    assert time.monotonic() - started < 1  # obstore alone waited on the metadata server's timeout and retries
    done = subprocess.run(
        [sys.executable, "-m", "tallystick.cli", "serve", "--storage", url, "--app", "mytool", "--port", "0"],
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("tallystick: error: ") and "no credentials, and not on" in lines[0]
    assert variable in lines[0]


def test_a_credential_anywhere_or_a_sign_of_the_cloud_lets_the_store_open(tmp_path: Path) -> None:
    """Credentials in a variable or the cloud CLI's file, or the platform's DMI strings: opened as before.

    The DMI strings of a cloud VM cannot exist here: they are written under a stand-in root.
    """
    from tallystick.storage import cloud

    gcs = cloud.KINDS["gs"]
    assert not cloud.has_credentials(gcs, {}, {}, home=str(tmp_path))
    assert cloud.has_credentials(gcs, {"bearer_token": "t"}, {}, home=str(tmp_path))
    assert cloud.has_credentials(gcs, {}, {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}, home=str(tmp_path))
    assert cloud.has_credentials(gcs, {"skip_signature": True}, {}, home=str(tmp_path))
    adc = tmp_path / ".config/gcloud/application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    assert cloud.has_credentials(gcs, {}, {}, home=str(tmp_path))
    assert cloud.has_credentials(cloud.KINDS["s3"], {}, {"AWS_SECRET_ACCESS_KEY": "x"}, home=str(tmp_path / "none"))
    assert cloud.has_credentials(cloud.KINDS["az"], {}, {"IDENTITY_ENDPOINT": "http://x"}, home=str(tmp_path / "none"))

    root = tmp_path / "root"
    assert not any(cloud._on_platform(kind, {}, root=str(root)) for kind in (gcs, cloud.KINDS["s3"], cloud.KINDS["az"]))
    assert cloud._on_platform(gcs, {"K_SERVICE": "ingest"}, root=str(root))  # Cloud Run
    dmi = root / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text("Google Compute Engine\n")
    (dmi / "sys_vendor").write_text("Amazon EC2\n")
    assert cloud._on_platform(gcs, {}, root=str(root))
    assert cloud._on_platform(cloud.KINDS["s3"], {}, root=str(root))
    assert not cloud._on_platform(cloud.KINDS["az"], {}, root=str(root))
