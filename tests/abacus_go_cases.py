"""Every request case of Abacus's own Go tests, as requests to send to Tallystick.

Source: batect/abacus, read with the reference tools (newest stored versions, older ones where a
case was later dropped). Each case names the Go test file and paraphrases the test's
description; the bodies are this project's own data built to the shape each test describes
(its field values where the value is the point: ``abc123`` as an ID, ``1.`` as a version).

- ``server/api/ingest_test.go``, the ingest handler (method, Content-Type, body, 201/304/503,
  the stored object): 15 cases, and 4 more from its older versions;
- ``server/types/session_test.go``, the session's validation: one valid session, 18 invalid: 19;
- ``server/validation/application_id_test.go``, registered application IDs: 5;
- ``server/validation/attribute_name_test.go``, attribute names: 10;
- ``server/validation/attribute_value_test.go``, attribute values: 13;
- ``server/validation/version_test.go``, application versions: 33;
- ``server/storage/cloudstorage_integration_test.go``, the stored object and a second store of one ID: 2;
- ``server/api/ping_test.go``, ``home_test.go``, ``cmd/application_journey_test.go``: ``/ping`` and ``/``: 5.

The validator unit tests (``server/validation``) check one field in isolation; here each value
is put into an otherwise valid session at that field, so the case is a whole request. Not
request cases, and so not here: the logging, tracing and trace-ID middleware tests (log lines
and trace headers only), and the BigQuery and Honeycomb store tests (backends Tallystick does
not have).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

JSON = {"Content-Type": "application/json"}
START, END = "2019-01-02T03:04:05.678Z", "2019-01-02T09:04:05.678Z"
USER = "99990000-3333-4444-a555-666677778888"


@dataclass(frozen=True)
class GoCase:
    """One request of an Abacus Go test, the answer that test expects, and the docs row if Tallystick's differs."""

    source: str  # Go test file: the test's description, paraphrased
    body: bytes | None
    abacus: int  # the status Abacus's test expects (a validator unit test: 201 if it passes, else 400)
    difference: str | None = None  # the row of docs/wire-contract.md's "Differences from Abacus" when ours differs
    errors: tuple[tuple[str, str], ...] = ()  # (key, type) of Abacus's validationErrors where its test lists them
    stored: dict[str, Any] | None = None  # the object Abacus's test expects stored (ingestionTime aside)
    method: str = "PUT"
    path: str = "/v1/sessions"
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    allow: str | None = None  # the Allow header of Abacus's 405
    repeat_of: str | None = None  # send that case's body again first (for "already exists")
    store_fails: bool = False  # the store refuses writes for this case (an unreachable bucket)


def session(**fields: Any) -> dict[str, Any]:
    """A valid session tree with a fresh version-4 ID (each case stores its own session)."""
    tree: dict[str, Any] = {
        "sessionId": str(uuid.uuid4()),
        "userId": USER,
        "sessionStartTime": START,
        "sessionEndTime": END,
        "applicationId": "test-app",
        "applicationVersion": "1.0.0",
    }
    tree.update(fields)
    return tree


def dumps(tree: Any) -> bytes:
    return json.dumps(tree).encode()


def stored(tree: dict[str, Any]) -> dict[str, Any]:
    """What Abacus stores for a valid ``tree``: absent collections as empty, each event's and span's too."""
    out = dict(tree)
    out.setdefault("attributes", {})
    for name in ("events", "spans"):
        out[name] = [{"attributes": {}, **item} for item in out.get(name) or []]
    return out


CASES: dict[str, GoCase] = {}


def case(name: str, c: GoCase) -> None:
    assert name not in CASES, name
    CASES[name] = c


