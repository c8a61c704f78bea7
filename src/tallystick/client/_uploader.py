"""The uploader: sends what waits in the queue, from a daemon thread, never blocking the host.

See DESIGN.md beside this file: the steps, the races, and why each is harmless.
"""

# ruff: noqa: BLE001, S110, SIM105  (a failed upload only keeps the files for a later run)

from __future__ import annotations

import _thread
import time

from tallystick.schema._rules import MAX_BATCH_SESSIONS, MAX_BODY_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from tallystick.client._config import Config
    from tallystick.client._queue import Entry, Queue
    from tallystick.client._transport import Response

    Send = Callable[[str, str, bytes], Response]

# Only these mean "stored": a 200/202/204 may come from a captive portal or a proxy, not the server.
ACCEPTED = frozenset({201, 304})
# Only these mean "the server will never accept this session": it is moved aside. Any other
# 4xx (401, 403, 404 and 405 from a proxy, 408, ...) keeps the files, like a network error.
REJECTED = frozenset({400, 413, 415, 422})
# A batch answered so is sent again as one PUT per session (no batch endpoint, or one it refused).
NO_BATCH_STATUSES = frozenset({400, 404, 405, 413, 415, 422})
BACKOFF_STATUSES = frozenset({429, 503})
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 24 * 3600.0
BATCH_BYTES = MAX_BODY_BYTES - 64 * 1024

# How a pass goes on after one request.
GO_ON = "go on"
STOP = "stop"
NO_BATCHES = "no batches"


def parse_retry_after(value: str | None, now: float) -> float:
    """The time until which to wait, from a ``Retry-After`` header (seconds or an HTTP date)."""
    delay = DEFAULT_RETRY_AFTER
    if value:
        value = value.strip()
        if value.isdigit():
            delay = float(value)
        else:
            try:
                from email.utils import parsedate_to_datetime

                delay = parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError, IndexError, OverflowError):
                delay = DEFAULT_RETRY_AFTER
    return now + min(max(delay, 0.0), MAX_RETRY_AFTER)


