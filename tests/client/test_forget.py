"""`forget` on the client: an erasure request that waits while offline and goes before any session."""

from __future__ import annotations


def test_an_offline_erasure_waits_and_goes_before_any_session(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """`forget` offline: the request waits through runs, then is the first request once the server answers."""
    offline = {"MYTOOL_TELEMETRY_URL": "http://127.0.0.1:9", "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "20"}
    tool.allow()
    assert tool.run("hello", "Ada", env=offline).returncode == 0
    old_user = (tool.data_dir / "user-id").read_text().strip()
    assert tool.run("telemetry", "forget", env=offline).returncode == 0
    assert tool.queued() == []
    for _ in range(2):
        (tool.data_dir / "upload-state").unlink(missing_ok=True)  # each time the back-off is over
        assert tool.run("hello", "Bob", env=offline).returncode == 0
    assert len(list((tool.data_dir / "erasures").glob("*.json"))) == 1, "kept while offline"
    assert len(tool.queued()) == 2

    server = fake_ingest()
    (tool.data_dir / "upload-state").unlink(missing_ok=True)
    online = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "20"}
    assert tool.run("hello", "Cy", env=online).returncode == 0
    assert server.requests[0][:2] == ("POST", "/v1/erasures")
    assert server.bodies[0]["userId"] == old_user and len(server.bodies[0]["secret"]) == 64
    assert [r[1] for r in server.requests[1:]] and all(r[1] != "/v1/erasures" for r in server.requests[1:])
    assert list((tool.data_dir / "erasures").glob("*.json")) == []
    assert tool.queued() == []
    assert old_user not in {b.get("userId") for b in server.bodies[1:] if isinstance(b, dict) and "userId" in b}


def test_a_waiting_erasure_goes_even_when_telemetry_is_off(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """With DO_NOT_TRACK=1 (the cheap "off" start) a waiting erasure request is still sent: whatever the consent."""
    offline = {"MYTOOL_TELEMETRY_URL": "http://127.0.0.1:9", "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "20"}
    tool.allow()
    assert tool.run("hello", "Ada", env=offline).returncode == 0
    assert tool.run("telemetry", "forget", env=offline).returncode == 0
    assert len(list((tool.data_dir / "erasures").glob("*.json"))) == 1
    server = fake_ingest()
    (tool.data_dir / "upload-state").unlink(missing_ok=True)
    off = {"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "20", "DO_NOT_TRACK": "1"}
    assert tool.run("hello", "Bob", env=off).returncode == 0
    assert [r[:2] for r in server.requests] == [("POST", "/v1/erasures")], "the request, and no session"
    assert list((tool.data_dir / "erasures").glob("*.json")) == []
