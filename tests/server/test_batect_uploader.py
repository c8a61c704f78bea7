"""What Batect's uploader sends, byte for byte, and whether it would count Tallystick's answer as uploaded.

Read from batect/batect ``libs/telemetry`` (``AbacusClient.kt``, ``TelemetryUploadTask.kt``,
``TelemetrySession.kt``, ``AttributeValue.kt``) and ``libs/logging`` (``ZonedDateTimeSerializer.kt``):

- the request is OkHttp's ``PUT https://<BATECT_TELEMETRY_HOST>/v1/sessions`` with the queued file's
  bytes as an ``application/json`` body of known length (no charset parameter), plus the headers
  OkHttp adds itself (``Host``, ``Connection: Keep-Alive``, ``Accept-Encoding: gzip``,
  ``User-Agent: okhttp/<version>``);
- the body is kotlinx.serialization's compact JSON of the session, fields in declaration order,
  every field present (empty maps and lists included), times in UTC printed by
  ``DateTimeFormatter.ISO_DATE_TIME``: seconds always, then only as many fractional digits as
  the nanoseconds need (none, ``.5``, ``.000000678``);
- an answer counts as uploaded if it is 2xx or 304 (the queued file is deleted); anything else
  keeps the file for the next run, records the failure as an ``UnhandledException`` event in the
  current session, and after 5 failures stops uploading for that run. A kept session older than
  30 days is deleted after its next failed upload. Batect's code never reads the answer's body or
  ``Retry-After``; OkHttp itself, before Batect sees an answer, follows redirects and retries a
  408 at once (unless ``Retry-After`` is above 0) and a 503 at once only with ``Retry-After: 0``
  (its ``RetryAndFollowUpInterceptor``);
- the version is Batect's ``Version`` type printed: ``major.minor.patch``, then ``-suffix`` and
  ``+metadata`` of ``[a-zA-Z0-9.-]`` (the rule Abacus's version validator shares).

The sessions here are this project's own data in that form. One server answers every test.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batect_sessions import APPLICATION, corpus, stack_trace
from fixtures.api import Api, SwitchableStore, serve_in_thread
from tallystick.schema import _rules
from tallystick.storage.local import LocalStore

OKHTTP_HEADERS = b"Connection: Keep-Alive\r\nAccept-Encoding: gzip\r\nUser-Agent: okhttp/4.9.3\r\n"


def batect_uploaded(status: int) -> bool:
    """AbacusClient's rule: ``response.isSuccessful`` (200-299) or 304."""
    return 200 <= status < 300 or status == 304


def java_iso(at: datetime, nanos: int) -> str:
    """A UTC instant as ISO_DATE_TIME prints it: the fraction only as long as the nanoseconds need."""
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def kotlinx(tree: Any) -> bytes:
    """kotlinx.serialization's default JSON: compact, UTF-8 as is, keys in the order given."""
    return json.dumps(tree, separators=(",", ":"), ensure_ascii=False).encode()


def batect_session(**fields: Any) -> dict[str, Any]:
    """A session as Batect's TelemetrySession declares it: every field, in order."""
    start = datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC)
    tree: dict[str, Any] = {
        "sessionId": str(uuid.uuid4()),
        "userId": "07ab839b-ac26-475a-966a-77d18d00ac61",
        "sessionStartTime": java_iso(start, 120_000_000),
        "sessionEndTime": java_iso(start + timedelta(seconds=9), 5),
        "applicationId": APPLICATION,
        "applicationVersion": "0.79.1",
        "attributes": {},
        "events": [],
        "spans": [],
    }
    tree.update(fields)
    return tree


