"""Consent: the stored choice, the per-run overrides, and what they decide together.

The rules, first match wins:

1. ``DO_NOT_TRACK`` set to anything but ``0``/``false``/``no``/``off``: off.
2. ``<APP>_TELEMETRY`` (``MYTOOL_TELEMETRY`` for ``mytool``) for this run only:
   ``1``/``true``/``yes``/``on``: on; ``local``: on, but sessions stay on this machine;
   ``0``/``false``/``no``/``off`` or any other value: off.
3. The stored choice: ``allowed``: on; ``disabled``: off.
4. No choice yet (``unset``): off, and the first-run notice is printed once to
   stderr when stderr is a terminal and this is not a CI run.

Off means nothing is recorded, queued or sent. Whether stdin/stdout are terminals
or this is CI never turns telemetry on; they only decide whether the notice shows.

``idle`` decides the common "off" runs (``DO_NOT_TRACK``, a denial, no choice on CI or
in a pipe) with a few system calls and no further import, so that such a run costs
its tool close to nothing (see ``_api``).
"""

# ruff: noqa: BLE001  (a stream that cannot say whether it is a terminal is not one)

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from tallystick.client._config import Config

UNSET = "unset"
ALLOWED = "allowed"
DISABLED = "disabled"
STATES = (UNSET, ALLOWED, DISABLED)

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})


class Decision:
    """What this run may do."""

    __slots__ = ("local_only", "notice", "reason", "record")

    def __init__(self, record: bool, reason: str, *, local_only: bool = False, notice: bool = False) -> None:
        self.record = record
        self.local_only = local_only
        self.notice = notice
        self.reason = reason

    def __repr__(self) -> str:
        flags = f"record={self.record}, local_only={self.local_only}, notice={self.notice}"
        return f"Decision({flags}, reason={self.reason!r})"


def env_variable(env_prefix: str) -> str:
    return f"{env_prefix}_TELEMETRY"


def decide(stored: str, environ: Mapping[str, str], env_prefix: str, *, stderr_tty: bool, ci: bool) -> Decision:
    """Apply the rules in this module's docstring."""
    dnt = environ.get("DO_NOT_TRACK")
    if dnt is not None and dnt.strip().lower() not in _OFF:
        return Decision(False, "DO_NOT_TRACK is set")
    name = env_variable(env_prefix)
    override = environ.get(name)
    if override is not None:
        value = override.strip().lower()
        if value in _ON:
            return Decision(True, f"{name}={override}")
        if value == "local":
            return Decision(True, f"{name}={override}", local_only=True)
        return Decision(False, f"{name}={override}")
    if stored == ALLOWED:
        return Decision(True, "allowed (stored choice)")
    if stored == DISABLED:
        return Decision(False, "disabled (stored choice)")
    return Decision(False, "no choice made yet", notice=stderr_tty and not ci)


def isatty(stream: object) -> bool:
    """Whether ``stream`` is a terminal; one that cannot say (closed, replaced by an odd object) is not."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:
        return False


def idle(config: Config) -> bool:
    """Whether this run is off with nothing else to do; decided by a few system calls, importing nothing.

    True only where the full start (``_client.Client.start``) would do nothing more:
    not strict, no debug switch, off by the rules above with no notice to print, no
    erasure request waiting (those are sent whatever the consent). One ``listdir`` of
    the data directory says what is there (a missing one: nothing at all); a queue (or
    ``held/``) that holds files is swept here, so nothing queued outlives its age on a machine that
    stopped sending.
    """
    if config.strict or config.debug:
        return False
    environ = config.environ
    prefix = config.env_prefix
    if environ.get(f"{prefix}_TELEMETRY_DEBUG", "").strip().lower() in _ON:
        return False
    data_dir = config.resolved_data_dir()
    try:
        names = os.listdir(data_dir)
    except OSError:
        names = []
    stored = read_state(os.path.join(data_dir, "consent")) if "consent" in names else UNSET
    decision = decide(stored, environ, prefix, stderr_tty=True, ci=False)
    if decision.record or (decision.notice and isatty(config.log)):
        return False  # on, or a notice may be due (the full start checks for CI and the marker)
    if "erasures" in names and _listdir(os.path.join(data_dir, "erasures")):
        return False  # an erasure request waits: the full start sends it
    if any(name in names and _listdir(os.path.join(data_dir, name)) for name in ("queue", "held")):
        from tallystick.client._queue import Queue

        Queue(
            data_dir,
            max_files=config.max_queue_files,
            max_bytes=config.max_queue_bytes,
            max_age_seconds=config.max_age_days * 86400.0,
            clock=config.clock,
            count=lambda reason, n: None,  # off: no session will report them
        ).sweep()
    return True


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def read_state(path: str) -> str:
    """The stored choice in the file at ``path``; anything unreadable counts as unset."""
    try:
        with open(path, "rb") as f:  # bytes: a text file's "ascii" codec would be one more import
            value = f.read(32).decode("ascii", "replace").strip()
    except OSError:
        return UNSET
    return value if value in STATES else UNSET


def default_notice(app_id: str, env_prefix: str, command: str | None = None) -> str:
    """The first-run notice; ``command`` is the tool's own consent command (``mytool telemetry``), if it has one."""
    name = env_variable(env_prefix)
    allow = f"`{command} allow`" if command else f"`python -m tallystick.client allow --app {app_id}`"
    show = f"`{command} show`" if command else f"`python -m tallystick.client show --app {app_id}`"
    return (
        f"{app_id} can send anonymous usage statistics to its maintainers: which version and commands run,\n"
        "how long they take and which errors happen, with the operating system and Python version.\n"
        "Never names, paths, arguments, host names or IP addresses. Nothing is collected unless you opt in:\n"
        f"  {name}=1 for one run, or {allow} for good;\n"
        f"  {show} shows exactly what would be sent.\n"
        f"DO_NOT_TRACK=1 or {name}=0 always keeps it off. This notice is shown once.\n"
    )


def notice_marker(data_dir: str) -> str:
    return os.path.join(data_dir, "notice-shown")
