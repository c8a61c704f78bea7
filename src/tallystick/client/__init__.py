"""Tallystick's client: usage telemetry for command-line tools, standard library only.

Five lines instrument a tool::

    import tallystick.client as telemetry

    telemetry.configure(telemetry.Config(app_id="mytool", version="1.4.0", server_url="https://telemetry.example.org"))
    telemetry.event("UpdateNudgeShown", latestVersion="2.1")
    with telemetry.span("LoadConfig"):
        ...

Nothing is recorded until the user consents; nothing is ever raised into, printed
into or noticeably slows the host tool. See docs/instrument-your-tool.md.
"""

from __future__ import annotations

from tallystick.client._api import (
    configure,
    consent,
    event,
    forget,
    record_exception,
    scrub,
    set_attributes,
    set_consent,
    span,
)
from tallystick.client._config import Config

TYPE_CHECKING = False  # not typing's: its import costs the host tool milliseconds
if TYPE_CHECKING:
    from tallystick.client._errors import ClientError, ConfigError, InvalidData

__all__ = [
    "ClientError",
    "Config",
    "ConfigError",
    "InvalidData",
    "configure",
    "consent",
    "event",
    "forget",
    "record_exception",
    "scrub",
    "set_attributes",
    "set_consent",
    "span",
]


def __getattr__(name: str) -> object:
    """The exception classes, loaded on first use: a run that never raises (most) never imports them."""
    if name in {"ClientError", "ConfigError", "InvalidData"}:
        from tallystick.client import _errors

        value = getattr(_errors, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
