"""The consent fingerprint: what a tool collects, and what the user's "allowed" covers."""

from __future__ import annotations

import os
from pathlib import Path

from tallystick.client import _collection

V1 = {"attributes": {"projectSize": "Number of files."}, "events": {"UpdateNudgeShown": "A newer version."}}
V2 = {**V1, "attributes": {**V1["attributes"], "gitBranchCount": "Number of branches."}}


def _declared(version: dict[str, dict[str, str]]) -> dict[str, str]:
    declared = _collection.collection(version.get("attributes"), version.get("events"), version.get("spans"))
    assert declared is not None
    return declared


def test_the_fingerprint_lists_builtins_and_declared_items_sorted() -> None:
    """Every catalog item and every declared name is an item of the collection; the text is sorted and stable."""
    declared = _declared(V1)
    for name, _, _ in (*_collection.ENVIRONMENT_ATTRIBUTES, *_collection.CLIENT_ATTRIBUTES):
        assert f"attribute {name}" in declared
    assert "attribute projectSize" in declared and "event UpdateNudgeShown" in declared
    text = _collection.fingerprint(declared)
    assert text == _collection.fingerprint(reversed(list(declared)))
    assert text.decode().splitlines() == sorted(declared)
    assert _collection.collection(None, None, None) is None


def test_same_collection_covers_everything(tmp_path: Path) -> None:
    """After allowing, the same collection has nothing new and withholds nothing declared."""
    _collection.cover(str(tmp_path), _declared(V1))
    coverage, new = _collection.resolve(str(tmp_path), _declared(V1))
    assert new == {}
    assert coverage.attribute("projectSize") and coverage.attribute("osName") and coverage.attribute("telemetryMs")
    assert coverage.attribute("telemetryDropsExpired")  # a catalog prefix
    assert coverage.type("event", "UpdateNudgeShown") and coverage.type("event", "UnhandledException")
    assert not coverage.attribute("homeDirectory")  # never declared: not recorded when the tool declares


def test_a_new_attribute_is_new_and_withheld_until_covered(tmp_path: Path) -> None:
    """A version declaring a new attribute: it alone is new and withheld; allowing again covers it."""
    _collection.cover(str(tmp_path), _declared(V1))
    coverage, new = _collection.resolve(str(tmp_path), _declared(V2))
    assert new == {"attribute gitBranchCount": "Number of branches."}
    assert not coverage.attribute("gitBranchCount")
    assert coverage.attribute("projectSize")
    _collection.cover(str(tmp_path), None)  # `python -m tallystick.client allow`: the latest run's collection
    coverage, new = _collection.resolve(str(tmp_path), _declared(V2))
    assert new == {} and coverage.attribute("gitBranchCount")


def test_an_allowed_choice_from_an_older_client_covers_the_first_collection_it_meets(tmp_path: Path) -> None:
    """No consent-covers file yet: this run's collection is covered and recorded as covered."""
    coverage, new = _collection.resolve(str(tmp_path), _declared(V1))
    assert new == {} and coverage.attribute("projectSize")
    assert (tmp_path / _collection.COVERS_FILE).read_bytes() == _collection.fingerprint(_declared(V1))
    assert _collection.resolve(str(tmp_path), _declared(V2))[1] == {"attribute gitBranchCount": "Number of branches."}


def test_a_tool_that_declares_nothing_still_has_its_builtins_tracked(tmp_path: Path) -> None:
    """Without a declaration the tool's own names pass; a built-in the choice does not cover is withheld."""
    builtins = _collection.builtin_items()
    older = {k: v for k, v in builtins.items() if k != "attribute containerSystem"}
    (tmp_path / _collection.COVERS_FILE).write_bytes(_collection.fingerprint(older))
    coverage, new = _collection.resolve(str(tmp_path), None)
    assert list(new) == ["attribute containerSystem"]
    assert not coverage.attribute("containerSystem")
    assert coverage.attribute("anythingTheToolSets") and coverage.type("span", "LoadConfig")