class Connection:
    """One kept-alive TCP connection sending OkHttp's requests, as Batect's client reuses its pool."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.sock = socket.create_connection((api.host, api.port), timeout=10)
        self.buffer = b""

    def put(self, body: bytes, *, chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
        host = f"{self.api.host}:{self.api.port}".encode()
        framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(body)
        head = b"PUT /v1/sessions HTTP/1.1\r\nContent-Type: application/json\r\n" + framing
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body
        self.sock.sendall(head + b"Host: " + host + b"\r\n" + OKHTTP_HEADERS + b"\r\n" + payload)
        return self._answer()

    def _answer(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self.buffer += self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    runner = serve_in_thread(LocalStore(tmp_path_factory.mktemp("batect") / "s"), applications=frozenset({APPLICATION}))
    yield next(runner)
    next(runner, None)


@pytest.fixture
def okhttp(server: Api) -> Iterator[Connection]:
    connection = Connection(server)
    yield connection
    connection.close()


def _stored(api: Api, session_id: str) -> dict[str, Any]:
    (key,) = [info.key for info in api.store.list("sessions/") if session_id in info.key]
    tree: dict[str, Any] = json.loads(gzip.decompress(api.store.get(key)))
    return tree


def test_okhttp_upload_is_201_then_304_on_one_kept_alive_connection(okhttp: Connection) -> None:
    """Batect's request as OkHttp frames it: 201, then 304 for the same file; both count as uploaded."""
    body = kotlinx(batect_session())
    first, second = okhttp.put(body), okhttp.put(body)
    for status, headers, answer in (first, second):
        assert batect_uploaded(status) and answer == b"" and headers["content-length"] == "0"
        assert headers.get("connection", "").lower() != "close"
    assert (first[0], second[0]) == (201, 304)


@pytest.mark.parametrize("nanos", [0, 500_000_000, 120_000_000, 123_456_000, 5, 678, 999_999_999])
def test_every_fraction_java_prints_is_accepted_and_stored_as_sent(okhttp: Connection, server: Api, nanos: int) -> None:
    """ISO_DATE_TIME drops trailing zeros: no fraction, 1 to 9 digits; each is 201 and stored as written."""
    at = datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC)
    tree = batect_session(
        sessionStartTime=java_iso(at, nanos),
        sessionEndTime=java_iso(at + timedelta(seconds=1), nanos),
        events=[{"type": "some-event", "time": java_iso(at, nanos), "attributes": {}}],
        spans=[
            {
                "type": "LoadConfiguration",
                "startTime": java_iso(at, 0),
                "endTime": java_iso(at, nanos),
                "attributes": {},
            }
        ],
    )
    status, _, _ = okhttp.put(kotlinx(tree))
    assert status == 201
    stored = _stored(server, tree["sessionId"])
    stored.pop("ingestionTime")
    assert stored == tree
    assert stored["events"][0]["time"] == java_iso(at, nanos)


def test_kotlinx_body_with_every_attribute_kind_is_stored_byte_for_byte(okhttp: Connection, server: Api) -> None:
    """Compact JSON, raw UTF-8, escaped control characters, empty maps: stored as sent, after ingestionTime."""
    tree = batect_session(
        attributes={
            "operatingSystem": "Linux",
            "consoleWidth": 120,
            "isCI": False,
            "terminalType": None,
            "shellName": "zsh \u00e9\u6f22 \u2603",
            "gitCommand": "line one\nline two\t\u001b[0m",
        },
        events=[
            {
                "type": "UpdateAvailableNotificationShown",
                "time": java_iso(datetime(2022, 3, 4, 5, 6, 8), 0),
                "attributes": {},
            }
        ],
    )
    body = kotlinx(tree)
    assert okhttp.put(body)[0] == 201
    (key,) = [i.key for i in server.store.list("sessions/") if tree["sessionId"] in i.key]
    text = gzip.decompress(server.store.get(key))
    assert text.startswith(b'{"ingestionTime":"') and text.endswith(body[1:])


def test_a_stack_overflow_error_session_is_accepted(okhttp: Connection) -> None:
    """The deepest trace a JVM records by default (1,024 frames, with a cause) is 201; the old default refused it."""
    trace = stack_trace(random.Random(7), 1024, causes=1)
    assert len(trace) > 65_536
    event = {
        "type": "UnhandledException",
        "time": java_iso(datetime(2022, 3, 4, 5, 6, 8), 0),
        "attributes": {"exception": trace, "exceptionCaughtAt": "batect.cli.BatectCommandLineApplication.run"},
    }
    assert okhttp.put(kotlinx(batect_session(events=[event])))[0] == 201


def test_a_chunked_upload_is_accepted(okhttp: Connection) -> None:
    """A proxy that re-frames the body as chunked changes nothing."""
    assert okhttp.put(kotlinx(batect_session()), chunked=True)[0] == 201