# --- server/api/ingest_test.go -----------------------------------------------------------------
_INGEST = "server/api/ingest_test.go"
case(
    "ingest/method-post",
    GoCase(f"{_INGEST}: a method other than PUT is 405 with Allow: PUT", None, 405, method="POST", allow="PUT"),
)
case(
    "ingest/no-content-type",
    GoCase(f"{_INGEST}: no Content-Type header", None, 400, "status-415", headers={}),
)
case(
    "ingest/content-type-text",
    GoCase(
        f"{_INGEST}: an invalid Content-Type header", None, 400, "status-415", headers={"Content-Type": "text/plain"}
    ),
)
case("ingest/empty-body", GoCase(f"{_INGEST}: the request body is empty", b"", 400))
case("ingest/not-json", GoCase(f"{_INGEST}: the request body is not valid JSON", b"{", 400))
_REQUIRED = ("sessionId", "userId", "sessionStartTime", "sessionEndTime", "applicationId", "applicationVersion")
case(
    "ingest/empty-object",
    GoCase(f"{_INGEST}: valid JSON but empty", b"{}", 400, errors=tuple((k, "required") for k in _REQUIRED)),
)
case(
    "ingest/ids-invalid",
    GoCase(
        f"{_INGEST}: a field in an invalid format (IDs)",
        dumps(session(sessionId="abc123", userId="def456")),
        400,
        errors=(("sessionId", "uuid4"), ("userId", "uuid4")),
    ),
)
case(
    "ingest/extra-field",
    GoCase(
        f"{_INGEST}: valid JSON with an extra field",
        dumps({"sessionId": str(uuid.uuid4()), "blah": "value"}),
        400,
        errors=(("blah", "unknownField"),),
    ),
)
_with_ingestion = session(ingestionTime="2019-01-03T00:00:00.000Z", attributes={"operatingSystem": "Mac"})
case(
    "ingest/ingestion-time-sent",
    GoCase(
        f"{_INGEST}: a value for the ingestion time is replaced by the server's",
        dumps(_with_ingestion),
        201,
        stored=stored({k: v for k, v in _with_ingestion.items() if k != "ingestionTime"}),
    ),
)
_valid = session(
    attributes={"operatingSystem": "Mac"},
    events=[{"type": "ThingHappened", "time": "2019-01-02T03:04:06.678Z", "attributes": {"thingEnabled": True}}],
    spans=[
        {
            "type": "LoadingThings",
            "startTime": "2019-01-02T03:04:07.678Z",
            "endTime": "2019-01-02T03:04:08.678Z",
            "attributes": {"nameOfThing": "thing-1"},
        }
    ],
)
case(
    "ingest/valid",
    GoCase(f"{_INGEST}: a valid body is stored without modification", dumps(_valid), 201, stored=stored(_valid)),
)
case(
    "ingest/store-fails",
    GoCase(f"{_INGEST}: storing the session fails (503)", dumps(session()), 503, store_fails=True),
)
case(
    "ingest/already-exists",
    GoCase(
        f"{_INGEST}: the session already exists (304, not stored again)", dumps(_valid), 304, repeat_of="ingest/valid"
    ),
)
_bare = session()
case(
    "ingest/no-collections",
    GoCase(f"{_INGEST}: no attributes, spans or events are stored as empty", dumps(_bare), 201, stored=stored(_bare)),
)
_span_bare = session(
    spans=[
        {
            "type": "LoadingThings",
            "startTime": "2019-01-02T03:04:07.678Z",
            "endTime": "2019-01-02T03:04:08.678Z",
            "attributes": {"nameOfThing": "thing-1"},
        },
        {"type": "LoadingOtherThings", "startTime": "2019-01-02T03:04:07.678Z", "endTime": "2019-01-02T03:04:08.678Z"},
    ]
)
case(
    "ingest/span-without-attributes",
    GoCase(
        f"{_INGEST}: a span without attributes is stored with empty ones",
        dumps(_span_bare),
        201,
        stored=stored(_span_bare),
    ),
)
_event_bare = session(
    events=[
        {"type": "DidThing", "time": "2019-01-02T03:04:07.678Z", "attributes": {"nameOfThing": "thing-1"}},
        {"type": "DidOtherThing", "time": "2019-01-02T03:04:07.678Z"},
    ]
)
case(
    "ingest/event-without-attributes",
    GoCase(
        f"{_INGEST}: an event without attributes is stored with empty ones",
        dumps(_event_bare),
        201,
        stored=stored(_event_bare),
    ),
)
# Older versions of ingest_test.go (before these moved to session_test.go): the same rules over HTTP.
case(
    "ingest/end-before-start",
    GoCase(
        f"{_INGEST} (older): the start time after the end time",
        dumps(session(sessionStartTime="2019-01-04T03:04:05.678Z")),
        400,
        errors=(("sessionEndTime", "gtefield"),),
    ),
)
case(
    "ingest/unregistered-application",
    GoCase(
        f"{_INGEST} (older): an invalid application ID",
        dumps(session(applicationId="my-app")),
        400,
        errors=(("applicationId", "applicationId"),),
    ),
)
case(
    "ingest/any-uuid-version",
    GoCase(
        f"{_INGEST} (older, when IDs were checked as any UUID): a valid body whose IDs are not version 4 "
        "(today's Abacus refuses them, as session/ids-not-random shows)",
        dumps(session(sessionId="11112222-3333-4444-5555-666677778888", userId="99990000-3333-4444-5555-666677778888")),
        201,
        "uuid-version",
    ),
)
case(
    "ingest/ingestion-time-capitalised",
    GoCase(
        f"{_INGEST} (older): IngestionTime spelt with a capital; Go's decoder matches field names "
        "case-insensitively, so today's Abacus takes it as ingestionTime (and replaces it)",
        dumps(session(IngestionTime="2020-05-24T00:00:00.000Z")),
        201,
        "key-case",
    ),
)

