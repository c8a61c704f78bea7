"""Parity with Abacus: each case's Abacus answer beside Tallystick's, every difference documented.

Abacus's answers come from reading its validation code and its own tests (batect/abacus:
``server/types/session.go`` and ``session_test.go``, ``server/validation/*.go`` and their tests,
``server/api/json.go`` and ``ingest_test.go``): a Go ``json.Decoder`` with unknown fields
disallowed and numbers kept as ``json.Number`` reads one value (trailing bytes ignored, the last
of duplicate keys kept, invalid UTF-8 replaced), then go-playground validation checks required
fields, version-4 UUIDs, end >= start, the registered application IDs, a SemVer-like version,
attribute names ``^[a-zA-Z][a-zA-Z0-9]*$`` and scalar attribute values. The inputs here are
this project's own test data. Tallystick's answer is a real server's, over HTTP.

A case whose accept/reject answers differ must name a row of the table in
``docs/wire-contract.md`` ("Differences from Abacus"); the test reads that table.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from abacus_go_cases import CASES as GO_CASES
from abacus_go_cases import PROBES
from batect_sessions import SPEC_SHAPED
from fixtures.api import Api

DOCS = Path(__file__).parents[2] / "docs" / "wire-contract.md"
ACCEPT, REJECT = "accept", "reject"

BASE: dict[str, Any] = {
    "sessionId": "2f1e0d9c-8b7a-4c6d-9e5f-4a3b2c1d0e9f",
    "userId": "7c6b5a49-3827-4165-a4b3-c2d1e0f9a8b7",
    "sessionStartTime": "2021-03-04T05:06:07.891Z",
    "sessionEndTime": "2021-03-04T05:16:07.891Z",
    "applicationId": "test-app",
    "applicationVersion": "2.3.4",
    "attributes": {"hostArch": "arm64", "gitPresent": True, "cpuCount": 8, "loadAverage": 0.75, "proxy": None},
    "events": [{"type": "ConfigLoaded", "time": "2021-03-04T05:06:08.000Z", "attributes": {"fileCount": 3}}],
    "spans": [
        {
            "type": "ResolveImages",
            "startTime": "2021-03-04T05:06:09.000Z",
            "endTime": "2021-03-04T05:06:10.500Z",
            "attributes": {"cached": False},
        }
    ],
}


@dataclass
class Case:
    """One input, Abacus's documented answer, and the docs row that explains a difference (if any)."""

    body: bytes
    abacus: str
    difference: str | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def _with(change: Callable[[dict[str, Any]], None]) -> bytes:
    tree = copy.deepcopy(BASE)
    tree["sessionId"] = str(uuid.uuid4())  # each case a session of its own (else 304)
    change(tree)
    return json.dumps(tree).encode()


def _set(**fields: Any) -> bytes:
    return _with(lambda t: t.update(fields))


def _event(event: dict[str, Any]) -> bytes:
    return _set(events=[event])


def _span(span: dict[str, Any]) -> bytes:
    return _set(spans=[span])


def _attributes(attributes: dict[str, Any]) -> bytes:
    return _set(attributes=attributes)


VALID = json.dumps(BASE).encode()
T0, T1 = "2021-03-04T05:06:08Z", "2021-03-04T05:06:09Z"