def test_the_notice_lists_only_what_is_new_and_how_to_allow_it(tmp_path: Path) -> None:
    """The notice names each new item with its description, and the commands that allow or refuse."""
    text = _collection.notice(
        "mytool", "MYTOOL", {"attribute gitBranchCount": "Number of branches."}, "mytool telemetry"
    )
    assert "attribute gitBranchCount: Number of branches." in text
    assert "projectSize" not in text
    assert "`mytool telemetry allow`" in text and "MYTOOL_TELEMETRY=0" in text
    plain = _collection.notice("mytool", "MYTOOL", {"attribute gitBranchCount": "Number of branches."})
    assert "telemetry allow" not in plain and "`python -m tallystick.client allow --app mytool`" in plain
    one = _collection.notice_marker(str(tmp_path), _collection.fingerprint(_declared(V1)))
    two = _collection.notice_marker(str(tmp_path), _collection.fingerprint(_declared(V2)))
    assert one != two and os.path.dirname(one) == str(tmp_path)


def test_a_session_withholds_what_the_coverage_does_not_cover() -> None:
    """Withheld attributes, events and spans are not recorded but counted; covered ones are."""
    from tallystick.client._session import Session

    counts: dict[str, int] = {}

    def count(reason: str, n: int) -> None:
        counts[reason] = counts.get(reason, 0) + n

    session = Session(
        "mytool", "2.0.0", "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14", clock=lambda: 1.0e9, strict=False, count=count
    )
    session.coverage = _collection.Coverage({"attribute gitBranchCount", "event Checkout"}, None)
    session.set_attributes({"gitBranchCount": 4, "projectSize": 3})
    session.add_event("Checkout", {})
    session.add_event("UpdateNudgeShown", {})
    session.add_span("LoadConfig", 1.0e9, 1.0e9, {})
    tree = session.to_dict()
    assert tree["attributes"] == {"projectSize": 3}
    assert [e["type"] for e in tree["events"]] == ["UpdateNudgeShown"]  # type: ignore[attr-defined,index]
    assert len(tree["spans"]) == 1  # type: ignore[arg-type]
    assert counts == {"notConsented": 2}


def test_the_erasure_secret_is_made_once_per_user_id_and_forget_queues_one_request_each(tmp_path: Path) -> None:
    """One secret per user ID, read back after; forget queues a request for each and deletes the secrets."""
    import json

    from tallystick.client import _queue
    from tallystick.schema._rules import erasure_commitment

    user, other = "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14", "1b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14"
    first = _queue.commitment_for(str(tmp_path), user)
    assert first is not None and _queue.commitment_for(str(tmp_path), user) == first
    assert (tmp_path / _queue.SECRET_FILE).stat().st_mode & 0o077 == 0
    second = _queue.commitment_for(str(tmp_path), other)  # a new ID (telemetry disabled, allowed again)
    assert second not in (None, first)
    assert _queue.commitment_for(str(tmp_path), user) == first  # the old ID's secret is kept
    assert _queue.queue_erasure_requests(str(tmp_path), 1.0e9) == [user, other]
    assert not (tmp_path / _queue.SECRET_FILE).exists()
    waiting = _queue.erasures_waiting(str(tmp_path))
    assert len(waiting) == 2 and all(_queue.is_erasure_request(os.path.basename(p)) for p in waiting)
    requests = {json.loads(Path(p).read_bytes())["userId"]: json.loads(Path(p).read_bytes()) for p in waiting}
    assert erasure_commitment(user, requests[user]["secret"]) == first
    assert erasure_commitment(other, requests[other]["secret"]) == second
    assert _queue.sweep_erasures(str(tmp_path), 30 * 86400.0, 1.0e9 + 31 * 86400.0) == 2
    assert _queue.erasures_waiting(str(tmp_path)) == []
