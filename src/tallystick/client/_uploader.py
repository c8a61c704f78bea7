"""The uploader: sends what waits in the queue, in the upload process (or, where none can start, a thread).

See DESIGN.md beside this file: the steps, the races, and why each is harmless.
"""

# ruff: noqa: BLE001, S110  (a failed upload only keeps the files for a later run)

from __future__ import annotations

import _thread
import os
import time

from tallystick.client import _queue
from tallystick.schema._rules import MAX_BATCH_SESSIONS, MAX_BODY_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from tallystick.client._bodylimit import BodyLimit
    from tallystick.client._config import Config
    from tallystick.client._queue import Entry, Queue
    from tallystick.client._transport import Response

    Send = Callable[[str, str, bytes], Response]

# Only these mean "stored": a 200/202/204 may come from a captive portal or a proxy, not the server.
ACCEPTED = frozenset({201, 304})
# Only these mean "the server will never accept this session": it is moved aside, if the answer is
# the ingest API's (a JSON object with a message). Any other 4xx (401, 403, 404 and 405 from a
# proxy, 408, ...) keeps the files, like a network error.
REJECTED = frozenset({400, 413, 415, 422})
# A 413 that is not the ingest API's: a proxy in front of it with a smaller body limit. The session
# is held (``Queue.hold``) and tried again this much later, while the others go on.
HOLD_SECONDS = 24 * 3600.0
# Followed once, with the same method and body, to the same host over the same scheme or from http
# to https (``_transport.redirect_target``). 303 means "GET the result elsewhere": not for an upload.
REDIRECTS = frozenset({301, 302, 307, 308})
# A batch answered so is sent again as one PUT per session (no batch endpoint, or one it refused). A batch
# answered 413 is sent again in halves instead (``_bodylimit``).
NO_BATCH_STATUSES = frozenset({400, 404, 405, 415, 422})
BACKOFF_STATUSES = frozenset({429, 503})
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 24 * 3600.0
BATCH_BYTES = MAX_BODY_BYTES - 64 * 1024
BATCH_OVERHEAD = len(b'{"sessions":[]}')