def test_the_corpus_as_kotlinx_writes_it_counts_as_uploaded_twice(okhttp: Connection) -> None:
    """Every Batect-shaped session is 201, and its re-upload 304: Batect deletes the file either way."""
    for tree in corpus():
        tree["sessionId"] = str(uuid.uuid4())
        body = kotlinx(tree)
        assert okhttp.put(body)[0] == 201, tree["sessionId"]
        assert okhttp.put(body)[0] == 304


def test_a_run_that_uploaded_thousands_of_queued_sessions_is_accepted(okhttp: Connection) -> None:
    """One UploadTelemetrySession span per session uploaded: 5,000 after an outage is 201 (2,000 was the old bound)."""
    at = datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC)
    spans = [
        {
            "type": "UploadTelemetrySession",
            "startTime": java_iso(at + timedelta(seconds=i), 123_456_789),
            "endTime": java_iso(at + timedelta(seconds=i + 1), 23_456_789),
            "attributes": {},
        }
        for i in range(5000)
    ]
    body = kotlinx(batect_session(sessionEndTime=java_iso(at + timedelta(hours=2), 5), spans=spans))
    assert len(body) < 1024 * 1024
    assert okhttp.put(body)[0] == 201


# Batect's Version.toString(): Int parts (Kotlin's Int, up to 10 digits), optional suffix and metadata.
_BATECT_VERSION = r"\A[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}(-[a-zA-Z0-9.-]{1,24})?(\+[a-zA-Z0-9.-]{1,24})?\Z"


@given(st.from_regex(_BATECT_VERSION))
def test_every_version_batect_can_print_is_valid(version: str) -> None:
    """Whatever Batect's Version type prints (dots and hyphens anywhere in its suffix) is a valid version."""
    assert _rules.is_version(version), version


@pytest.mark.parametrize("version", ["0.80.0-rc..1", "1.0.0-.dev", "1.0.0+.", "1.2.3--x+y-.z", "0.79.1-12-gabc1234"])
def test_odd_batect_versions_are_201(okhttp: Connection, version: str) -> None:
    """Versions Batect's type allows but SemVer does not are stored, as Abacus stored them."""
    assert okhttp.put(kotlinx(batect_session(applicationVersion=version)))[0] == 201


def okhttp_acts_itself(status: int, headers: dict[str, str]) -> str | None:
    """What OkHttp 4 does with an answer before AbacusClient sees it (its RetryAndFollowUpInterceptor's
    followUpRequest, read in its source; a model, as no JVM runs here); None: it hands the answer over."""
    if status in (300, 301, 302, 303, 307, 308):
        return "follows the redirect (a PUT turned GET for 301-303)"
    if status in (401, 407):
        return "asks an authenticator"
    if status == 421:
        return "retries on another connection"
    retry_after = headers.get("retry-after")
    if status == 408 and (retry_after is None or retry_after == "0"):
        return "retries at once"
    if status == 503 and retry_after == "0":
        return "retries at once"
    return None


def _put_once(api: Api, body: bytes) -> tuple[int, dict[str, str], bytes]:
    connection = Connection(api)
    try:
        return connection.put(body)
    finally:
        connection.close()


def test_every_refusal_reaches_batect_as_a_failure_that_keeps_the_file(tmp_path: Any) -> None:
    """400, 413, 503 and 429 each go straight to Batect's code (no redirect, no challenge, no instant
    retry by OkHttp) and count as a failed upload: the session stays queued for the next run."""
    store = SwitchableStore(tmp_path / "down")
    store.failing = True  # the bucket is down: a valid session gets 503
    limits = {"max_body_bytes": 32 * 1024, "rate_limit_per_second": 0.01, "rate_limit_burst": 3}
    runner = serve_in_thread(store, applications=frozenset({APPLICATION}), **limits)
    api = next(runner)
    too_big = batect_session(attributes={"padding": "p" * 40_000})
    try:
        answers = {
            400: _put_once(api, kotlinx(batect_session(applicationVersion="not a version"))),
            413: _put_once(api, kotlinx(too_big)),
            503: _put_once(api, kotlinx(batect_session())),
            429: _put_once(api, kotlinx(batect_session())),  # the burst of 3 is spent
        }
    finally:
        next(runner, None)
    for expected, (status, headers, _) in answers.items():
        assert status == expected
        assert okhttp_acts_itself(status, headers) is None, (status, headers)
        assert not batect_uploaded(status)
    assert int(answers[503][1]["retry-after"]) >= 1 and int(answers[429][1]["retry-after"]) >= 1
