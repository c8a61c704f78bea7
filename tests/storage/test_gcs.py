"""GCS at the unit level: the requests obstore sends for our store, answered by a recording fake.

Why not an emulator: gcp-storage-emulator implements GCS's JSON API, but obstore speaks
the XML API for objects. Against it a create-only PUT succeeds without the ETag header
obstore needs, GET lacks Last-Modified, and listing (``GET /<bucket>?list-type=2``) and
DELETE answer 501 Not Implemented (details in docs/storage.md). So this fake answers the
few XML-API calls the store makes, as GCS documents them, and the tests check what was
sent: above all that the create-only write carries ``x-goog-if-generation-match: 0``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from tallystick.storage import AccessDenied, BucketNotFound, ObjectNotFound, StorageMisconfigured, open_store

BUCKET = "tallystick-test"


class FakeGcs(ThreadingHTTPServer):
    """Objects of one bucket in a dict; every request is recorded as (method, path, headers)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.honours_preconditions = True  # False: a server that ignores x-goog-if-generation-match

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGcs

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        with self.server.lock:
            self.server.requests.append((self.command, parts.path, {k.lower(): v for k, v in self.headers.items()}))
        return unquote(bucket), unquote(key), parse_qs(parts.query)

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str) -> None:
        self._reply(status, f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode())

    def _checked(self) -> tuple[str, dict[str, list[str]]] | None:
        bucket, key, query = self._target()
        if self.headers.get("Authorization") != "Bearer test-token":
            self._error(401, "AuthenticationRequired")
            return None
        if bucket != BUCKET:
            self._error(404, "NoSuchBucket")
            return None
        return key, query

    def do_PUT(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if (target := self._checked()) is None:
            return
        key = target[0]
        with self.server.lock:
            if (
                self.server.honours_preconditions
                and self.headers.get("x-goog-if-generation-match") == "0"
                and key in self.server.objects
            ):
                self._error(412, "PreconditionFailed")
                return
            self.server.objects[key] = data
        self._reply(200, headers={"ETag": f'"{len(data)}"', "x-goog-generation": "1"})

    def do_GET(self) -> None:
        if (target := self._checked()) is None:
            return
        key, query = target
        if not key:
            self._list(query)
            return
        with self.server.lock:
            data = self.server.objects.get(key)
        if data is None:
            self._error(404, "NoSuchKey")
            return
        self._reply(200, data, {"ETag": f'"{len(data)}"', "Last-Modified": formatdate(usegmt=True)})

    do_HEAD = do_GET

    def do_DELETE(self) -> None:
        if (target := self._checked()) is None:
            return
        with self.server.lock:
            existed = self.server.objects.pop(target[0], None) is not None
        self._reply(204) if existed else self._error(404, "NoSuchKey")

    def _list(self, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        start_after = query.get("start-after", [""])[0]
        with self.server.lock:
            keys = sorted(k for k in self.server.objects if k.startswith(prefix) and k > start_after)
        contents, prefixes = [], set()
        for key in keys:
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
                continue
            size = len(self.server.objects[key])
            contents.append(
                f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size>"
                f"<LastModified>2026-05-01T10:00:00.000Z</LastModified><ETag>&quot;{size}&quot;</ETag></Contents>"
            )
        common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in sorted(prefixes))
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>{BUCKET}</Name>'
            f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount>"
            f"<IsTruncated>false</IsTruncated>{''.join(contents)}{common}</ListBucketResult>"
        )
        self._reply(200, body.encode(), {"Content-Type": "application/xml"})


@pytest.fixture
def gcs() -> Iterator[FakeGcs]:
    server = FakeGcs()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _url(gcs: FakeGcs, bucket: str = BUCKET, token: str = "test-token") -> str:
    return f"gs://{bucket}/tallystick?endpoint={gcs.endpoint}&bearer_token={token}"


def test_create_only_write_sends_the_generation_precondition(gcs: FakeGcs) -> None:
    """put_if_absent is a PUT with x-goog-if-generation-match: 0, under the URL's prefix; 412 means False."""
    store = open_store(_url(gcs))
    assert store.put_if_absent("sessions/a.json.gz", b"first") is True
    assert store.put_if_absent("sessions/a.json.gz", b"second") is False
    puts = [(path, headers) for method, path, headers in gcs.requests if method == "PUT"]
    assert [unquote(path) for path, _ in puts] == [f"/{BUCKET}/tallystick/sessions/a.json.gz"] * 2
    assert all(headers.get("x-goog-if-generation-match") == "0" for _, headers in puts)
    assert store.get("sessions/a.json.gz") == b"first"
    assert gcs.objects == {"tallystick/sessions/a.json.gz": b"first"}


def test_listing_reads_and_deletes_go_through_the_xml_api(gcs: FakeGcs) -> None:
    """list, list_dirs, get and delete work against GCS's XML API and keep the prefix out of keys."""
    store = open_store(_url(gcs))
    for key in ["s/app=b/1", "s/app=a/2", "s/app=a/1"]:
        store.put_if_absent(key, key.encode())
    assert [i.key for i in store.list("s/")] == ["s/app=a/1", "s/app=a/2", "s/app=b/1"]
    assert store.list_dirs("s/") == ["app=a", "app=b"]
    assert store.delete("s/app=a/1") is True
    assert store.delete("s/app=a/1") is False
    with pytest.raises(ObjectNotFound):
        store.get("s/app=a/1")
    store.check()


def test_missing_bucket_says_how_to_create_it(gcs: FakeGcs) -> None:
    """A bucket the service does not know gives BucketNotFound with the gcloud command to create it."""
    store = open_store(_url(gcs, bucket="no-such-bucket"))
    with pytest.raises(BucketNotFound, match=r"gcloud storage buckets create gs://no-such-bucket"):
        store.put_if_absent("k", b"x")
    with pytest.raises(BucketNotFound):
        store.check()


def test_rejected_token_says_which_credentials_to_set(gcs: FakeGcs) -> None:
    """A token the service rejects gives AccessDenied naming GOOGLE_APPLICATION_CREDENTIALS, without the token."""
    store = open_store(_url(gcs, token="wrong-token"))
    with pytest.raises(AccessDenied, match="GOOGLE_APPLICATION_CREDENTIALS") as caught:
        store.check()
    assert "wrong-token" not in str(caught.value)
    assert "wrong-token" not in store.url


def test_check_refuses_a_server_that_ignores_the_generation_precondition(gcs: FakeGcs) -> None:
    """A server that overwrites despite x-goog-if-generation-match: 0 fails check() naming the condition."""
    gcs.honours_preconditions = False
    store = open_store(_url(gcs))
    with pytest.raises(StorageMisconfigured, match=r"does not honour conditional writes \(PUT with x-goog-if-gen"):
        store.check()
    gcs.honours_preconditions = True
    store.check()