# --- server/types/session_test.go ----------------------------------------------------------------
_TYPES = "server/types/session_test.go"
_ATTRS = {"operatingSystem": "Mac", "isEnabled": True, "count": 123, "duration": 2.3, "nullable": None}
case(
    "session/valid",
    GoCase(
        f"{_TYPES}: a valid session",
        dumps(
            session(
                attributes={**_ATTRS, "version1": "1.2.3"},
                events=[{"type": "ThingHappened", "time": "2019-01-02T03:04:06.678Z", "attributes": _ATTRS}],
                spans=[
                    {
                        "type": "LoadingThings",
                        "startTime": "2019-01-02T03:04:07.678Z",
                        "endTime": "2019-01-02T03:04:08.678Z",
                        "attributes": _ATTRS,
                    }
                ],
            )
        ),
        201,
    ),
)
case("session/empty", GoCase(f"{_TYPES}: an empty body", b"{}", 400, errors=tuple((k, "required") for k in _REQUIRED)))
case(
    "session/event-empty",
    GoCase(
        f"{_TYPES}: an event with an empty body",
        dumps(session(events=[{}])),
        400,
        errors=(("events[0].type", "required"), ("events[0].time", "required")),
    ),
)
case(
    "session/span-empty",
    GoCase(
        f"{_TYPES}: a span with an empty body",
        dumps(session(spans=[{}])),
        400,
        errors=(("spans[0].type", "required"), ("spans[0].startTime", "required"), ("spans[0].endTime", "required")),
    ),
)
case(
    "session/ids-invalid",
    GoCase(
        f"{_TYPES}: an invalid value for the ID fields",
        dumps(session(sessionId="abc123", userId="def456")),
        400,
        errors=(("sessionId", "uuid4"), ("userId", "uuid4")),
    ),
)
case(
    "session/ids-not-random",
    GoCase(
        f"{_TYPES}: a non-random UUID for the ID fields",
        dumps(session(sessionId="11112222-3333-4444-5555-666677778888", userId="99990000-3333-4444-5555-666677778888")),
        400,
        errors=(("sessionId", "uuid4"), ("userId", "uuid4")),
    ),
)
case(
    "session/end-before-start",
    GoCase(
        f"{_TYPES}: the end time before the start time",
        dumps(session(sessionStartTime="2019-01-04T03:04:05.678Z")),
        400,
        errors=(("sessionEndTime", "gtefield"),),
    ),
)
case(
    "session/span-end-before-start",
    GoCase(
        f"{_TYPES}: a span with the end time before the start time",
        dumps(session(spans=[{"type": "some-span", "startTime": "2019-01-04T03:04:05.678Z", "endTime": END}])),
        400,
        errors=(("spans[0].endTime", "gtefield"),),
    ),
)
case(
    "session/unregistered-application",
    GoCase(
        f"{_TYPES}: an invalid application ID",
        dumps(session(applicationId="my-app")),
        400,
        errors=(("applicationId", "applicationId"),),
    ),
)
case(
    "session/version-trailing-dot",
    GoCase(
        f"{_TYPES}: an invalid application version",
        dumps(session(applicationVersion="1.")),
        400,
        errors=(("applicationVersion", "version"),),
    ),
)
_EVENT = {"type": "the-event", "time": START}
_SPAN = {"type": "the-event", "startTime": START, "endTime": END}
for where, prefix, make in (
    ("", "", lambda a: session(attributes=a)),
    (" on an event", "events[0].", lambda a: session(events=[{**_EVENT, "attributes": a}])),
    (" on a span", "spans[0].", lambda a: session(spans=[{**_SPAN, "attributes": a}])),
):
    slug = where.strip().replace("on an ", "").replace("on a ", "") or "session"
    case(
        f"session/attribute-name-empty-{slug}",
        GoCase(
            f"{_TYPES}: an empty attribute name{where}",
            dumps(make({"": "blah"})),
            400,
            errors=((f"{prefix}attributes[]", "required"),),
        ),
    )
    case(
        f"session/attribute-names-invalid-{slug}",
        GoCase(
            f"{_TYPES}: invalid attribute names{where}",
            dumps(make({"1": "blah", ".": "blah", "-": "blah"})),
            400,
            errors=tuple((f"{prefix}attributes[{n}]", "attributeName") for n in ("1", ".", "-")),
        ),
    )
    case(
        f"session/attribute-values-invalid-{slug}",
        GoCase(
            f"{_TYPES}: invalid attribute values{where}",
            dumps(make({"attribute1": [], "attribute2": {}})),
            400,
            errors=tuple((f"{prefix}attributes[{n}]", "attributeValue") for n in ("attribute1", "attribute2")),
        ),
    )

