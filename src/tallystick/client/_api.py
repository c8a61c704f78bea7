"""The public functions: each catches at the boundary, so nothing the client does hurts the host.

The one active ``Client`` of the process lives here. ``tallystick.testing`` swaps
it for a capturing one through ``install`` and puts the previous one back with
``restore``; tests read it with ``active``. Nothing else touches the globals.

A run whose telemetry is off with nothing else to do (``_consent.idle``: no notice
due, nothing queued, no erasure waiting) makes no ``Client`` at all: ``configure``
keeps its config *dormant* and only the consent functions (``consent``,
``set_consent``, ``forget``, ``scrub``, ``active``) make the client, on first use.
So a run with ``DO_NOT_TRACK=1`` imports this module, ``_config`` and ``_consent``.
"""

# ruff: noqa: BLE001, S110  (the boundary: nothing the client does may reach the host tool)

from __future__ import annotations

import atexit
import os
import sys
import time

from tallystick.client import _consent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import ParamSpec, TypeVar

    from tallystick.client._client import Client
    from tallystick.client._config import Config

    P = ParamSpec("P")
    R = TypeVar("R")

_active: Client | None = None
_dormant: Config | None = None  # configured, off and idle: the client is made on first use (see above)
_capturing = False
_hooks_installed = False
_sigterm_installed = False
_previous_excepthook: Callable[[type[BaseException], BaseException, TracebackType | None], object] | None = None
_NO_CHOICE = object()
_pending_consent: object = _NO_CHOICE  # a set_consent() made before configure(), applied by configure()


def _failed(client: Client | None, exc: Exception) -> None:
    """Count and (debug only) log an internal failure; in strict mode a ClientError goes to the caller."""
    if client is not None:
        from tallystick.client._errors import ClientError

        if client.config.strict and isinstance(exc, ClientError):
            raise exc
        client.count("internalError")
        client.log(f"internal error: {type(exc).__name__}: {exc}")


def _recording() -> Client | None:
    client = _active
    if client is None or client.session is None or client.finished:
        return None
    return client


def install(client: Client | None, *, capturing: bool = False) -> tuple[Client | None, bool, Config | None]:
    """Make ``client`` the active one; returns what it replaces, for ``restore`` (tallystick.testing, tests)."""
    global _active, _capturing, _dormant
    previous = (_active, _capturing, _dormant)
    _active, _capturing, _dormant = client, capturing, None
    return previous


def restore(previous: tuple[Client | None, bool, Config | None]) -> None:
    """Put back what ``install`` replaced: the client, whether it was capturing, a dormant config."""
    global _active, _capturing, _dormant
    _active, _capturing, _dormant = previous


def active() -> Client | None:
    """The active client, if ``configure`` (or ``tallystick.testing.capture``) made one (commands, tests).

    A dormant configuration (telemetry off, nothing to do) gets its client now.
    """
    global _active, _dormant  # noqa: PLW0603  (the process's one client, made on first use)
    if _active is None and _dormant is not None:
        config, _dormant = _dormant, None
        from tallystick.client._client import Client

        client = Client(config)
        _active = client
        try:
            client.start()
        except Exception as exc:
            _failed(client, exc)
    return _active


def configure(config: Config) -> None:
    """Start telemetry for this run of the tool: consent, the session, uploading what waits.

    Call once, early in ``main``. Never raises (except in strict mode, for a bad config).
    """
    global _active, _dormant
    if _capturing and _active is not None:
        # Under tallystick.testing.capture: keep capturing, but check the tool's config strictly.
        _active.adopt(config)
        return
    client = None
    try:
        if _pending_consent is _NO_CHOICE and _consent.idle(config):  # off, nothing to do: no client, no imports
            previous, _active, _dormant = _active, None, config
            if previous is not None:
                previous.finish()
            return
        from tallystick.client._client import Client

        client = Client(config)  # inside the try: even ``configure(None)`` must not raise
        previous, _active, _dormant = _active, client, None
        if previous is not None:
            previous.finish()
        client.start()
        _apply_pending_consent(client)
        if client.session is not None:
            _install_hooks(config)
    except Exception as exc:
        _failed(client, exc)


def _apply_pending_consent(client: Client) -> None:
    global _pending_consent  # one choice, made before there was a client to take it
    pending, _pending_consent = _pending_consent, _NO_CHOICE
    if pending is not _NO_CHOICE:
        client.set_consent(pending)  # type: ignore[arg-type]


def _install_hooks(config: Config) -> None:
    global _hooks_installed, _previous_excepthook  # noqa: PLW0603  (hooks are process-wide, installed once)
    if config.handle_sigterm:
        _install_sigterm()
    if _hooks_installed or not config.install_hooks:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _install_sigterm() -> None:
    """Queue the session on SIGTERM too (opt-in), but only where no one else handles it.

    The handler takes only re-entrant locks: it runs on the main thread between two
    bytecodes, possibly inside one of the client's own calls holding them.
    """
    global _sigterm_installed  # noqa: PLW0603  (a process-wide handler, installed once)
    if _sigterm_installed:
        return
    _sigterm_installed = True
    import importlib

    try:  # the C module: ``signal`` itself builds enums, worth ~0.4 ms
        signal = importlib.import_module("_signal")
    except ImportError:
        signal = importlib.import_module("signal")

    if not hasattr(signal, "SIGTERM") or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: object) -> None:
        try:
            client = _active
            if client is not None:
                client.finish(reason="SIGTERM")
        except BaseException:
            pass
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)  # die the way the tool would have died without us

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone (a later configure may try again)
        _sigterm_installed = False


