"""Abacus's own Go test cases (``tests/abacus_go_cases.py``) sent to a real Tallystick server.

Each case's status must be the one Abacus's test expects, or differ with a row of
docs/wire-contract.md's "Differences from Abacus" named. Beyond the status, what those tests
check is checked here too: a 201's or 304's empty body, the JSON ``Content-Type`` and
``message`` of every refusal, the ``Allow`` of a 405, the violations Abacus lists (in
Tallystick's names: the ``error-body`` row), and the stored object. One server answers all
cases, in order; its store refuses writes only for the case that asks (an unreachable bucket
cannot be made here on demand).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from abacus_go_cases import CASES, PROBES, GoCase
from fixtures.api import Answer, SwitchableStore, serve_in_thread
from tallystick.storage.local import LocalStore

DOCS = Path(__file__).parents[2] / "docs" / "wire-contract.md"
ALL = {**CASES, **PROBES}

# Abacus's rule names (go-playground tags, its decoder's errors) -> Tallystick's (wire-contract.md "Error rules").
RULES = {
    "required": "required",
    "uuid4": "pattern",
    "gtefield": "order",
    "applicationId": "registered",
    "version": "pattern",
    "attributeName": "keyPattern",
    "attributeValue": "type",
    "unknownField": "unknownField",
}


def ours(key: str, rule: str, body: Any) -> tuple[str, str]:
    """An Abacus validation error as Tallystick names it: ``attributes[x]`` is ``attributes.x``; Go's
    ``required`` on an empty string (its zero value) or an empty attribute name is a pattern broken."""
    if rule == "required" and key.endswith("attributes[]"):
        rule = "attributeName"
    elif rule == "required" and isinstance(body, dict) and body.get(key) == "":
        rule = "version"  # any rule named ``pattern`` here
    return re.sub(r"attributes\[(.*)\]$", r"attributes.\1", key, flags=re.DOTALL), RULES[rule]


@dataclass
class Result:
    answer: Answer
    stored: dict[str, Any] | None  # the object stored under the case's session ID, if any


def _send(api: Any, case: GoCase) -> Answer:
    return api.request(case.method, case.path, case.body, case.headers)


def _stored(store: LocalStore, body: bytes | None) -> dict[str, Any] | None:
    try:
        session_id = json.loads(body or b"")["sessionId"]
    except (ValueError, KeyError, TypeError):
        return None
    keys = [info.key for info in store.list("") if isinstance(session_id, str) and session_id in info.key]
    if not keys:
        return None
    (key,) = keys
    tree: dict[str, Any] = json.loads(gzip.decompress(store.get(key)))
    return tree


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    """Every case sent once, in order, to one server with Abacus's compiled-in applications registered."""
    store = SwitchableStore(tmp_path_factory.mktemp("abacus-go") / "sessions")
    runner = serve_in_thread(store, applications=frozenset({"batect", "test-app", "smoke-test-app"}))
    api = next(runner)
    try:
        out = {}
        for name, case in ALL.items():
            if case.repeat_of is not None:
                assert _send(api, ALL[case.repeat_of]).status == 304  # already stored by that case
            store.failing = case.store_fails
            try:
                answer = _send(api, case)
            finally:
                store.failing = False
            out[name] = Result(answer, _stored(store, case.body))
        yield out
    finally:
        next(runner, None)


def documented() -> set[str]:
    section = DOCS.read_text(encoding="utf-8").split("## Differences from Abacus", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE))


@pytest.mark.parametrize("name", ALL)
def test_status_is_abacus_s_or_a_documented_difference(name: str, results: dict[str, Result]) -> None:
    """The status Abacus's Go test expects, or another one whose reason is a row of the docs table."""
    case, status = ALL[name], results[name].answer.status
    if status == case.abacus:
        assert case.difference is None, f"{name}: answers {status} as Abacus does, yet names {case.difference!r}"
        return
    assert case.difference is not None, f"{name} ({case.source}): Abacus {case.abacus}, Tallystick {status}"
    assert case.difference in documented(), f"{name}: {case.difference!r} is not a row of the docs table"


@pytest.mark.parametrize("name", ALL)
def test_answer_has_the_form_abacus_s_test_checks(name: str, results: dict[str, Result]) -> None:
    """Empty 201/304 bodies; every refusal JSON with a message; a 405's Allow; Abacus's violations, in our names,
    each message naming its field."""
    case, answer = ALL[name], results[name].answer
    if answer.status in (201, 304):
        assert answer.body == b"" and answer.headers.get("content-length", "0") == "0"
        return
    if case.method in ("GET", "HEAD") and answer.status in (200, 204):
        if case.path == "/ping" and case.method == "GET":
            assert answer.body == b"pong"  # ping_test.go: "returns 'pong' in the response body"
        return
    assert answer.headers["content-type"] == "application/json"
    problem = answer.json()
    assert isinstance(problem["message"], str) and problem["message"]
    if case.allow is not None and answer.status == 405:
        assert case.allow in [m.strip() for m in answer.headers["allow"].split(",")]
    for error in problem.get("validationErrors", ()):
        # Abacus's messages name the field ("sessionId is a required field"); so do ours, first (or the body).
        named = error["message"].startswith(error["key"]) if error["key"] else "body" in error["message"]
        assert named, error
    if case.errors and answer.status == 400:
        given = {(e["key"], e["type"]) for e in problem["validationErrors"]}
        sent = json.loads(case.body or b"null")
        wanted = {ours(key, rule, sent) for key, rule in case.errors}
        assert wanted <= given, f"{name}: Abacus lists {case.errors}; Tallystick {sorted(given)}"


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.stored is not None])
def test_stored_object_is_the_one_abacus_s_test_expects(name: str, results: dict[str, Result]) -> None:
    """The object holds what Abacus's test expects, with the server's ingestionTime.

    Abacus writes an event's or span's absent ``attributes`` as ``{}``; Tallystick leaves the
    event or span as sent (the ``stored-form`` row), which every reader takes as empty.
    """
    expected, got = CASES[name].stored, results[name].stored
    assert got is not None and expected is not None
    for item in got["events"] + got["spans"]:
        item.setdefault("attributes", {})
    ingestion = datetime.fromisoformat(got.pop("ingestionTime"))
    assert abs(ingestion - datetime.now(UTC)) < timedelta(minutes=10), "the server's clock, not the client's"
    assert got == expected


def test_refused_and_failed_requests_store_nothing(results: dict[str, Result]) -> None:
    """No case answered 4xx or 5xx left an object behind (Abacus's tests: "does not store any sessions")."""
    for name, result in results.items():
        if result.answer.status >= 400:
            assert result.stored is None, name


def test_every_go_test_file_is_covered() -> None:
    """The cases come from each Go test file the module docstring lists, in the numbers it says."""
    counts: dict[str, int] = {}
    for case in CASES.values():
        source = case.source.split(":", 1)[0].split(" ", 1)[0]
        counts[source] = counts.get(source, 0) + 1
    assert counts == {
        "server/api/ingest_test.go": 19,
        "server/types/session_test.go": 19,
        "server/validation/application_id_test.go": 5,
        "server/validation/attribute_name_test.go": 10,
        "server/validation/attribute_value_test.go": 13,
        "server/validation/version_test.go": 33,
        "server/storage/cloudstorage_integration_test.go": 2,
        "server/api/ping_test.go": 2,
        "server/api/home_test.go": 2,
        "server/cmd/application_journey_test.go": 1,
    }