# --- server/validation/*_test.go: one field's validator, here at that field of a whole session ---
_APP = "server/validation/application_id_test.go"
for app in ("batect", "test-app", "smoke-test-app"):
    case(
        f"application-id/{app}",
        GoCase(f"{_APP}: '{app}' is a permitted application ID", dumps(session(applicationId=app)), 201),
    )
case(
    "application-id/empty",
    GoCase(
        f"{_APP}: an empty application ID",
        dumps(session(applicationId="")),
        400,
        errors=(("applicationId", "required"),),
    ),
)
case(
    "application-id/blah",
    GoCase(
        f"{_APP}: an invalid application ID",
        dumps(session(applicationId="blah")),
        400,
        errors=(("applicationId", "applicationId"),),
    ),
)

_NAME = "server/validation/attribute_name_test.go"
for name in ("a", "abc123", "theThing"):
    case(
        f"attribute-name/{name}",
        GoCase(f"{_NAME}: '{name}' is a permitted name", dumps(session(attributes={name: 1})), 201),
    )
# The test lists the empty name twice (once on its own, once in the loop): one request each.
for i, name in enumerate(("", "", "1", "1a", "-", ".", "(")):
    expected = ("attributes[]", "required") if name == "" else (f"attributes[{name}]", "attributeName")
    case(
        f"attribute-name/invalid-{i}",
        GoCase(f"{_NAME}: '{name}' fails validation", dumps(session(attributes={name: 1})), 400, errors=(expected,)),
    )

_VALUE = "server/validation/attribute_value_test.go"
for i, value in enumerate(("a", "abc123", "123", 0, -1, 1, 1.5, True, False, None)):
    case(
        f"attribute-value/valid-{i}",
        GoCase(f"{_VALUE}: {value!r} is a permitted value", dumps(session(attributes={"value": value})), 201),
    )