def _at_exit() -> None:
    try:
        client = _active
        if client is not None and not _capturing:
            client.finish()
    except BaseException:  # nothing may reach the host, not even at exit
        pass


def _after_fork() -> None:
    client = _active
    if client is not None and not _capturing:
        client.abandon()


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    try:
        if exc is not None and not isinstance(exc, KeyboardInterrupt):
            _record_exception(exc, "UnhandledException")
    except BaseException:
        pass
    (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def _record_exception(exc: BaseException, type_name: str) -> None:
    client = _recording()
    if client is None:
        return
    from tallystick.client import _tracebacks

    assert client.session is not None
    client.session.add_event(type_name, _tracebacks.describe(exc))


def event(type_name: str, /, **attributes: object) -> None:
    """Record that something happened, e.g. ``event("UpdateNudgeShown", latestVersion="2.1")``."""
    client = _recording()
    if client is None:
        return
    began = time.perf_counter()
    try:
        assert client.session is not None
        client.session.add_event(type_name, attributes)
    except Exception as exc:
        _failed(client, exc)
    client.cost += time.perf_counter() - began


def set_attributes(**attributes: object) -> None:
    """Describe the whole session, e.g. ``set_attributes(command="build", plugins=3)``."""
    client = _recording()
    if client is None:
        return
    began = time.perf_counter()
    try:
        assert client.session is not None
        client.session.set_attributes(attributes)
    except Exception as exc:
        _failed(client, exc)
    client.cost += time.perf_counter() - began


def record_exception(exc: BaseException) -> None:
    """Record a handled exception as an ``Error`` event: its type and frames, never its message."""
    try:
        _record_exception(exc, "Error")
    except Exception as failure:
        _failed(_active, failure)


def _succeeded(exc: BaseException | None) -> bool:
    """Whether an exception leaving a span still means success: ``sys.exit()``, ``sys.exit(0)``.

    argparse's ``--help`` and ``--version`` and every click command end with ``SystemExit``;
    a span around the tool's entry point is not failed by it (``sys.exit(1)``, ``sys.exit("msg")`` are).
    """
    return isinstance(exc, SystemExit) and exc.code in (None, 0)


class span:  # lower case: used like a function, ``with span("LoadConfig"):``
    """Time an operation: ``with span("LoadConfig"):`` or ``@span("LoadConfig")`` on a function.

    An exception inside is not swallowed; the span gets ``failed=True`` (not for a
    ``SystemExit`` of status 0: argparse's ``--help``, click's every command). Use one
    ``span`` object per ``with``; as a decorator each call is timed on its own.
    """

    __slots__ = ("_attributes", "_start", "_type")

    def __init__(self, type_name: str, /, **attributes: object) -> None:
        self._type = type_name
        self._attributes = attributes
        self._start: float | None = None

    def set(self, **attributes: object) -> None:
        """Add attributes learnt while the operation runs."""
        self._attributes.update(attributes)

    def __enter__(self) -> span:
        client = _recording()
        if client is not None:
            self._start = client.config.clock()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client = _recording()
        start, self._start = self._start, None
        if client is None or start is None:
            return
        began = time.perf_counter()
        try:
            attributes = dict(self._attributes)
            if exc_type is not None and not _succeeded(exc):
                attributes["failed"] = True
            assert client.session is not None
            client.session.add_span(self._type, start, client.config.clock(), attributes)
        except Exception as failure:
            _failed(client, failure)
        client.cost += time.perf_counter() - began

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        import functools  # here, not at the top: a tool that never decorates never pays for it

        type_name, attributes = self._type, self._attributes

        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(type_name, **attributes):
                return function(*args, **kwargs)

        return timed


def set_consent(allowed: bool | None) -> None:
    """Store the user's choice: True allows, False disables (and deletes the queue), None unsets.

    Called before ``configure``, the choice is kept and stored by ``configure``.
    """
    global _pending_consent  # noqa: PLW0603
    client = None
    try:
        client = active()
        if client is None:
            _pending_consent = allowed
            return
        client.set_consent(allowed)
        if client.session is not None and client is _active and not _capturing:
            _install_hooks(client.config)
    except Exception as exc:
        _failed(client, exc)


def forget() -> list[str]:
    """Erase this installation's data: the queue here now, and everything already sent by a request to the server.

    Queues an erasure request (sent before any session, retried like one), deletes the
    queue and the user ID, and starts the upload process; the consent choice stays.
    Returns the user IDs whose erasure was requested (empty if there was none to erase).
    """
    client = None
    try:
        client = active()
        if client is None:
            return []
        return client.forget()
    except Exception as exc:
        _failed(client, exc)
        return []


def consent() -> str:
    """The stored choice: ``"unset"``, ``"allowed"`` or ``"disabled"`` (overrides aside)."""
    client = None
    try:
        client = active()
        if client is None:
            pending = _pending_consent
            return "unset" if pending is _NO_CHOICE or pending is None else ("allowed" if pending else "disabled")
        return client.stored_consent()
    except Exception as exc:
        _failed(client, exc)
        return "unset"


def scrub(text: str) -> str:
    """``text`` scrubbed against generic patterns and this machine's names, as the active client sees them.

    The machine's home, user and host names come from the active ``Config.environ``
    (``os.environ`` before ``configure``). Never raises: on an internal failure the
    whole text is withheld.
    """
    client = None
    try:
        client = active()
        if client is not None:
            return client.scrubber(text)
        from tallystick.client._scrub import default_scrubber

        return default_scrubber()(text)
    except Exception as exc:
        _failed(client, exc)
        return "<redacted>"
