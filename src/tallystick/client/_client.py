"""The client of one run: consent, the session, the queue and the uploader, tied together.

``start`` runs when the tool calls ``configure``; ``finish`` runs once at exit
(atexit, after an unhandled exception, or on SIGTERM when the tool opted in).
Neither raises: the public functions in ``_api`` catch at the boundary.

Every lock here is re-entrant: the SIGTERM handler runs ``finish`` on the main
thread between two bytecodes, possibly while that thread is inside ``count``.
"""

# ruff: noqa: BLE001, S110, SIM105  (never raise into or print into the host tool)

from __future__ import annotations

import _thread
import os
import sys
import time

from tallystick.client import _consent, _queue
from tallystick.schema import _rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tallystick.client._collection import Coverage
    from tallystick.client._config import Config
    from tallystick.client._queue import Queue
    from tallystick.client._scrub import Scrubber
    from tallystick.client._session import Session
    from tallystick.client._uploader import Uploader

_TRUE = frozenset({"1", "true", "yes", "on"})
# Where no upload process can start (see Client._spawns), the thread's upload gets this much of the exit.
FALLBACK_EXIT_WAIT = 0.025
FALLBACK_EXIT_WAIT_CI = 1.0


class Client:
    """Everything the client does in one run of the host tool."""

    def __init__(self, config: Config, *, sink: list[dict[str, object]] | None = None) -> None:
        self.config = config
        self.sink = sink
        self.data_dir = ""
        self.decision: _consent.Decision | None = None
        self.session: Session | None = None
        self.queue: Queue | None = None
        self.uploader: Uploader | None = None
        self.local_only = config.local_only
        self.debug = config.debug
        self.ci = False
        self.ci_system: str | None = None  # which CI system (``_session.ci_system``), detected once per run
        self.counts: dict[str, int] = {}
        self.cost = 0.0  # seconds spent in the client during this run
        self.finished = False
        self.waiting = 0  # sessions found in the queue at start, after the sweep
        self.coverage: Coverage | None = None  # what the user's consent covers (_collection); None: everything
        self._scrubber: Scrubber | None = None
        # Re-entrant, both: a signal handler may finish the session while the main thread holds them.
        self._count_lock = _thread.RLock()
        self._finish_lock = _thread.RLock()

    # -- bookkeeping ---------------------------------------------------------

    def count(self, reason: str, n: int = 1) -> None:
        """Count something dropped or failed, reported with the next session."""
        with self._count_lock:
            self.counts[reason] = self.counts.get(reason, 0) + n

    def log(self, message: str) -> None:
        """Tell the tool's user, only when debug is on."""
        if not self.debug:
            return
        try:
            self.config.log.write(f"tallystick[{self.config.app_id}]: {message}\n")
            self.config.log.flush()
        except Exception:
            pass

    @property
    def scrubber(self) -> Scrubber:
        """The scrubber of this machine as ``Config.environ`` describes it, made on first use."""
        if self._scrubber is None:
            from tallystick.client._scrub import machine_scrubber

            self._scrubber = machine_scrubber(self.config.environ)
        return self._scrubber

    @property
    def consent_path(self) -> str:
        return os.path.join(self.data_dir, "consent")

    @property
    def user_id_path(self) -> str:
        return os.path.join(self.data_dir, "user-id")

    # -- start -----------------------------------------------------------------

    def start(self) -> None:
        """Decide on consent, print the first-run notice if due, begin the session, start uploading."""
        began = time.perf_counter()
        try:
            self._start()
        finally:
            self.cost += time.perf_counter() - began

    def _check_config(self, *, version: bool = True) -> str | None:
        config = self.config
        if not _rules.is_application_id(config.app_id):
            return f"app_id {config.app_id!r} must be {_rules.PATTERN_DESCRIPTIONS[_rules.APPLICATION_ID_PATTERN]}"
        if version and not _rules.is_version(config.version):
            return f"version {config.version!r} must be {_rules.PATTERN_DESCRIPTIONS[_rules.VERSION_PATTERN]}"
        if self.sink is None and not config.server_url.startswith(("http://", "https://")):
            return f"server_url {config.server_url!r} must start with http:// or https://"
        return None

    def _version_problem(self) -> str | None:
        """Check the version, remembering a good one in the data directory.

        The version pattern takes ~0.6 ms to compile, on every run; a version seen
        good before (the usual case: the same tool version as last run) skips it.
        """
        config = self.config
        memo = os.path.join(self.data_dir, "version-checked")
        seen = f"{config.app_id} {config.version}".encode()
        if _queue.read_bytes(memo, 256) == seen:
            return None
        if not _rules.is_version(config.version):
            return f"version {config.version!r} must be {_rules.PATTERN_DESCRIPTIONS[_rules.VERSION_PATTERN]}"
        try:
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
            _queue.atomic_write(memo, seen, sync=False)
        except OSError:
            pass
        return None

    def _refuse(self, problem: str) -> None:
        if self.config.strict:
            from tallystick.client._errors import ConfigError

            raise ConfigError(f"telemetry is off: {problem}")
        self.log(f"telemetry is off: {problem}")
        self.count("badConfig")

    def _start(self) -> None:
        config = self.config
        environ = config.environ
        prefix = config.env_prefix if _rules.is_application_id(config.app_id) else "TALLYSTICK"
        if environ.get(f"{prefix}_TELEMETRY_DEBUG", "").strip().lower() in _TRUE:
            self.debug = True
        # The version is checked only once telemetry is on (see _version_problem).
        problem = self._check_config(version=self.sink is not None or config.strict)
        if problem is not None:
            self._refuse(problem)
            return
        from tallystick.client._session import ci_system, new_uuid4

        self.ci_system = ci_system(environ)
        if self.sink is not None:  # tallystick.testing: always on, nothing on disk
            self._begin(new_uuid4())
            return
        self.data_dir = config.resolved_data_dir()
        self.ci = self.ci_system is not None
        self._sweep()  # whatever the consent: nothing queued outlives its age, even if never sent
        if not (config.local_only or self.debug) and self._erasures_waiting():
            self._send_erasures()  # whatever the consent: the user asked for it (see DESIGN.md)
        stored = _consent.read_state(self.consent_path)
        tty = _consent.isatty(config.log)
        self.decision = decision = _consent.decide(stored, environ, prefix, stderr_tty=tty, ci=self.ci)
        self.log(f"telemetry is {'on' if decision.record else 'off'}: {decision.reason}")
        if self.debug and not decision.record:
            self.log(
                f"set {_consent.env_variable(prefix)}=1 as well to see the session it would record (debug never sends)"
            )
        if decision.notice:
            self._notice()
        if not decision.record:
            return
        problem = self._version_problem()
        if problem is not None:
            self._refuse(problem)
            return
        self.local_only = self.local_only or decision.local_only
        self._cover(stored, environ.get(_consent.env_variable(prefix)) is not None)
        self._begin(self._user_id())

    def _declared(self) -> dict[str, str] | None:
        from tallystick.client import _collection

        config = self.config
        return _collection.collection(config.attributes, config.events, config.spans)

    def _cover(self, stored: str, overridden: bool) -> None:
        """What this run may record under the user's choice; the notice again when the collection grew."""
        config = self.config
        if overridden and config.attributes is None and config.events is None and config.spans is None:
            self.coverage = None  # MYTOOL_TELEMETRY=1 and nothing declared: everything (no import, no file read)
            return
        from tallystick.client import _collection

        declared = self._declared()
        if overridden or stored != _consent.ALLOWED:  # MYTOOL_TELEMETRY=1: this run, everything declared
            self.coverage = _collection.Coverage((), None if declared is None else declared.keys())
            return
        try:
            self.coverage, new = _collection.resolve(self.data_dir, declared)
        except OSError:
            self.coverage, new = _collection.Coverage((), None if declared is None else declared.keys()), {}
        if new:
            self.log(f"not covered by the stored choice, withheld: {', '.join(new)}")
            if _consent.isatty(self.config.log) and not self.ci:
                tracked = declared if declared is not None else _collection.builtin_items()
                self._print_once(
                    _collection.notice_marker(self.data_dir, _collection.fingerprint(tracked)),
                    _collection.notice(self.config.app_id, self.config.env_prefix, new, self.config.consent_command),
                )

    def _erasures_waiting(self) -> bool:
        return bool(_queue.erasures_waiting(self.data_dir))

    def _send_erasures(self) -> None:
        """Start the upload process for waiting erasure requests (``_choices``)."""
        from tallystick.client import _choices

        _choices.send_erasures(self)

    def _check_server_url(self) -> bool:
        return self.config.server_url.startswith(("http://", "https://"))

    def _begin(self, user_id: str) -> None:
        from tallystick.client._session import Session, describe

        config = self.config
        session = Session(
            config.app_id, config.version, user_id, clock=config.clock, strict=config.strict, count=self.count
        )
        session.coverage = self.coverage
        session.set_environment(describe(config.environ, sys.stdin, sys.stdout, self.ci_system))
        self.session = session
        if self.sink is not None:
            return
        commitment = _queue.commitment_for(self.data_dir, user_id)
        if commitment is not None:
            session.set_attributes({_rules.ERASURE_COMMITMENT_ATTRIBUTE: commitment}, internal=True)
        if self._sends() and self.waiting and not self._spawns():
            self._make_uploader().start()  # the fallback: a thread, from the start of the run

    def _sweep(self) -> None:
        """Make the queue and delete what is past its age: one ``scandir``, no file read."""
        config = self.config
        self.queue = queue = _queue.Queue(
            self.data_dir,
            max_files=config.max_queue_files,
            max_bytes=config.max_queue_bytes,
            max_age_seconds=config.max_age_days * 86400.0,
            clock=config.clock,
            count=self.count,
        )
        self.waiting = queue.sweep()

    def _make_uploader(self) -> Uploader:
        """The uploader, imported only when there is something to send."""
        if self.uploader is None:
            from tallystick.client._uploader import Uploader

            assert self.queue is not None
            self.uploader = Uploader(self.config, self.queue, count=self.count, log=self.log, ci=self.ci)
        return self.uploader

    def _sends(self) -> bool:
        return not (self.local_only or self.debug)

    def _spawns(self) -> bool:
        """Whether uploads run in a detached process (else in a thread: see DESIGN.md and ``_spawn``).

        Not ``_spawn``'s to say: a run that starts no upload process never imports that module.
        """
        return hasattr(os, "posix_spawn") and bool(sys.executable) and not getattr(sys, "frozen", False)

    def _notice(self) -> None:
        """Print the first-run notice, once (``_choices``)."""
        from tallystick.client import _choices

        _choices.notice(self)

    def _print_once(self, marker: str, text: str) -> None:
        """Print ``text`` unless ``marker`` exists; only the run that creates it prints (``_choices``)."""
        from tallystick.client import _choices

        _choices.print_once(self, marker, text)

    def _user_id(self) -> str:
        """The installation's random user ID, created on first use."""
        from tallystick.client._session import new_uuid4

        kept = self._kept_user_id()
        if kept is not None:
            return kept
        try:
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        except OSError:
            pass
        with _queue.IdentityLock(self.data_dir):  # simultaneous first runs: one makes it, the others read it
            kept = self._kept_user_id()
            if kept is not None:
                return kept
            user_id = new_uuid4()
            try:
                _queue.atomic_write(self.user_id_path, user_id.encode())
            except OSError as exc:
                self.log(f"cannot keep the user ID: {exc}")
            return user_id

    def _kept_user_id(self) -> str | None:
        data = _queue.read_bytes(self.user_id_path, 64)
        if data is not None:
            text = data.decode("ascii", "replace").strip()
            if _rules.is_uuid4(text):
                return text
        return None

    def adopt(self, config: Config) -> None:
        """Take the tool's application ID and version (tallystick.testing); a bad one raises (``_choices``)."""
        from tallystick.client import _choices

        _choices.adopt(self, config)

    # -- consent changes -------------------------------------------------------

    def set_consent(self, allowed: bool | None) -> None:
        """Store the user's choice; disabling deletes the queue and rotates the user ID (``_choices``)."""
        from tallystick.client import _choices

        _choices.set_consent(self, allowed)

    def forget(self) -> list[str]:
        """Erase this installation's data here and, by a queued request, on the server; the user IDs (``_choices``)."""
        from tallystick.client import _choices

        return _choices.forget(self)

    def stored_consent(self) -> str:
        if not self.data_dir:
            return _consent.UNSET
        return _consent.read_state(self.consent_path)

    # -- finish ----------------------------------------------------------------

    def abandon(self) -> None:
        """Forget this run without writing it (a forked child, a consent withdrawn)."""
        self.finished = True
        self.session = None
        if self.uploader is not None:
            self.uploader.stopped = True

    def finish(self, reason: str | None = None) -> None:
        """End the session and queue it; wait on uploads in flight no longer than the bound. Once only."""
        with self._finish_lock:
            if self.finished:
                return
            self.finished = True
        began = time.perf_counter()
        session = self.session
        if session is None:
            return
        if reason is not None:
            session.add_event("Terminated", {"signal": reason})
        pending: dict[str, int] = {}
        entries = []
        queue = self.queue
        state = None
        if queue is not None:
            pending = queue.read_drops()
            entries = queue.entries()
            if self._sends():
                state = _queue.read_state(self.data_dir)
        with self._count_lock:
            reported = dict(self.counts)
        drops = dict(pending)
        for key, n in reported.items():
            drops[key] = drops.get(key, 0) + n
        attributes: dict[str, object] = {
            "telemetryQueueDepth": len(entries),
            "telemetryQueuedBytes": sum(e.size for e in entries),
        }
        if state is not None and state.failures:
            attributes["telemetryUploadFailures"] = state.failures
            attributes["telemetryUploadError"] = state.outcome
        for key, n in sorted(drops.items()):
            name = "telemetryDrops" + key[:1].upper() + key[1:]
            if _rules.is_attribute_name(name):
                attributes[name] = n
        attributes["telemetryMs"] = round((self.cost + time.perf_counter() - began) * 1000, 3)
        session.set_attributes(attributes, internal=True)
        tree = session.to_dict()
        if self.sink is not None:
            self.sink.append(tree)
            return
        queued = self._queue_session(session, tree, entries)
        if queue is not None and self._sends() and state is not None and (queued or entries):
            self._upload_at_exit(state, queued)
        if queue is not None:
            self._keep_unreported_drops(queue, pending, reported)

    def _queue_session(
        self, session: Session, tree: dict[str, object], entries: list[_queue.Entry]
    ) -> tuple[str, bytes] | None:
        """Write the sealed session to the queue (in debug mode: print it instead); its file name and body.

        ``entries``: what the queue held when the session was sealed (one ``scandir`` less).
        """
        body = self._encode(tree)
        if body is None:
            return None
        if self.debug:
            import json

            self.log("this session would be sent (debug: not queued, not sent):\n" + json.dumps(tree, indent=2))
            return None
        if self.queue is None:
            return None
        name = _queue.file_name(session.start_time, session.session_id)
        try:
            if self.queue.put(name, body, list(entries)):
                return name, body
        except OSError as exc:
            self.count("writeFailed")
            self.log(f"cannot queue the session: {exc}")
            if self.ci:  # a read-only home on a CI runner: the upload process is handed it all the same
                return name, body
        return None

    def _upload_at_exit(self, state: _queue.UploadState, queued: tuple[str, bytes] | None) -> None:
        """Start the upload process if the shared schedule says it is due; the tool does not wait for it.

        On CI (no later run will come) this run's session is handed over too, so it is
        sent even if the machine deletes the data directory right after the job.
        """
        config = self.config
        timeout = config.ci_exit_timeout if self.ci else config.exit_timeout
        if not self._spawns():  # the fallback thread: started with the run, or now on CI
            uploader = self._make_uploader()
            if self.ci and not uploader.stopped:
                uploader.start()
            if uploader.busy:
                uploader.wait(max(timeout, FALLBACK_EXIT_WAIT_CI if self.ci else FALLBACK_EXIT_WAIT))
            return
        if not _queue.worth_starting(state, config.clock(), ci=self.ci, interval=config.upload_interval):
            if self.debug:  # the usual exit: not even the message is made
                self.log(f"no upload before {time.ctime(state.next)} (last: {state.outcome})")
            return
        from tallystick.client import _spawn

        pid = _spawn.start(config, self.data_dir, ci=self.ci, handed=queued if self.ci else None)
        if pid is None:
            self.count("uploadNotStarted")
            return
        self.log(f"upload process {pid} started")
        if timeout > 0:
            _spawn.wait(pid, timeout)

    def _encode(self, tree: dict[str, object]) -> bytes | None:
        """The session as UTF-8 JSON; a value that cannot be encoded is dropped and counted, not the session."""
        from tallystick.client._session import drop_unencodable, dumps  # loaded already: it recorded the session

        try:
            return dumps(tree).encode()
        except (ValueError, TypeError):  # UnicodeEncodeError is a ValueError: a lone surrogate (os.fsdecode)
            pass
        self.count("invalidAttribute", drop_unencodable(tree))
        try:
            return dumps(tree).encode()
        except (ValueError, TypeError) as exc:
            self.count("encodeFailed")
            self.log(f"cannot encode the session: {type(exc).__name__}: {exc}")
            return None

    def _keep_unreported_drops(self, queue: Queue, pending: dict[str, int], reported: dict[str, int]) -> None:
        """Carry drops counted after the session was sealed over to the next session."""
        with self._count_lock:
            later = {k: n - reported.get(k, 0) for k, n in self.counts.items() if n > reported.get(k, 0)}
        if not later and not pending:
            return
        try:
            queue.write_drops(later)
        except OSError:
            pass