for i, value in enumerate(([], ["hello"], {"hello": "world"})):
    case(
        f"attribute-value/invalid-{i}",
        GoCase(
            f"{_VALUE}: {value!r} fails validation",
            dumps(session(attributes={"value": value})),
            400,
            errors=(("attributes[value]", "attributeValue"),),
        ),
    )

_VERSION = "server/validation/version_test.go"
_VALID_VERSIONS = (
    "1",
    "1.0",
    "1.0.0",
    "1.0.0-abc123",
    "1.0.0-abc-def.123",
    "1.0.0-abc123+xyz456",
    "1.0.0-abc-def.12+ghi-jkl.34",
    "1.0.0+ghi-jkl.34",
    "01.02.03",
)
for version in _VALID_VERSIONS:
    case(
        f"version/valid-{version}",
        GoCase(f"{_VERSION}: '{version}' is a permitted version", dumps(session(applicationVersion=version)), 201),
    )
case(
    "version/empty",
    GoCase(
        f"{_VERSION}: an empty version",
        dumps(session(applicationVersion="")),
        400,
        errors=(("applicationVersion", "required"),),
    ),
)
_INVALID_VERSIONS = {
    "1.": None,
    "1.0.": None,
    "1.0.0.": None,
    "1.2.3.4": "pep440",  # a four-part release is PEP 440
    "1.0.0-abc123+": None,
    "-1.2.3": None,
    "a": None,
    "a.b.c": None,
    ".0.1": None,
    "1-": None,
    "1-thing": None,
    "1.2-": None,
    "1.2-thing": None,
    "1.2.3-": None,
    "1..2": None,
    "1.0.0-/../": None,
    "1.0.0-/..": None,
    "1.0.0-/": None,
    "1.0.0-../": None,
    "1.0.0+/../": None,
    "1.0.0+/..": None,
    "1.0.0+/": None,
    "1.0.0+../": None,
}
for version, difference in _INVALID_VERSIONS.items():
    case(
        f"version/invalid-{version}",
        GoCase(
            f"{_VERSION}: '{version}' fails validation",
            dumps(session(applicationVersion=version)),
            400,
            difference,
            errors=(("applicationVersion", "version"),),
        ),
    )

# --- server/storage/cloudstorage_integration_test.go: the stored object, over HTTP here -----------
_STORE = "server/storage/cloudstorage_integration_test.go"
_NUMBERS = {"operatingSystem": "Mac", "counter": 123, "duration": 1.3, "isEnabled": True, "nullValue": None}
_full = session(
    attributes={**_NUMBERS, "dockerVersion": "19.3.5"},
    events=[{"type": "ThingHappened", "time": "2019-01-02T03:04:06.678Z", "attributes": _NUMBERS}],
    spans=[
        {
            "type": "LoadingThings",
            "startTime": "2019-01-02T03:04:07.678Z",
            "endTime": "2019-01-02T03:04:08.678Z",
            "attributes": _NUMBERS,
        }
    ],
)
case(
    "storage/stored-object",
    GoCase(
        f"{_STORE}: the session is stored as JSON (numbers, booleans and nulls kept)",
        dumps(_full),
        201,
        stored=stored(_full),
    ),
)
case(
    "storage/not-overwritten",
    GoCase(
        f"{_STORE}: a session with the same ID does not overwrite the stored one",
        dumps({**_full, "attributes": {"someNewAttribute": "some value"}}),
        304,
        stored=stored(_full),
        repeat_of="storage/stored-object",
    ),
)

# --- server/api/ping_test.go, home_test.go, cmd/application_journey_test.go ---------------------
for source, path, get in (
    ("server/api/ping_test.go", "/ping", 200),
    ("server/api/home_test.go", "/", 204),
):
    slug = path.strip("/") or "home"
    case(
        f"{slug}/post",
        GoCase(
            f"{source}: a method other than GET is 405 with Allow: GET",
            None,
            405,
            "routes" if path == "/" else None,
            method="POST",
            path=path,
            headers={},
            allow="GET",
        ),
    )
    case(
        f"{slug}/get",
        GoCase(f"{source}: GET", None, get, "routes" if path == "/" else None, method="GET", path=path, headers={}),
    )