# How a pass goes on after one request.
GO_ON = "go on"
STOP = "stop"
NO_BATCHES = "no batches"
SPLIT = "split"  # the batch was too large for something on the way: its sessions go again, in smaller batches
CUT = "cut"  # the connection closed with no answer: a proxy refusing the size, or the network (``_send_all``)
# Attempts in one upload process: after a round that sent everything, sessions queued meanwhile go too.
MAX_ROUNDS = 5
LOCK_POLL = 0.02


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
    """Uploads queued sessions in attempts: each under ``upload.lock``, each allowed by the shared schedule.

    ``extra``: a session handed over by the run that started this upload process
    (on CI): sent from memory, whether its file is listed (the file may vanish before it is
    read) or not because the queue directory is gone or read-only.
    """

    def __init__(
        self,
        config: Config,
        queue: Queue,
        *,
        count: Callable[[str, int], None],
        log: Callable[[str], None],
        send: Send | None = None,
        ci: bool = False,
        extra: tuple[str, bytes] | None = None,
        allowed: Callable[[], bool] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self._count = count
        self._log = log
        self._send = send
        self.ci = ci  # sends at every run's exit: the interval after a success does not apply
        self.extra = extra
        self._allowed = allowed  # checked before each request: consent withdrawn meanwhile stops the upload
        self._deadline = deadline  # time.monotonic() after which no request starts
        self._context: ssl.SSLContext | None = None
        self._handed: dict[str, bytes] = {}
        # Re-entrant: a SIGTERM handler may call start/wait on the main thread while it holds the guard.
        self._guard = _thread.RLock()
        # Held while a pass runs, released by the upload thread. Never waited on without a timeout:
        # a signal handler must not block on a lock the thread it interrupted holds.
        self._idle = _thread.allocate_lock()
        self._running = False
        self.stopped = False
        self.requests = 0
        self.outcome = _queue.SENT  # how the last pass ended: sent, or why it stopped
        self.retry_until: float | None = None  # set by a 429/503
        self._base = config.server_url.rstrip("/")  # where a followed redirect said the API now is
        self._redirect_said = False
        self._limit: BodyLimit | None = None  # the body size a proxy lets through, as learned (``_bodylimit``)
        self._cut = False  # the last request failed because the connection closed with no answer
        self._settled: set[str] = set()  # sessions of this pass stored, set aside or held: never sent again
        self._through = -1  # the largest body of this pass that got an answer other than 413
        self._heard = False  # whether any request of this pass got an answer

    # -- the thread fallback (no upload process on this platform) ---------------

    def start(self) -> None:
        """Run an attempt on a daemon thread (only where no upload process can be started)."""
        with self._guard:
            if self.stopped or self._running:
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
        """Wait up to ``timeout`` s for the attempt to end; then stop starting requests. Whether it ended."""
        ended = self._idle.acquire(timeout=max(timeout, 0.0))
        if ended:
            self._idle.release()
        with self._guard:
            self.stopped = True
        return ended

    def _main(self) -> None:
        try:
            try:
                self.run()
            except Exception as exc:
                self._count("internalError", 1)
                self._log(f"upload failed: {type(exc).__name__}: {exc}")
            with self._guard:
                self._running = False
                self._idle.release()
        except BaseException:  # the interpreter is going away; nothing to tell anyone
            pass

    # -- attempts ------------------------------------------------------------------

    def run(self, lock_wait: float = 0.0) -> str:
        """Attempt uploads until the queue is empty, one fails, or the schedule says wait; the last outcome.

        ``lock_wait``: how long to wait for another process's attempt to end before
        giving up (the upload process on CI waits, so its own session gets its turn).
        """
        outcome = "skipped"
        seen: set[str] = set()
        for round_number in range(MAX_ROUNDS):
            seen.update(entry.name for entry in self.queue.entries())
            outcome = self.attempt(lock_wait if round_number == 0 else 0.0, continuing=round_number > 0)
            if outcome != _queue.SENT or self.stopped:
                break
            # Released: a run that found the lock held just before relied on us to look once more. Only
            # for files new since: one this pass sent but could not delete (a read-only queue) waits.
            if not {entry.name for entry in self.queue.entries()} - seen:
                break
        return outcome

    def attempt(self, lock_wait: float = 0.0, *, continuing: bool = False) -> str:
        """One attempt under ``upload.lock``, if the shared schedule allows one now; how it ended.

        ``skipped`` (locked by another process, or not due), ``sent`` (everything
        waiting was stored or set aside), or why it stopped (``timeout``, ``http503``, ...).
        """
        from tallystick.client._lock import UploadLock

        lock = UploadLock(self.queue.lock_path)
        deadline = time.monotonic() + lock_wait
        try:
            while not lock.acquire():
                if time.monotonic() >= deadline or self.stopped:
                    self._log("another run is uploading this queue")
                    return "skipped"
                time.sleep(LOCK_POLL)
        except OSError as exc:
            if self.extra is not None and not os.path.exists(os.path.join(self.queue.directory, self.extra[0])):
                # No lock file to be had and the handed session is not in the queue: the data directory
                # is gone (a CI machine wiped with its job) or read-only (a locked-down runner). Nothing
                # to share or schedule; send the session this process was handed, alone.
                self.run_pass(handed_only=True)
                return self.outcome
            self._log(f"cannot lock the queue: {exc}")
            return "skipped"
        try:
            data_dir = self.queue.data_dir
            now = self.config.clock()
            state = _queue.read_state(data_dir)
            if continuing and state.outcome != _queue.SENT:
                return "skipped"
            # A waiting erasure request is not held back by the pause after a success (back-offs apply).
            erasing = state.outcome == _queue.SENT and bool(_queue.erasures_waiting(data_dir))
            due = _queue.due(state, now, ci=self.ci, interval=self.config.upload_interval)
            if not continuing and not erasing and not due:
                self._log(f"not due before {time.ctime(state.next)} ({state.outcome or 'waiting'})")
                return "skipped"
            # Claimed as if it will fail: runs starting meanwhile see a back-off and start nothing.
            claim = _queue.UploadState(now + _queue.backoff(state.failures + 1), state.failures, _queue.ATTEMPT)
            self._write_state(claim)
            self.run_pass()
            now = self.config.clock()
            if self.outcome == _queue.SENT:
                after = _queue.UploadState(now + max(self.config.upload_interval, 0.0), 0, _queue.SENT)
            elif self.retry_until is not None:  # the server asked to wait: not a failure of ours
                after = _queue.UploadState(self.retry_until, state.failures, self.outcome)
            else:
                failures = state.failures + 1
                after = _queue.UploadState(now + _queue.backoff(failures), failures, self.outcome)
            self._write_state(after)
            return self.outcome
        finally:
            lock.release()

    def _write_state(self, state: _queue.UploadState) -> None:
        try:
            _queue.write_state(self.queue.data_dir, state)
        except OSError as exc:  # the data directory went away (or is read-only): the attempt goes on
            self._log(f"cannot write the upload state: {exc}")

    def run_pass(self, *, handed_only: bool = False) -> None:
        """Send everything waiting, oldest first; sets ``outcome`` (and ``retry_until``) when it stops early.

        ``handed_only``: send only the session this process was handed (no lock was to be had).
        """
        self.outcome, self.retry_until = _queue.SENT, None
        self._through, self._heard, self._settled = -1, False, set()
        if handed_only:
            entries = []
        else:
            self.queue.sweep()
            if self._send_erasures() == STOP:  # before any session: the server then refuses the old ones
                return
            entries = self.queue.entries()
            held = self.queue.entries(self.queue.held_directory, due_by=self.config.clock())
            if held:  # sessions a proxy refused as too large, due to be tried again (``Queue.hold``)
                entries = sorted(entries + held, key=lambda e: (e.time, e.name))
        directory = self.queue.directory
        if self.extra is not None:
            # Sent from memory even when its file is listed: a CI machine wiping the data directory
            # with its job may delete the file between this listing and its reading.
            name, body = self.extra
            self._handed[name] = body
            if handed_only or not os.path.isdir(directory) or not os.access(directory, os.W_OK):
                # The queue vanished (a CI machine cleaning up), or the host could not write to it (a
                # read-only queue on a locked-down runner): send the session we were handed.
                from tallystick.client._queue import Entry

                entries = [*entries, Entry(name, os.path.join(directory, name), len(body), 0.0)]
        if self._limit is None:
            from tallystick.client import _bodylimit

            route = _bodylimit.route(self._base, self.config.environ)
            self._limit = _bodylimit.BodyLimit(self.queue.data_dir, route, self.config.clock())
        self._send_all(entries)

    def _send_all(self, entries: list[Entry]) -> None:
        """Send ``entries`` in batches (or one by one), halving what is too large for the way to the server."""
        batches = True
        probe = False  # the next request is one session alone: is the way to the server open at all?
        suspect: tuple[list[Entry], int, str] | None = None  # cut off with no answer: its sessions, size, outcome
        while entries and not self.stopped:
            chunk, entries = self._take(entries, batches and not probe)
            if not chunk:
                continue
            probing, probe = probe, False
            size = _body_size(chunk)
            if len(chunk) > 1:
                outcome = self._send_batch(chunk)
                if outcome in (NO_BATCHES, SPLIT):  # SPLIT: ``_take`` now builds smaller ones
                    batches = batches and outcome == SPLIT and not self._at_floor(size)
                    entries = [entry for entry, _, _ in chunk] + entries
                    continue
            else:
                outcome = self._send_one(*chunk[0])
            if outcome == CUT:
                if probing:  # the one sent alone after a cut was cut off too: the network, not a size
                    return
                # Closed with no answer: a proxy refusing a body too large for it without saying so, or the
                # network. One session alone (the smallest) goes next and tells which.
                suspect = ([entry for entry, _, _ in chunk], size, self.outcome)
                self.outcome = _queue.SENT
                if len(chunk) > 1:
                    smallest = min(chunk, key=lambda item: len(item[1]))[0]
                    entries = [smallest, *(e for e, _, _ in chunk if e is not smallest), *entries]
                probe = True
                continue
            if outcome == STOP:
                return
            if suspect is not None:
                entries = self._settle_cut(suspect, last=False) + entries
                suspect = None
        if suspect is not None:  # cut off, and nothing left to send alone after it
            self._settle_cut(suspect, last=True)

    def _at_floor(self, size: int) -> bool:
        """Whether a refused batch of ``size`` bytes is within the learned limit: it cannot be halved below
        ``_bodylimit.SMALLEST``, so its sessions go one by one (a proxy refusing 1 KiB must not be asked forever)."""
        return self._limit is not None and self._limit.bytes is not None and self._limit.bytes >= size

    def _settle_cut(self, suspect: tuple[list[Entry], int, str], *, last: bool) -> list[Entry]:
        """After a request cut off with no answer, and the next one (if any) answered: the cut sessions to send again.

        Something answered in this pass (a 413 too), and the cut body is larger than any body that got
        an answer other than 413: too large for a proxy on the way. A batch goes again in halves; a
        session alone is held, as for a proxy's 413. Otherwise it was the network: the cut sessions
        go again, or, ``last`` (none left to tell by), the pass ends as it failed.
        """
        cut, size, outcome = suspect
        if not self._heard or size <= self._through:
            if last:
                self.outcome = outcome
                return []
            return [] if len(cut) > 1 else cut  # a batch's sessions are still in the list: sent again
        assert self._limit is not None
        limit = self._limit.refused(size, self.config.clock())
        if len(cut) > 1:
            self._log(
                f"a batch of {len(cut)} sessions ({size} bytes) was cut off with no answer while smaller requests "
                f"got one: sent again in batches of at most {limit} bytes (remembered for a day)"
            )
            return []
        self._hold(cut[0], size, "proxyClosed", "the connection closed with no answer, smaller requests got one")
        return []

    def _take(self, entries: list[Entry], batches: bool) -> tuple[list[tuple[Entry, bytes, str]], list[Entry]]:
        """Load the next sessions to send: up to a batch's worth (within the learned body limit), or one."""
        chunk: list[tuple[Entry, bytes, str]] = []
        size = 0
        limit = MAX_BATCH_SESSIONS if batches else 1
        cap = BATCH_BYTES
        if self._limit is not None and self._limit.bytes is not None:
            cap = min(cap, self._limit.bytes)
        rest = list(entries)
        while rest and len(chunk) < limit:
            entry = rest[0]
            if chunk and BATCH_OVERHEAD + size + entry.size > cap:
                break
            rest.pop(0)
            if entry.name in self._settled:
                continue
            loaded = self._load(entry)
            if loaded is None:
                continue
            chunk.append((entry, *loaded))
            size += len(loaded[0]) + 1
        return chunk, rest

    def _load(self, entry: Entry) -> tuple[bytes, str] | None:
        handed = self._handed.get(entry.name)
        if handed is not None:
            import json

            try:
                tree = json.loads(handed)
            except ValueError:
                return None
            session_id = tree.get("sessionId") if isinstance(tree, dict) else None
            return (handed, session_id) if isinstance(session_id, str) else None
        return self.queue.load(entry, MAX_BODY_BYTES)

    def _stop(self, outcome: str) -> str:
        self.outcome = outcome
        return STOP

    def _send_erasures(self) -> str:
        """Send each waiting erasure request (``_queue.py``); consent is not asked: an erasure records nothing."""
        data_dir = self.queue.data_dir
        dropped = _queue.sweep_erasures(data_dir, self.queue.max_age_seconds, self.config.clock())
        if dropped:
            self._count("erasureExpired", dropped)
        for path in _queue.erasures_waiting(data_dir):
            body = _queue.read_bytes(path, 4096)
            if body is None:
                continue
            response = self._request("POST", "/v1/erasures", body, consent=False)
            if response is None:
                return STOP
            status = response.status
            if status == 202:
                _queue.remove(path)
                self._log("erasure request accepted by the server")
            elif status in BACKOFF_STATUSES:
                return self._back_off(response)
            elif status in REJECTED and _from_the_api(response):
                _queue.remove(path)
                self._count("erasureRejected", 1)
                self._log(f"server refused the erasure request ({status}): {response.body[:300]!r}")
            elif status in (404, 405):  # a server without self-service erasure: it cannot be honoured there
                _queue.remove(path)
                self._count("erasureUnsupported", 1)
                self._log(f"erasure request answered {status}: this server does not offer self-service erasure")
            else:
                self._log(f"erasure request answered {status}: keeping it for a later run")
                return self._stop(_outcome(status))
        return GO_ON

    def _request(self, method: str, path: str, body: bytes, *, consent: bool = True) -> Response | None:
        if (
            self.stopped
            or (self._deadline is not None and time.monotonic() > self._deadline)
            or (consent and self._allowed is not None and not self._allowed())
        ):
            self.outcome = "stopped"
            return None
        url = self._base + path
        response = self._through_to(self._exchange(method, url, body, path), body)
        if response is None or response.status not in REDIRECTS:
            return response
        from tallystick.client._transport import redirect_target, shown_url

        target, refusal = redirect_target(url, response.headers.get("location", ""))
        if target is None:
            self._log(
                f"{method} {path} answered {response.status} (a redirect): not followed, {refusal}; "
                "set server_url to the URL that answers"
            )
            return response
        moved = target.endswith(path)
        if moved:  # the whole API moved: the rest of this process goes there directly
            self._base = target[: -len(path)]
        if not self._redirect_said:
            self._redirect_said = True
            self._log(
                f"{method} {path} answered {response.status}: followed once to {shown_url(target)}; set "
                f"server_url to {shown_url(self._base) if moved else 'the URL that answers'} to save a request"
            )
        followed = self._through_to(self._exchange(method, target, body, shown_url(target)), body)
        if followed is not None and followed.status in REDIRECTS:
            self._log(f"{method} {shown_url(target)} answered {followed.status} too: one redirect is followed at most")
        return followed

    def _through_to(self, response: Response | None, body: bytes) -> Response | None:
        """Note that an answer came, and whether a body of this size is not too large for the way (not a 413)."""
        self._heard = self._heard or response is not None
        if response is not None and response.status != 413:
            self._through = max(self._through, len(body))
        return response

    def _exchange(self, method: str, url: str, body: bytes, what: str) -> Response | None:
        """One request; None (with ``outcome`` set and a line naming ``what`` logged) when it failed on the way.

        ``_cut`` says whether it failed because the connection closed with no answer (``_transport.NoAnswer``).
        """
        self.requests += 1
        self._cut = False
        try:
            if self._send is not None:
                return self._send(method, url, body)
            from tallystick.client import _transport

            if self._context is None and url.startswith("https:"):
                self._context = _transport.tls_context(self.config.environ)
            return _transport.send(
                method,
                url,
                body,
                timeout=self.config.request_timeout,
                user_agent=f"tallystick-client {self.config.app_id}/{self.config.version}",
                environ=self.config.environ,
                context=self._context,
            )
        except Exception as exc:  # network trouble of any kind: keep the files for a later run
            from tallystick.client._transport import error_kind

            self.outcome = error_kind(exc)
            self._cut = type(exc).__name__ == "NoAnswer"
            # The type and the kind only: a message may name the proxy, whose URL can hold a password.
            self._log(f"{method} {what} failed: {type(exc).__name__} ({self.outcome})")
            return None

    def _back_off(self, response: Response) -> str:
        until = parse_retry_after(response.headers.get("retry-after"), self.config.clock())
        self._log(f"server answered {response.status}: waiting until {time.ctime(until)}")
        self.retry_until = until
        return self._stop(f"http{response.status}")

    def _hold(self, entry: Entry, size: int, reason: str, how: str) -> None:
        """Hold a session something in front of the server refused as too large (``Queue.hold``), and learn from it.

        ``reason``: what it is counted as when first held; ``how``: how it was refused, for the log.
        """
        now = self.config.clock()
        until = now + HOLD_SECONDS
        self.queue.hold(entry, until, reason)
        self._settled.add(entry.name)
        assert self._limit is not None
        limit = self._limit.refused(size, now)
        session_id = entry.name.partition("-")[2].removesuffix(_queue.SUFFIX)
        self._log(
            f"session {session_id} ({size} bytes) refused as too large by something in front of the server, not "
            f"by the server ({how}): held, tried again after {time.ctime(until)} until it is "
            f"{self.config.max_age_days:g} days old; batches kept to {limit} bytes for a day; the proxy must let "
            "bodies of 1 MiB through"
        )

    def _send_one(self, entry: Entry, body: bytes, session_id: str) -> str:
        response = self._request("PUT", "/v1/sessions", body)
        if response is None:
            return CUT if self._cut else STOP
        status = response.status
        if status in ACCEPTED:
            self.queue.remove(entry)
            self._settled.add(entry.name)
            assert self._limit is not None
            self._limit.accepted(len(body), self.config.clock())
            return GO_ON
        if status in BACKOFF_STATUSES:
            return self._back_off(response)
        if status in REJECTED and _from_the_api(response):
            self._log(f"server rejected session {session_id} ({status}): {response.body[:500]!r}")
            self.queue.reject(entry, response.body)
            self._settled.add(entry.name)
            return GO_ON
        if status == 413:  # not the ingest API's answer: a proxy in front of it with a smaller body limit
            self._hold(entry, len(body), "proxyTooLarge", "its 413")
            return GO_ON
        self._log(f"server answered {status}: keeping the queue for a later run")
        return self._stop(_outcome(status))

    def _send_batch(self, chunk: list[tuple[Entry, bytes, str]]) -> str:
        body = b'{"sessions":[' + b",".join(data for _, data, _ in chunk) + b"]}"
        response = self._request("POST", "/v1/batches", body)
        if response is None:
            return CUT if self._cut else STOP
        status = response.status
        if status in BACKOFF_STATUSES:
            return self._back_off(response)
        if status == 413:  # a proxy's body limit (or the server's for batches): the same sessions, in halves
            assert self._limit is not None
            limit = self._limit.refused(len(body), self.config.clock())
            self._log(
                f"a batch of {len(chunk)} sessions ({len(body)} bytes) was refused as too large (413"
                f"{'' if _from_the_api(response) else ', not by the server'}): sent again in batches of at most "
                f"{limit} bytes, remembered for a day; the proxy must let bodies of 1 MiB through"
            )
            return SPLIT
        if status in NO_BATCH_STATUSES:
            self._log(f"batch answered {status}: sending sessions one by one")
            return NO_BATCHES
        if status != 200:
            self._log(f"batch answered {status}: keeping the queue for a later run")
            return self._stop(_outcome(status))
        by_id = _batch_results(response.body)
        if by_id is None:  # not the ingest API answering (a captive portal, a proxy): keep everything
            self._log("batch answer unreadable: keeping the queue for a later run")
            return self._stop("unreadable")
        assert self._limit is not None
        self._limit.accepted(len(body), self.config.clock())
        for entry, _, session_id in chunk:
            result = by_id.get(session_id)
            if result is not None and result[0] in ACCEPTED:
                self.queue.remove(entry)
                self._settled.add(entry.name)
            elif result is not None and result[0] in REJECTED:
                self._log(f"server rejected session {session_id} ({result[0]})")
                self.queue.reject(entry, result[1])
                self._settled.add(entry.name)
        return GO_ON


def _body_size(chunk: list[tuple[Entry, bytes, str]]) -> int:
    """The size of the request that sends ``chunk``: the session alone, or the batch."""
    if len(chunk) == 1:
        return len(chunk[0][1])
    return BATCH_OVERHEAD + sum(len(data) for _, data, _ in chunk) + len(chunk) - 1


def _outcome(status: int) -> str:
    """How a pass stopped on an answer that is no verdict: ``http503``, ... (``proxyauth`` for a proxy's 407)."""
    return "proxyauth" if status == 407 else f"http{status}"


def _from_the_api(response: Response) -> bool:
    """Whether a 4xx is the ingest API's verdict: its errors are a JSON object with a ``message``.

    A proxy's or a gateway's own page (nginx's HTML "413 Request Entity Too Large") is not.
    """
    import json

    try:
        tree = json.loads(response.body)
    except ValueError:
        return False
    return isinstance(tree, dict) and isinstance(tree.get("message"), str)


def _batch_results(body: bytes) -> dict[str, tuple[int, bytes]] | None:
    """Each session's status (and its result, as the server's answer) from a batch answer, or None."""
    import json

    try:
        results = json.loads(body)["results"]
        by_id = {r["sessionId"]: (r["status"], r) for r in results}
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        return None
    if not all(isinstance(k, str) and type(v[0]) is int for k, v in by_id.items()):
        return None
    return {k: (status, json.dumps(result).encode()) for k, (status, result) in by_id.items()}
