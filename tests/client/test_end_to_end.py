"""End to end with real processes: the example tool against the real ingest server."""

from __future__ import annotations

from collections import Counter

from fixtures.common import wait_until


def test_every_session_arrives_exactly_once(tool, ingest_server) -> None:  # type: ignore[no-untyped-def]
    """N runs of the tool: every session is stored once, each run uploading what the earlier ones queued."""
    server = ingest_server(apps=["mytool"])
    tool.allow()
    env = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "5"}
    for i in range(6):
        result = tool.run("hello", f"user{i}", env=env)
        assert result.returncode == 0 and result.stdout == f"Hello, user{i}!\n" and result.stderr == ""
    # Each run uploads what the earlier ones queued (if its upload thread starts late, its own too).
    waiting = tool.queued_ids()
    tool.run("hello", "final", env=env)
    wait_until(lambda: waiting <= set(server.stored_session_ids()), timeout=15, what="the waiting sessions stored")
    stored = Counter(server.stored_session_ids())
    assert len(set(stored) | tool.queued_ids()) == 7, "seven runs, seven sessions"
    assert len(tool.queued_ids()) <= 1
    assert set(stored.values()) == {1}


def test_sessions_wait_while_the_server_is_down(tool, ingest_server) -> None:  # type: ignore[no-untyped-def]
    """With the server down sessions stay queued; after it is back a later run delivers them."""
    server = ingest_server(apps=["mytool"])
    tool.allow()
    env = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "5"}
    server.stop()
    for i in range(3):
        result = tool.run("hello", f"offline{i}", env=env)
        assert result.returncode == 0 and result.stderr == ""
    waiting = tool.queued_ids()
    assert len(waiting) == 3
    assert (tool.data_dir / "upload-state").read_text().split()[1:] == ["1", "refused"], "one attempt, backing off"
    server.start()
    (tool.data_dir / "upload-state").unlink()  # the back-off period has passed
    tool.run("hello", "online", env=env)
    wait_until(lambda: waiting <= set(server.stored_session_ids()), timeout=15, what="queued sessions stored")
    assert not waiting & tool.queued_ids()
    assert Counter(server.stored_session_ids()).most_common(1)[0][1] == 1


def test_the_real_server_accepts_what_the_client_sends(tool, ingest_server) -> None:  # type: ignore[no-untyped-def]
    """Sessions with events, spans, an error and the client's own attributes are all accepted (none rejected)."""
    server = ingest_server(apps=["mytool"])
    tool.allow()
    env = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "5"}
    tool.run("hello", "a", "--json", env=env)
    tool.run("fail", env=env)
    tool.run("crash", env=env)
    queued = tool.queued_ids()
    tool.run("hello", "b", env=env)
    wait_until(lambda: queued <= set(server.stored_session_ids()), timeout=15, what="sessions stored")
    assert not (tool.data_dir / "rejected").exists()