case(
    "journey/ping",
    GoCase(
        "server/cmd/application_journey_test.go: the running application answers GET /ping with 200",
        None,
        200,
        method="GET",
        path="/ping",
        headers={},
    ),
)


# --- Probes of Abacus's code where its tests are silent: request variants a client could send ------
# Abacus's answers read from server/cmd/application.go (a Go ServeMux: ``/v1/sessions`` exact,
# everything else to the home handler, which allows GET only), server/api/json.go (the
# Content-Type compared to ``application/json`` byte for byte; Go's decoder matching field names
# case-insensitively) and server/types/session.go (``required`` on a time: Go's zero time fails).
PROBES: dict[str, GoCase] = {
    "probe/trailing-slash": GoCase(
        "server/cmd/application.go: PUT /v1/sessions/ reaches the home handler",
        dumps(session()),
        405,
        "routes",
        path="/v1/sessions/",
        allow="GET",
    ),
    "probe/query-string": GoCase(
        "server/cmd/application.go: a query string does not change the route",
        dumps(session()),
        201,
        path="/v1/sessions?source=probe",
    ),
    "probe/get-sessions": GoCase(
        "server/api/http.go: GET on the ingest route", None, 405, method="GET", headers={}, allow="PUT"
    ),
    "probe/delete-sessions": GoCase(
        "server/api/http.go: DELETE on the ingest route", None, 405, method="DELETE", headers={}, allow="PUT"
    ),
    "probe/head-ping": GoCase(
        "server/api/ping.go: HEAD /ping", None, 405, "routes", method="HEAD", path="/ping", headers={}
    ),
    "probe/content-type-case": GoCase(
        "server/api/json.go: Content-Type in other letter case",
        dumps(session()),
        400,
        "content-type-params",
        headers={"Content-Type": "Application/JSON"},
    ),
    "probe/field-name-case": GoCase(
        "server/api/json.go: a field name in other letter case (SessionId)",
        dumps(session()).replace(b'"sessionId"', b'"SessionId"'),
        201,
        "key-case",
    ),
    "probe/zero-time": GoCase(
        "server/types/session.go: Go's zero time 0001-01-01T00:00:00Z as the start and end",
        dumps(session(sessionStartTime="0001-01-01T00:00:00Z", sessionEndTime="0001-01-01T00:00:00Z")),
        400,
        "zero-time",
        errors=(("sessionStartTime", "required"), ("sessionEndTime", "required")),
    ),
    "probe/event-zero-time": GoCase(
        "server/types/session.go: Go's zero time as an event's time",
        dumps(session(events=[{"type": "Early", "time": "0001-01-01T00:00:00Z"}])),
        400,
        "zero-time",
        errors=(("events[0].time", "required"),),
    ),
}


# Probes of Abacus's validators and decoder beyond its tests' values (this project's data):
# server/validation/version.go (its version regex, which Batect's own Version type shares, so
# Batect can send any version it takes), go-playground's uuid4 regex (lower-case hex only), Go's
# regexp (``$`` matches only at the very end), Go's time.Time (nanoseconds kept and compared; any
# year from 0000 on; 'T' and 'Z' upper case only) and encoding/json with UseNumber (any number
# literal kept as text).
def _span(start: str, end: str) -> dict[str, Any]:
    return {"type": "Tick", "startTime": start, "endTime": end}


