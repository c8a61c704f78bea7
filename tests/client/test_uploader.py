"""The uploader against real local servers: what each answer does to the queue."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tallystick.client import _queue
from tallystick.client._config import Config
from tallystick.client._queue import Queue, file_name
from tallystick.client._session import new_uuid4
from tallystick.client._uploader import Uploader, parse_retry_after

NOW = 2_000_000_000.0


def setup(tmp_path: Path, url: str, sessions: int) -> tuple[Uploader, Queue, dict[str, int], list[str]]:
    counts: dict[str, int] = {}

    def count(reason: str, n: int) -> None:
        counts[reason] = counts.get(reason, 0) + n

    config = Config("mytool", "1.0.0", url, data_dir=tmp_path, clock=lambda: NOW, request_timeout=5)
    queue = Queue(
        str(tmp_path), max_files=1000, max_bytes=10**8, max_age_seconds=30 * 86400, clock=config.clock, count=count
    )
    ids = []
    for i in range(sessions):
        session_id = new_uuid4()
        ids.append(session_id)
        queue.put(file_name(NOW - 100 + i, session_id), json.dumps({"sessionId": session_id}).encode())
    return Uploader(config, queue, count=count, log=lambda _m: None), queue, counts, ids


def test_one_session_is_put_and_deleted(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A single waiting session goes by PUT and its file is deleted after 201."""
    server = fake_ingest()
    uploader, queue, _, ids = setup(tmp_path, server.url, 1)
    uploader.run_pass()
    assert server.requests == [("PUT", "/v1/sessions", 1)]
    assert server.received == ids
    assert queue.entries() == []