class Uploader:
    """Uploads queued sessions in passes, one pass at a time, on a daemon thread."""

    def __init__(
        self,
        config: Config,
        queue: Queue,
        *,
        count: Callable[[str, int], None],
        log: Callable[[str], None],
        send: Send | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self._count = count
        self._log = log
        self._send = send
        # Re-entrant: a SIGTERM handler may call start/wait on the main thread while it holds the guard.
        self._guard = _thread.RLock()
        # Held while a pass runs, released by the upload thread. Never waited on without a timeout:
        # a signal handler must not block on a lock the thread it interrupted holds.
        self._idle = _thread.allocate_lock()
        self._running = False
        self._again = False
        self.stopped = False
        self.requests = 0

    # -- the host's side ---------------------------------------------------

    def start(self) -> None:
        """Run a pass in the background (or one more after the current one)."""
        with self._guard:
            if self.stopped:
                return
            if self._running:
                self._again = True
                return
            if not self._idle.acquire(blocking=False):
                return  # held with no pass running: only by ``wait``, which is about to stop the uploader
            self._running = True
        try:
            _thread.start_new_thread(self._main, ())
        except BaseException:
            with self._guard:
                self._running = False
                self._idle.release()
            raise

    @property
    def busy(self) -> bool:
        """Whether a pass is running."""
        return self._running

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the passes to end; then stop starting requests. Whether they ended."""
        ended = self._idle.acquire(timeout=max(timeout, 0.0))
        if ended:
            self._idle.release()
        with self._guard:
            self.stopped = True
        return ended

    # -- the thread's side -------------------------------------------------

    def _main(self) -> None:
        try:
            while True:
                try:
                    self.run_pass()
                except Exception as exc:
                    self._count("internalError", 1)
                    self._log(f"upload pass failed: {type(exc).__name__}: {exc}")
                with self._guard:
                    if not self._again or self.stopped:
                        self._running = False
                        self._idle.release()
                        return
                    self._again = False
        except BaseException:  # the interpreter is going away; nothing to tell anyone
            pass

    def run_pass(self) -> None:
        """Upload everything waiting, unless another process is at it or the server asked to wait."""
        from tallystick.client._lock import UploadLock

        lock = UploadLock(self.queue.lock_path)
        try:
            if not lock.acquire():
                self._log("another run is uploading this queue")
                return
        except OSError as exc:
            self._log(f"cannot lock the queue: {exc}")
            return
        try:
            now = self.config.clock()
            if self.queue.read_retry_after() > now:
                self._log("the server asked to wait before sending more")
                return
            self.queue.sweep()
            entries = self.queue.entries()
            batches = True
            while entries and not self.stopped:
                chunk, entries = self._take(entries, batches)
                if not chunk:
                    continue
                if len(chunk) > 1:
                    outcome = self._send_batch(chunk)
                    if outcome == NO_BATCHES:
                        batches = False
                        entries = [entry for entry, _, _ in chunk] + entries
                        continue
                else:
                    outcome = self._send_one(*chunk[0])
                if outcome == STOP:
                    return
        finally:
            lock.release()

    def _take(self, entries: list[Entry], batches: bool) -> tuple[list[tuple[Entry, bytes, str]], list[Entry]]:
        """Load the next sessions to send: up to a batch's worth, or one."""
        chunk: list[tuple[Entry, bytes, str]] = []
        size = 0
        limit = MAX_BATCH_SESSIONS if batches else 1
        rest = list(entries)
        while rest and len(chunk) < limit:
            entry = rest[0]
            if chunk and size + entry.size + 1 > BATCH_BYTES:
                break
            rest.pop(0)
            loaded = self.queue.load(entry, MAX_BODY_BYTES)
            if loaded is None:
                continue
            chunk.append((entry, *loaded))
            size += len(loaded[0]) + 1
        return chunk, rest

    def _request(self, method: str, path: str, body: bytes) -> Response | None:
        if self.stopped:
            return None
        url = self.config.server_url.rstrip("/") + path
        self.requests += 1
        try:
            if self._send is not None:
                return self._send(method, url, body)
            from tallystick.client import _transport

            return _transport.send(
                method,
                url,
                body,
                timeout=self.config.request_timeout,
                user_agent=f"tallystick-client {self.config.app_id}/{self.config.version}",
            )
        except Exception as exc:  # network trouble of any kind: keep the files for a later run
            self._log(f"{method} {path} failed: {type(exc).__name__}: {exc}")
            return None

    def _back_off(self, response: Response) -> None:
        until = parse_retry_after(response.headers.get("retry-after"), self.config.clock())
        self._log(f"server answered {response.status}: waiting until {time.ctime(until)}")
        try:
            self.queue.write_retry_after(until)
        except OSError:
            pass

    def _send_one(self, entry: Entry, body: bytes, session_id: str) -> str:
        response = self._request("PUT", "/v1/sessions", body)
        if response is None:
            return STOP
        status = response.status
        if status in ACCEPTED:
            self.queue.remove(entry)
            return GO_ON
        if status in BACKOFF_STATUSES:
            self._back_off(response)
            return STOP
        if status in REJECTED:
            self._log(f"server rejected session {session_id} ({status}): {response.body[:500]!r}")
            self.queue.reject(entry)
            return GO_ON
        self._log(f"server answered {status}: keeping the queue for a later run")
        return STOP

    def _send_batch(self, chunk: list[tuple[Entry, bytes, str]]) -> str:
        body = b'{"sessions":[' + b",".join(data for _, data, _ in chunk) + b"]}"
        response = self._request("POST", "/v1/batches", body)
        if response is None:
            return STOP
        status = response.status
        if status in BACKOFF_STATUSES:
            self._back_off(response)
            return STOP
        if status in NO_BATCH_STATUSES:
            self._log(f"batch answered {status}: sending sessions one by one")
            return NO_BATCHES
        if status != 200:
            self._log(f"batch answered {status}: keeping the queue for a later run")
            return STOP
        by_id = _batch_results(response.body)
        if by_id is None:  # not the ingest API answering (a captive portal, a proxy): keep everything
            self._log("batch answer unreadable: keeping the queue for a later run")
            return STOP
        for entry, _, session_id in chunk:
            result = by_id.get(session_id)
            if result in ACCEPTED:
                self.queue.remove(entry)
            elif result in REJECTED:
                self._log(f"server rejected session {session_id} ({result})")
                self.queue.reject(entry)
        return GO_ON


def _batch_results(body: bytes) -> dict[str, int] | None:
    """Each session's status from a batch answer, or None if the body is not one."""
    import json

    try:
        results = json.loads(body)["results"]
        by_id = {r["sessionId"]: r["status"] for r in results}
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        return None
    if not all(isinstance(k, str) and type(v) is int for k, v in by_id.items()):
        return None
    return by_id