PROBES.update(
    {
        "probe/version-dotted-suffix": GoCase(
            "server/validation/version.go: dots anywhere in the pre-release and build parts",
            dumps(session(applicationVersion="1.0.0-rc..1+build..7")),
            201,
        ),
        "probe/version-suffix-starts-with-dot": GoCase(
            "server/validation/version.go: a pre-release part starting with a dot",
            dumps(session(applicationVersion="1.0.0-.pre")),
            201,
        ),
        "probe/version-build-only-dot": GoCase(
            "server/validation/version.go: a build part that is a dot",
            dumps(session(applicationVersion="1.0.0+.")),
            201,
        ),
        "probe/version-trailing-newline": GoCase(
            "server/validation/version.go: a version ending in a newline",
            dumps(session(applicationVersion="1.0.0\n")),
            400,
            errors=(("applicationVersion", "version"),),
        ),
        "probe/uuid-upper-case": GoCase(
            "go-playground uuid4: an upper-case version-4 UUID",
            dumps(session(sessionId=str(uuid.uuid4()).upper())),
            400,
            errors=(("sessionId", "uuid4"),),
        ),
        "probe/uuid-trailing-newline": GoCase(
            "go-playground uuid4: a UUID ending in a newline",
            dumps(session(userId=USER + "\n")),
            400,
            errors=(("userId", "uuid4"),),
        ),
        "probe/attribute-name-trailing-newline": GoCase(
            "server/validation/attribute_name.go: a name ending in a newline",
            dumps(session(attributes={"shell\n": "zsh"})),
            400,
            errors=(("attributes[shell\n]", "attributeName"),),
        ),
        "probe/span-end-a-nanosecond-early": GoCase(
            "server/types/session.go: a span ending a nanosecond before it starts (gtefield on nanoseconds)",
            dumps(session(spans=[_span("2019-01-02T03:04:06.000000002Z", "2019-01-02T03:04:06.000000001Z")])),
            400,
            errors=(("spans[0].endTime", "gtefield"),),
        ),
        "probe/session-end-a-nanosecond-early": GoCase(
            "server/types/session.go: a session ending a nanosecond before it starts, in another offset",
            dumps(
                session(
                    sessionStartTime="2019-01-02T13:04:05.000000002+10:00",
                    sessionEndTime="2019-01-02T03:04:05.000000001Z",
                )
            ),
            400,
            errors=(("sessionEndTime", "gtefield"),),
        ),
        "probe/span-a-nanosecond-long": GoCase(
            "server/types/session.go: a span one nanosecond long",
            dumps(session(spans=[_span("2019-01-02T03:04:06.000000001Z", "2019-01-02T03:04:06.000000002Z")])),
            201,
        ),
        "probe/end-earlier-on-the-clock-later-in-time": GoCase(
            "server/types/session.go: an end time earlier on the wall clock but later as an instant",
            dumps(session(sessionStartTime="2019-01-02T05:04:05+02:00", sessionEndTime="2019-01-02T03:30:00Z")),
            201,
        ),
        "probe/ten-fraction-digits": GoCase(
            "Go's time parser: ten fractional digits (the tenth is dropped)",
            dumps(session(events=[{"type": "Tick", "time": "2019-01-02T03:04:06.1234567891Z"}])),
            201,
        ),
        "probe/time-lower-case-t-and-z": GoCase(
            "Go's time parser: 't' and 'z' in lower case",
            dumps(session(sessionStartTime="2019-01-02t03:04:05.678z")),
            400,
            "time-syntax",
        ),
        "probe/time-year-0000": GoCase(
            "Go's time parser: the year 0000 (not Go's zero time)",
            dumps(session(sessionStartTime="0000-06-01T00:00:00Z")),
            201,
            "time-range",
        ),
        "probe/time-before-year-1-in-utc": GoCase(
            "Go's time.Time: 0001-01-01T00:00:00+01:00, an instant in the year 0000",
            dumps(session(events=[{"type": "Tick", "time": "0001-01-01T00:00:00+01:00"}])),
            201,
            "time-range",
        ),
        "probe/float-beyond-64-bits": GoCase(
            "encoding/json with UseNumber: 1e400 is kept as text",
            dumps(session()).replace(b'"1.0.0"', b'"1.0.0", "attributes": {"huge": 1e400}'),
            201,
            "int-range",
        ),
    }
)