def test_several_sessions_go_in_one_batch(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """Several waiting sessions go in one batch request, oldest first, all deleted."""
    server = fake_ingest()
    uploader, queue, _, ids = setup(tmp_path, server.url, 5)
    uploader.run_pass()
    assert server.requests == [("POST", "/v1/batches", 5)]
    assert server.received == ids
    assert queue.entries() == []


def test_batches_are_cut_at_the_contract_limit(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """More than 100 waiting sessions go in batches of at most 100."""
    server = fake_ingest()
    uploader, _, _, ids = setup(tmp_path, server.url, 130)
    uploader.run_pass()
    assert [n for _, _, n in server.requests] == [100, 30]
    assert sorted(server.received) == sorted(ids)


def test_without_batch_endpoint_it_falls_back_to_puts(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A 404 for the batch endpoint makes the pass send one PUT per session."""
    server = fake_ingest(batches=False)
    uploader, queue, _, ids = setup(tmp_path, server.url, 3)
    uploader.run_pass()
    assert [r[:2] for r in server.requests] == [("POST", "/v1/batches")] + [("PUT", "/v1/sessions")] * 3
    assert server.received == ids
    assert queue.entries() == []


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_stored_and_honoured(tmp_path: Path, fake_ingest, status: int) -> None:  # type: ignore[no-untyped-def]
    """429/503 keep the files, put Retry-After in the shared schedule, and no attempt starts until then."""
    server = fake_ingest(status=status, headers={"Retry-After": "120"})
    uploader, queue, _, _ = setup(tmp_path, server.url, 1)
    assert uploader.attempt() == f"http{status}"
    state = _queue.read_state(str(tmp_path))
    assert (state.next, state.failures, state.outcome) == (NOW + 120, 0, f"http{status}")
    assert uploader.attempt() == "skipped"
    assert len(server.requests) == 1
    assert len(queue.entries()) == 1


@pytest.mark.parametrize("status", [400, 413, 415, 422])
def test_client_errors_move_the_file_aside_for_good(tmp_path: Path, fake_ingest, status: int) -> None:  # type: ignore[no-untyped-def]
    """400/413/415/422 move the session to rejected/, count it, and it is never sent again."""
    server = fake_ingest(status=status)
    uploader, queue, counts, _ = setup(tmp_path, server.url, 1)
    uploader.run_pass()
    uploader.run_pass()
    assert len(server.requests) == 1
    assert queue.entries() == []
    (kept,) = Path(queue.rejected_directory).glob("*.json")
    assert Path(f"{kept}.answer").read_bytes() == b'{"message": "scripted answer"}', (
        "the server's answer kept beside it"
    )
    assert counts == {"rejected": 1}


def _rejected(queue: Queue) -> list[str]:
    directory = Path(queue.rejected_directory)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("status", [200, 202, 204, 301, 401, 403, 404, 405, 408, 418])
def test_answers_that_are_not_the_servers_verdict_keep_the_file(tmp_path: Path, fake_ingest, status: int) -> None:  # type: ignore[no-untyped-def]
    """A PUT answered by anything but 201/304 or a permanent 4xx (400/413/415/422) keeps the file."""
    server = fake_ingest(status=status)
    uploader, queue, counts, _ = setup(tmp_path, server.url, 1)
    uploader.run_pass()
    assert server.requests == [("PUT", "/v1/sessions", 1)]
    assert len(queue.entries()) == 1
    assert _rejected(queue) == [] and counts == {}


@pytest.mark.parametrize("status", [200, 401, 403, 404, 405, 408])
def test_a_captive_portal_or_proxy_never_costs_the_queue(tmp_path: Path, status: int) -> None:
    """A portal answering every request with ``status`` and an HTML page: all 30 sessions stay queued."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Portal(BaseHTTPRequestHandler):
        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            page = b"<html>Hotel wifi: please log in</html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_PUT = do_POST = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    portal = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    Thread(target=portal.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        uploader, queue, counts, _ = setup(tmp_path, f"http://127.0.0.1:{portal.server_address[1]}", 30)
        uploader.run_pass()
    finally:
        portal.shutdown()
        portal.server_close()
    assert len(queue.entries()) == 30
    assert _rejected(queue) == [] and counts == {}
    assert uploader.requests <= 2  # the batch, and at most one PUT after a 404/405 on it


def test_per_session_rejections_in_a_batch(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """In a batch answer, 201/304 delete, 400 moves aside, anything else keeps the file."""
    server = fake_ingest()
    uploader, queue, counts, ids = setup(tmp_path, server.url, 3)

    def answer(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        results = [
            {"sessionId": ids[0], "status": 201},
            {"sessionId": ids[1], "status": 400},
            {"sessionId": ids[2], "status": 500},
        ]
        return 200, {}, json.dumps({"results": results}).encode()

    server._answer = answer
    uploader.run_pass()
    assert [json.loads(Path(e.path).read_text())["sessionId"] for e in queue.entries()] == [ids[2]]
    assert counts == {"rejected": 1}


def test_per_session_results_other_than_stored_or_refused_keep_the_file(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """In a batch answer only 201/304 delete and only 400/413/415/422 move aside; 200, 202, 404 keep the file."""
    server = fake_ingest()
    uploader, queue, counts, ids = setup(tmp_path, server.url, 5)
    statuses = [304, 200, 202, 404, 422]

    def answer(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        results = [{"sessionId": i, "status": s} for i, s in zip(ids, statuses, strict=True)]
        return 200, {}, json.dumps({"results": results}).encode()

    server._answer = answer
    uploader.run_pass()
    assert [json.loads(Path(e.path).read_text())["sessionId"] for e in queue.entries()] == ids[1:4]
    assert counts == {"rejected": 1}


@pytest.mark.parametrize(
    "body", [b"<html>log in</html>", b'{"results": "x"}', b'{"results": [{"sessionId": 1}]}', b"\xff"]
)
def test_an_unreadable_batch_answer_keeps_everything(tmp_path: Path, fake_ingest, body: bytes) -> None:  # type: ignore[no-untyped-def]
    """A 200 to a batch whose body is not batch results keeps every file and ends the pass."""
    server = fake_ingest()
    uploader, queue, counts, _ = setup(tmp_path, server.url, 3)
    server._answer = lambda method, path, data: (200, {}, body)
    uploader.run_pass()
    assert uploader.requests == 1
    assert len(queue.entries()) == 3
    assert counts == {}


def test_server_errors_keep_everything_and_stop(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A 500 keeps the files and ends the pass after one request."""
    server = fake_ingest(status=500)
    uploader, queue, _, _ = setup(tmp_path, server.url, 3)
    uploader.run_pass()
    assert len(server.requests) == 1
    assert len(queue.entries()) == 3


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9", "http://unresolvable-host.invalid"], ids=["refused", "unresolvable"]
)
def test_network_errors_keep_everything(tmp_path: Path, url: str) -> None:
    """Connection refused or an unresolvable host keeps the files for a later run."""
    uploader, queue, counts, _ = setup(tmp_path, url, 2)
    uploader.run_pass()
    assert len(queue.entries()) == 2
    assert counts == {}


def test_a_pass_is_skipped_while_another_process_holds_the_lock(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """If the queue's lock is held, the attempt sends nothing and leaves the schedule alone."""
    from tallystick.client._lock import UploadLock

    server = fake_ingest()
    uploader, queue, _, _ = setup(tmp_path, server.url, 2)
    held = UploadLock(queue.lock_path)
    assert held.acquire()
    try:
        assert uploader.attempt() == "skipped"
    finally:
        held.release()
    assert server.requests == []
    assert not Path(_queue.state_path(str(tmp_path))).exists()


def test_failed_attempts_back_off_doubling(tmp_path: Path) -> None:
    """A refused connection is one attempt; the next is not due before the back-off, which doubles."""
    uploader, queue, _, _ = setup(tmp_path, "http://127.0.0.1:9", 2)
    assert uploader.attempt() == "refused"
    assert uploader.attempt() == "skipped"
    state = _queue.read_state(str(tmp_path))
    assert (state.next, state.failures, state.outcome) == (NOW + 60, 1, "refused")
    _queue.write_state(str(tmp_path), _queue.UploadState(0, 1, "refused"))  # the back-off has passed
    assert uploader.attempt() == "refused"
    assert _queue.read_state(str(tmp_path)).next == NOW + 120
    assert [_queue.backoff(n) for n in (1, 2, 3, 30, 100)] == [60, 120, 240, 86400, 86400]
    assert len(queue.entries()) == 2


def test_a_success_pauses_for_the_interval_except_on_ci(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """After a success the next attempt waits upload_interval; on CI it does not."""
    server = fake_ingest()
    uploader, queue, _, _ = setup(tmp_path, server.url, 1)
    assert uploader.attempt() == "sent"
    assert _queue.read_state(str(tmp_path)).next == NOW + uploader.config.upload_interval
    queue.put(file_name(NOW, new_uuid4()), json.dumps({"sessionId": new_uuid4()}).encode())
    assert uploader.attempt() == "skipped"
    uploader.ci = True
    assert uploader.attempt() == "sent"
    assert len(server.requests) == 2 and queue.entries() == []


def test_an_attempt_that_died_is_not_retried_before_its_back_off(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A claim left by a killed upload process counts as a failure: even CI waits for its back-off."""
    server = fake_ingest()
    uploader, _, _, _ = setup(tmp_path, server.url, 1)
    _queue.write_state(str(tmp_path), _queue.UploadState(NOW + 60, 0, _queue.ATTEMPT))
    uploader.ci = True
    assert uploader.attempt() == "skipped"
    assert server.requests == []


def test_waiting_on_a_silent_server_is_bounded(tmp_path: Path, black_hole) -> None:  # type: ignore[no-untyped-def]
    """wait() returns after its timeout while a request hangs, and no new request starts after."""
    uploader, queue, _, _ = setup(tmp_path, black_hole.url, 3)
    uploader.start()
    began = time.monotonic()
    assert not uploader.wait(0.05)
    assert time.monotonic() - began < 0.5
    assert uploader.stopped
    assert len(queue.entries()) == 3


def test_parse_retry_after() -> None:
    """Retry-After in seconds or as an HTTP date; missing or garbage means a minute; capped at a day."""
    assert parse_retry_after("30", 1000.0) == 1030.0
    assert parse_retry_after(None, 1000.0) == 1060.0
    assert parse_retry_after("soon", 1000.0) == 1060.0
    assert parse_retry_after("999999999", 1000.0) == 1000.0 + 86400
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0 - 10) == 1445412480.0


def test_split_url() -> None:
    """URLs split into scheme, host, port and path, IPv6 literals included; other schemes are refused."""
    from tallystick.client._transport import ProtocolError, split_url

    assert split_url("https://t.example.org") == ("https", "t.example.org", 443, "/")
    assert split_url("http://127.0.0.1:8080/base/v1/sessions") == ("http", "127.0.0.1", 8080, "/base/v1/sessions")
    assert split_url("http://[::1]:9/v1") == ("http", "::1", 9, "/v1")
    with pytest.raises(ProtocolError):
        split_url("ftp://example.org")


def test_chunked_and_unframed_answers_are_read(tmp_path: Path) -> None:
    """Answers framed by chunks or by closing the connection are read whole."""
    import io

    from tallystick.client._transport import _read_response

    chunked = io.BytesIO(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert _read_response(chunked).body == b"hello world"
    unframed = io.BytesIO(b"HTTP/1.0 400 Bad\r\nRetry-After: 5\r\n\r\n{}")
    response = _read_response(unframed)
    assert (response.status, response.headers, response.body) == (400, {"retry-after": "5"}, b"{}")


def test_interim_answers_are_skipped_and_a_cut_chunked_page_is_kept() -> None:
    """A ``100 Continue`` sent unasked comes before the real answer; a chunked page cut short keeps its status."""
    import io

    from tallystick.client._transport import _read_response

    interim = io.BytesIO(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\n\r\n")
    assert _read_response(interim).status == 201
    cut = io.BytesIO(b"HTTP/1.1 413 Too Large\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n<html")
    response = _read_response(cut)
    assert (response.status, response.body) == (413, b"<html")


def test_a_wait_longer_than_any_written_means_the_clock_went_back(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A `next` more than a day (or the upload interval) ahead was written by a clock since set back: due now."""
    server = fake_ingest()
    uploader, queue, _, _ = setup(tmp_path, server.url, 1)
    _queue.write_state(str(tmp_path), _queue.UploadState(NOW + 20 * 3600, 3, "timeout"))  # a real back-off: respected
    assert uploader.attempt() == "skipped"
    _queue.write_state(str(tmp_path), _queue.UploadState(NOW + 3 * 86400, 3, "timeout"))
    assert uploader.attempt() == "sent" and queue.entries() == []
    uploader.config.upload_interval = 7 * 86400  # a tool that sends weekly: its pause is no skew
    _queue.write_state(str(tmp_path), _queue.UploadState(NOW + 5 * 86400, 0, "sent"))
    queue.put(file_name(NOW, new_uuid4()), json.dumps({"sessionId": new_uuid4()}).encode())
    assert uploader.attempt() == "skipped"


def test_a_handed_session_whose_file_vanishes_after_listing_is_sent_from_memory(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """On CI the upload process holds its run's session in memory: if the machine wipes the queue between the
    pass's listing and the reading of that file, the session is sent all the same (it was lost 1 time in 8)."""
    server = fake_ingest()
    plain, queue, _, ids = setup(tmp_path, server.url, 1)
    (entry,) = queue.entries()
    handed = (entry.name, Path(entry.path).read_bytes())
    uploader = Uploader(plain.config, queue, count=lambda _r, _n: None, log=lambda _m: None, ci=True, extra=handed)
    listed = queue.entries

    def listed_then_wiped(*args, **kwargs):  # type: ignore[no-untyped-def]
        entries = listed(*args, **kwargs)
        for e in entries:
            Path(e.path).unlink(missing_ok=True)
        return entries

    queue.entries = listed_then_wiped  # type: ignore[method-assign]
    assert uploader.attempt() == "sent"
    assert server.received == ids
