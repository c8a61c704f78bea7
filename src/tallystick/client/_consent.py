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
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

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


def read_state(path: str) -> str:
    """The stored choice in the file at ``path``; anything unreadable counts as unset."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            value = f.read(32).strip()
    except OSError:
        return UNSET
    return value if value in STATES else UNSET


def default_notice(app_id: str, env_prefix: str, command: str | None = None) -> str:
    """The first-run notice; ``command`` is the tool's own consent command (``mytool telemetry``), if it has one."""
    name = env_variable(env_prefix)
    allow = f"`{command} allow`" if command else f"`python -m tallystick.client allow --app {app_id}`"
    return (
        f"{app_id} can send anonymous usage statistics to its maintainers: which version and commands run,\n"
        "how long they take and which errors happen, with the operating system and Python version.\n"
        "Never names, paths, arguments, host names or IP addresses. Nothing is collected unless you opt in:\n"
        f"  {name}=1 for one run, or {allow} for good;\n"
        f"  `python -m tallystick.client show --app {app_id}` shows exactly what would be sent.\n"
        f"DO_NOT_TRACK=1 or {name}=0 always keeps it off. This notice is shown once.\n"
    )


def notice_marker(data_dir: str) -> str:
    return os.path.join(data_dir, "notice-shown")
