"""A bounded fuzz run judged by what the answers say and what is stored, not only by the status code.

Real sessions with one field replaced by anything (or removed) go to a real server on
127.0.0.1, one by one and in batches. The schema's own validator, run here on the same
JSON, is the referee: what it accepts must be stored (201), what it refuses must get a 400
whose JSON body names, for every violation the validator finds, the same field path and
rule, with a message. Afterwards every stored object must be a valid session that was
answered 201, and nothing else is stored.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.api import serve_in_thread
from server.test_fuzz import mutated_sessions
from tallystick.schema import InvalidSession, decode_json, parse_session, validation_errors
from tallystick.storage.local import LocalStore

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=os.environ.get("CI") == "true"
)


# Values at the contract's edges: lengths, counts, numbers, times and characters.
hostile_values = st.sampled_from(
    [
        "x" * 65,
        "a" * 70_000,
        "",
        2**63,
        2**64,
        -(2**63) - 1,
        1e308,
        -0.0,
        "2026-05-01T10:00:60Z",
        "2026-02-30T10:00:00Z",
        "2026-05-01T10:00:00+24:00",
        "2026-05-01 10:00:00Z",
        "2026-05-01T10:00:00",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999999999Z",
        "\ud800",
        "nul\u0000byte",
        "0B8F6A6E-3C1D-4E7A-9A51-2F0C5D8E9B14",
        "0b8f6a6e-3c1d-1e7a-9a51-2f0c5d8e9b14",
        {f"k{i}": i for i in range(201)},
        {"bad key": 1, "\u00e9": 2, "a" * 65: 3},
        [{"type": "E", "time": "2026-05-01T10:00:00Z"}] * 2001,
        [{"type": "S", "startTime": "2026-05-01T10:00:01Z", "endTime": "2026-05-01T10:00:00Z"}],
        {"nested": {"deeper": [1, 2]}},
    ]
) | st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


def _violations(text: bytes) -> set[tuple[str, str]]:
    """(key, rule) of every violation the schema's validator finds in ``text``, plus an unregistered application's."""
    try:
        tree = decode_json(text)
    except InvalidSession as exc:  # not JSON the contract allows (Infinity): one error for the body
        return {(e.key, e.type) for e in exc.errors}
    found = {(e.key, e.type) for e in validation_errors(tree)}
    if isinstance(tree, dict) and isinstance(tree.get("applicationId"), str) and tree["applicationId"] != "demo":
        found.add(("applicationId", "unregistered"))
    return found


def _check_refusal(answer: dict[str, Any], expected: set[tuple[str, str]], *, in_batch: bool = False) -> None:
    """A 400's body (a batch's result has no message of its own): every violation by path and rule, with a message."""
    errors = answer["validationErrors"]
    assert in_batch or (isinstance(answer.get("message"), str) and answer["message"]), answer
    assert errors and all(isinstance(e.get("message"), str) and e["message"] for e in errors), answer
    named = {(e["key"], e["type"]) for e in errors}
    missing = {v for v in expected if v not in named and v[1] != "unregistered"}
    assert not missing, (missing, errors)


def test_every_answer_names_the_field_and_rule_and_only_valid_sessions_are_stored(tmp_path: Path) -> None:
    """Mutated sessions, single and in batches: answers agree with the validator; the store holds exactly the 201s."""
    accepted: set[str] = set()
    served = serve_in_thread(LocalStore(tmp_path / "sessions", fsync=False))
    api = next(served)
    try:

        @FUZZ
        @given(
            sessions=st.lists(mutated_sessions() | mutated_sessions(hostile_values), min_size=1, max_size=3),
            batch=st.booleans(),
        )
        def send(sessions: list[dict[str, Any]], batch: bool) -> None:
            texts = [json.dumps(tree).encode() for tree in sessions]
            if batch:
                whole = json.dumps({"sessions": sessions}).encode()
                answer = api.request("POST", "/v1/batches", whole, {"Content-Type": "application/json"})
                if ("", "json") in _violations(whole):
                    assert answer.status == 400, (answer.status, answer.body[:300])
                    _check_refusal(json.loads(answer.body), {("", "json")})
                    return
                assert answer.status == 200, (answer.status, answer.body[:300])
                results = json.loads(answer.body)["results"]
                outcomes = [(r["status"], r) for r in results]
            else:
                outcomes = []
                for text in texts:
                    answer = api.put(text)
                    outcomes.append((answer.status, json.loads(answer.body) if answer.body else {}))
            assert len(outcomes) == len(sessions)
            for tree, text, (status, body) in zip(sessions, texts, outcomes, strict=True):
                expected = _violations(text)
                if expected:
                    assert status == 400, (status, expected, tree)
                    _check_refusal(body, expected, in_batch=batch)
                else:
                    assert status in (201, 304), (status, body, tree)
                    if status == 201:
                        accepted.add(tree["sessionId"])

        send()
        api.store.settle()
        stored = {}
        for info in api.store.list("sessions/"):
            session = parse_session(gzip.decompress(api.store.get(info.key)))
            stored[session.session_id] = info.key
        assert set(stored) == accepted
    finally:
        served.close()
