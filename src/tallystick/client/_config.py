"""The one configuration object of the client."""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # not typing's: importing typing costs the host tool milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

DEFAULT_EXIT_TIMEOUT = 0.0
DEFAULT_CI_EXIT_TIMEOUT = 0.0
DEFAULT_UPLOAD_INTERVAL = 600.0
DEFAULT_REQUEST_TIMEOUT = 5.0
DEFAULT_MAX_QUEUE_FILES = 100
DEFAULT_MAX_QUEUE_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_AGE_DAYS = 30


class Config:
    """What the client needs to know about the host tool, and its seams.

    A tool author sets the first four. The rest are seams for tests and
    observability: the clock, the data directory, the environment, the log writer
    (where the first-run notice and debug output go), the timeouts and the queue caps.
    """

    __slots__ = (
        "app_id",
        "attributes",
        "ci_exit_timeout",
        "clock",
        "consent_command",
        "data_dir",
        "data_dir_name",
        "debug",
        "environ",
        "events",
        "exit_timeout",
        "handle_sigterm",
        "install_hooks",
        "local_only",
        "max_age_days",
        "max_queue_bytes",
        "max_queue_files",
        "notice",
        "request_timeout",
        "server_url",
        "spans",
        "stderr",
        "strict",
        "upload_interval",
        "version",
    )

    def __init__(
        self,
        app_id: str,
        version: str,
        server_url: str,
        data_dir_name: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        stderr: TextIO | None = None,
        exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
        ci_exit_timeout: float = DEFAULT_CI_EXIT_TIMEOUT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        upload_interval: float = DEFAULT_UPLOAD_INTERVAL,
        max_queue_files: int = DEFAULT_MAX_QUEUE_FILES,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        max_age_days: float = DEFAULT_MAX_AGE_DAYS,
        local_only: bool = False,
        debug: bool = False,
        strict: bool = False,
        install_hooks: bool = True,
        handle_sigterm: bool = False,
        notice: str | None = None,
        attributes: Mapping[str, str] | None = None,
        events: Mapping[str, str] | None = None,
        spans: Mapping[str, str] | None = None,
        consent_command: str | None = None,
    ) -> None:
        """Describe the host tool.

        ``app_id``: the application ID registered with the server (``mytool``).
        ``version``: the tool's SemVer or PEP 440 version.
        ``server_url``: the ingest server, e.g. ``https://telemetry.example.org``.
        ``data_dir_name``: the directory under the user's data directory where the
        queue and the consent choice live (default: ``app_id``); ``data_dir``
        overrides the whole path.
        ``exit_timeout``: the longest the host's exit waits for the upload it started
        (default 0: uploads run in a detached process and the tool never waits);
        ``ci_exit_timeout``: the same on CI.
        ``request_timeout``: the bound of each upload request (connect, send, answer).
        ``upload_interval``: after a successful upload, the next one starts no sooner
        than this many seconds later (default 600; on CI every run's session is sent at
        its exit). Failures back off on their own: 1 minute, doubling, at most a day.
        ``local_only``: record and queue sessions but never send them.
        ``debug``: print each session to ``stderr`` instead of queueing it, and log
        the client's own problems there.
        ``strict``: raise ``InvalidData``/``ConfigError`` instead of dropping and counting.
        ``install_hooks``: chain ``sys.excepthook`` and register ``atexit`` (and the fork hook).
        ``handle_sigterm``: also queue the session when the tool is stopped by SIGTERM
        (installed only if the tool has no SIGTERM handler of its own). Off by default:
        a Python signal handler runs only between bytecodes, so a tool busy in long C
        code would die late; without it, the session of a SIGTERM'd run is lost.
        ``notice``: the first-run notice, replacing the default text.
        ``attributes``, ``events``, ``spans``: what the tool records, name to a short
        description (``{"projectSize": "Number of files in the project."}``). Declared,
        they make consent keep up with collection: a user's "allowed" covers what was
        declared when they allowed; a name added later is withheld, and the notice lists
        it, until they allow again; undeclared names are not recorded. Not declared
        (all None): the tool's own names are recorded as they come.
        ``consent_command``: your tool's own consent command, e.g. ``"mytool telemetry"``
        (see ``tallystick.client.commands``): the default notice then tells users to run
        ``mytool telemetry allow`` instead of ``python -m tallystick.client allow --app mytool``.
        """
        self.app_id = app_id
        self.version = version
        self.server_url = server_url
        self.data_dir_name = data_dir_name
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.clock = clock
        self.stderr = stderr
        self.exit_timeout = exit_timeout
        self.ci_exit_timeout = ci_exit_timeout
        self.request_timeout = request_timeout
        self.upload_interval = upload_interval
        self.max_queue_files = max_queue_files
        self.max_queue_bytes = max_queue_bytes
        self.max_age_days = max_age_days
        self.local_only = local_only
        self.debug = debug
        self.strict = strict
        self.install_hooks = install_hooks
        self.handle_sigterm = handle_sigterm
        self.notice = notice
        self.attributes = attributes
        self.events = events
        self.spans = spans
        self.consent_command = consent_command

    def __repr__(self) -> str:
        return f"Config(app_id={self.app_id!r}, version={self.version!r}, server_url={self.server_url!r})"

    @property
    def log(self) -> TextIO:
        """Where the notice and debug output go: ``stderr`` if set, else the current ``sys.stderr``."""
        return self.stderr if self.stderr is not None else sys.stderr

    @property
    def env_prefix(self) -> str:
        """The prefix of this tool's environment variables: ``my-tool`` gives ``MY_TOOL``."""
        return "".join(c if c.isalnum() else "_" for c in self.app_id.upper())

    def resolved_data_dir(self) -> str:
        """The directory holding the queue, the consent choice and the user ID."""
        if self.data_dir is not None:
            return self.data_dir
        return default_data_dir(self.data_dir_name or self.app_id, self.environ)


def default_data_dir(name: str, environ: Mapping[str, str]) -> str:
    """The per-user data directory for ``name``'s telemetry, following each platform's convention."""
    home = environ.get("HOME") or os.path.expanduser("~")
    if sys.platform == "win32":
        base = environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = environ.get("XDG_DATA_HOME", "")
        if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
            base = os.path.join(home, ".local", "share")
    if not os.path.isabs(base):
        # No home at all (HOME unset for a user without a passwd entry: "~" stays "~"). Never relative to
        # the tool's working directory: a path nothing can be made under, so nothing is kept anywhere.
        base = os.path.join(os.devnull, "no-home-directory")
    return os.path.join(base, name, "telemetry")
