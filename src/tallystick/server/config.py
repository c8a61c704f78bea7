"""Settings of the ingest service, checked once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from tallystick.schema import _rules


class ConfigError(Exception):
    """A setting that cannot work; the message is one line saying what to fix."""


@dataclass(frozen=True)
class ServerConfig:
    """What the ingest service needs to know.

    ``applications`` are the registered application IDs: sessions of any other
    application are rejected, so a stray or hostile client cannot fill storage
    under names the maintainer never chose.
    """

    storage_url: str
    applications: frozenset[str] = field(default_factory=frozenset)
    max_body_bytes: int = _rules.MAX_BODY_BYTES
    max_batch_bytes: int = 16 * _rules.MAX_BODY_BYTES
    retry_after_seconds: int = 30

    def __post_init__(self) -> None:
        for app in self.applications:
            if not _rules.is_application_id(app):
                raise ConfigError(
                    f"invalid application ID {app!r}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', "
                    "starting with a letter or digit"
                )
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max body size {self.max_body_bytes} is too small: use at least 1024 bytes")