CASES: dict[str, Case] = {
    # Agreed: accepted by both.
    "valid-session": Case(VALID, ACCEPT),
    "batect-serialiser-shape": Case(json.dumps(dict(SPEC_SHAPED, applicationId="test-app")).encode(), ACCEPT),
    "batect-application-id": Case(_set(applicationId="batect"), ACCEPT),
    "hyphenated-types": Case(_event({"type": "image-built", "time": T0}), ACCEPT),
    "nanosecond-times-with-offset": Case(
        _set(sessionStartTime="2021-03-04T15:06:07.000000001+10:00", sessionEndTime="2021-03-04T05:16:07.5Z"), ACCEPT
    ),
    "version-major-only": Case(_set(applicationVersion="3"), ACCEPT),
    "version-prerelease-build": Case(_set(applicationVersion="1.0.0-beta.2+exp.sha.5114f85"), ACCEPT),
    "float-attribute": Case(_attributes({"ratio": 2.5}), ACCEPT),
    "null-attribute": Case(_attributes({"missing": None}), ACCEPT),
    "null-collections": Case(_set(attributes=None, events=None, spans=None), ACCEPT),
    "absent-collections": Case(_with(lambda t: [t.pop(k) for k in ("attributes", "events", "spans")]), ACCEPT),
    "ingestion-time-sent": Case(_set(ingestionTime="2000-01-01T00:00:00Z"), ACCEPT),
    "stack-trace-attribute-20k": Case(
        _event(
            {
                "type": "UnhandledException",
                "time": T0,
                "attributes": {
                    "exception": "java.io.IOException\n"
                    + "\tat batect.docker.api.ContainersAPI.create(ContainersAPI.kt:91)\n" * 300
                },
            }
        ),
        ACCEPT,
    ),
    # Agreed: refused by both.
    "empty-object": Case(b"{}", REJECT),
    "empty-body": Case(b"", REJECT),
    "not-json": Case(b"{", REJECT),
    "event-without-fields": Case(_event({}), REJECT),
    "span-without-fields": Case(_span({}), REJECT),
    "event-type-empty": Case(_event({"type": "", "time": T0}), REJECT),
    "ids-not-uuids": Case(_set(sessionId="abc123", userId="def456"), REJECT),
    "ids-not-version-4": Case(_set(sessionId="2f1e0d9c-8b7a-1c6d-9e5f-4a3b2c1d0e9f"), REJECT),
    "end-before-start": Case(_set(sessionEndTime="2021-03-04T05:00:00Z"), REJECT),
    "span-end-before-start": Case(_span({"type": "Pull", "startTime": T1, "endTime": T0}), REJECT),
    "unregistered-application": Case(_set(applicationId="someone-else"), REJECT),
    "version-trailing-dot": Case(_set(applicationVersion="1."), REJECT),
    "version-words": Case(_set(applicationVersion="latest"), REJECT),
    "attribute-name-empty": Case(_attributes({"": "x"}), REJECT),
    "attribute-name-digit-first": Case(_attributes({"1st": "x"}), REJECT),
    "attribute-name-punctuation": Case(_attributes({"a-b": "x"}), REJECT),
    "event-attribute-name-bad": Case(_event({"type": "A", "time": T0, "attributes": {".": 1}}), REJECT),
    "attribute-value-array": Case(_attributes({"list": [1]}), REJECT),
    "attribute-value-object": Case(_attributes({"map": {}}), REJECT),
    "unknown-field": Case(_set(blah="value"), REJECT),
    "unknown-field-in-span": Case(_span({"type": "A", "startTime": T0, "endTime": T1, "extra": 1}), REJECT),
    "time-without-offset": Case(_set(sessionStartTime="2021-03-04T05:06:07"), REJECT),
    "time-leap-second": Case(_set(sessionEndTime="2021-03-04T23:59:60Z"), REJECT),
    "nan": Case(VALID.replace(b'"cpuCount": 8', b'"cpuCount": NaN'), REJECT),
    "required-field-missing": Case(_with(lambda t: t.pop("sessionEndTime")), REJECT),
    # Answered differently: each names its row in docs/wire-contract.md.
    "version-four-parts": Case(_set(applicationVersion="1.2.3.4"), REJECT, "pep440"),
    "version-post-release": Case(_set(applicationVersion="1.4.post1"), REJECT, "pep440"),
    "type-with-space": Case(_event({"type": "Image Built", "time": T0}), ACCEPT, "type-charset"),
    "type-with-slash": Case(_span({"type": "docker/pull", "startTime": T0, "endTime": T1}), ACCEPT, "type-charset"),
    "type-129-characters": Case(_event({"type": "T" * 129, "time": T0}), ACCEPT, "type-length"),
    "attribute-name-65-characters": Case(_attributes({"a" * 65: 1}), ACCEPT, "name-length"),
    "201-attributes": Case(_attributes({f"k{i}": i for i in range(201)}), ACCEPT, "max-attributes"),
    "10001-events": Case(_set(events=[{"type": "Tick", "time": T0}] * 10_001), ACCEPT, "max-items"),
    "value-over-256Ki": Case(_attributes({"exception": "x" * 270_000}), ACCEPT, "value-length"),
    "body-over-1MiB": Case(
        _set(events=[{"type": "Tick", "time": T0, "attributes": {"pad": "p" * 600}}] * 1900), ACCEPT, "body-size"
    ),
    "trailing-bytes": Case(VALID + b" trailing", ACCEPT, "trailing"),
    "trailing-second-object": Case(VALID + b"{}", ACCEPT, "trailing"),
    "duplicate-key": Case(VALID[:-1] + b', "applicationVersion": "2.3.5"}', ACCEPT, "duplicate-keys"),
    "invalid-utf8": Case(VALID.replace(b'"arm64"', b'"arm\xff64"'), ACCEPT, "utf8"),
    "unpaired-surrogate-escape": Case(VALID.replace(b'"arm64"', b'"arm\\ud800"'), ACCEPT, "utf8"),
    "integer-over-64-bits": Case(
        VALID.replace(b'"cpuCount": 8', b'"cpuCount": 99999999999999999999'), ACCEPT, "int-range"
    ),
    "gzip-body": Case(
        gzip.compress(VALID), REJECT, "gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    ),
    "content-type-with-charset": Case(
        VALID, REJECT, "content-type-params", {"Content-Type": "application/json; charset=utf-8"}
    ),
    # Same verdict, another status: listed because the status differs (Abacus 400, Tallystick 415).
    "content-type-text": Case(VALID, REJECT, "status-415", {"Content-Type": "text/plain"}),
}
# Rows about the answer's form, not accept/reject; the tests that check them.
FORM_ROWS = {
    "error-body": "tests/server/test_api.py::test_invalid_session_is_400_with_every_error",
    "registered": "tests/server/test_abacus_parity.py (case unregistered-application)",
    "storage-key": "tests/warehouse/test_loader.py::test_same_session_under_two_keys_loads_once",
    "stored-form": "tests/server/test_batect.py::test_stored_object_keeps_the_timestamps_as_sent",
    "status-415": "tests/server/test_abacus_parity.py (case content-type-text)",
}


def documented() -> dict[str, list[str]]:
    """The rows of the "Differences from Abacus" table: id → cells."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Differences from Abacus", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z0-9-]+)` \|(.*)\|$", line)
        if match:
            cells = [c.strip() for c in match.group(2).split(" | ")]
            rows[match.group(1)] = cells
    return rows


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Every case sent once to a real server with test-app and batect registered (as Abacus has them compiled in)."""
    from fixtures.api import serve_in_thread
    from tallystick.storage.local import LocalStore

    runner = serve_in_thread(
        LocalStore(tmp_path_factory.mktemp("parity") / "sessions"), applications=frozenset({"test-app", "batect"})
    )
    api: Api = next(runner)
    try:
        statuses = {}
        for name, case in CASES.items():
            answer = api.request("PUT", "/v1/sessions", case.body, case.headers)
            statuses[name] = answer.status
        return statuses
    finally:
        next(runner, None)


def _verdict(status: int) -> str:
    assert status in (201, 304, 400, 413, 415), status
    return ACCEPT if status in (201, 304) else REJECT


@pytest.mark.parametrize("name", CASES)
def test_case_matches_abacus_or_names_a_documented_difference(name: str, answers: dict[str, int]) -> None:
    """Accept/reject equal to Abacus's, or different with the reason's row in docs/wire-contract.md."""
    case = CASES[name]
    ours = _verdict(answers[name])
    rows = documented()
    if ours != case.abacus:
        assert case.difference is not None, f"{name}: Abacus {case.abacus}s, Tallystick {ours}s, and no reason is given"
        assert case.difference in rows, f"{name}: difference {case.difference!r} is not in the docs table"
        row = rows[case.difference]
        assert len(row) == 5 and all(row), (
            f"{case.difference}: every column (rule, Abacus, Tallystick, why, Batect) filled"
        )
    elif case.difference is not None:
        assert case.difference in FORM_ROWS, f"{name}: names {case.difference!r} yet answers as Abacus does"


def test_every_documented_difference_is_shown_by_a_case_or_a_test() -> None:
    """The docs table claims nothing no test shows (here, or among Abacus's Go test cases: test_abacus_go_cases.py)."""
    named = {c.difference for c in CASES.values() if c.difference}
    named |= {c.difference for c in (*GO_CASES.values(), *PROBES.values()) if c.difference}
    assert set(documented()) == named | set(FORM_ROWS)


def test_batect_spec_shaped_session_and_a_long_trace_are_201(answers: dict[str, int]) -> None:
    """The two sessions the compatibility promise rests on are stored, not just not-refused."""
    assert answers["batect-serialiser-shape"] == 201
    assert answers["stack-trace-attribute-20k"] == 201
    assert answers["body-over-1MiB"] == 413
    assert answers["content-type-text"] == 415
