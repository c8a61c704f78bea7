"""Settings of the ingest service, checked once at start-up."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tallystick.privacy.declarations import Declaration, parse_applications
from tallystick.privacy.errors import DeclarationError
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
    # Limits: a session body (after decompression), a batch body, and how slow a client may be.
    max_body_bytes: int = _rules.MAX_BODY_BYTES
    max_batch_bytes: int = 16 * _rules.MAX_BODY_BYTES
    # The longest string attribute value, in code points: by default room for a real stack trace
    # (``_rules.ATTRIBUTE_VALUE_MAX_LENGTH``, or less when the body limit is smaller).
    max_attribute_chars: int | None = None
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # A request's header bytes (request line included) and header lines; past either, 431.
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # Backpressure: ingest requests handled at once; beyond that, 503 with Retry-After.
    max_in_flight: int = 512
    busy_retry_after_seconds: int = 1
    retry_after_seconds: int = 30
    # Per-client-IP token bucket (requests per second, burst), kept in memory only; 0 = off.
    rate_limit_per_second: float = 0.0
    rate_limit_burst: int = 50
    # Logs are JSON lines on stderr; one line per request only when asked (it costs throughput).
    log_level: str = "info"
    log_requests: bool = False
    shutdown_timeout_seconds: float = 30.0
    # A PUT /v1/noop that reads the body and answers 201: the benchmark's baseline.
    noop_endpoint: bool = False
    # Privacy (see tallystick.privacy): what each application declared, re-read from config_path
    # on SIGHUP or when the file changes; how often ingest re-reads the deleted users' tombstones;
    # the sample of rejected bodies kept for `tallystick rejects` (false: counts only).
    declarations: Mapping[str, Declaration] = field(default_factory=dict)
    config_path: str | None = None
    reload_check_seconds: float = 2.0
    tombstone_refresh_seconds: float = 10.0
    quarantine_samples: bool = True
    quarantine_max_samples: int = 200
    quarantine_sample_bytes: int = 16 * 1024
    # Erasure requests from users' machines (POST /v1/erasures): per client address, on average
    # one per erasure_interval_seconds with bursts of erasure_burst; and at most erasure_max_per_minute
    # from all clients together (each request writes two small objects). In memory, per replica.
    erasure_interval_seconds: float = 60.0
    erasure_burst: int = 5
    erasure_max_per_minute: int = 600

    @property
    def attribute_chars(self) -> int:
        """The longest string attribute value in force (always inside the body limit)."""
        if self.max_attribute_chars is not None:
            return self.max_attribute_chars
        return min(_rules.ATTRIBUTE_VALUE_MAX_LENGTH, self.max_body_bytes - 1)

    def __post_init__(self) -> None:
        for app in self.applications:
            if not _rules.is_application_id(app):
                raise ConfigError(
                    f"invalid application ID {app!r}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', "
                    "starting with a letter or digit"
                )
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max body size {self.max_body_bytes} is too small: use at least 1024 bytes")
        if self.max_attribute_chars is not None and not 1 <= self.max_attribute_chars < self.max_body_bytes:
            raise ConfigError(
                f"max_attribute_chars {self.max_attribute_chars} must be at least 1 and below max_body_bytes "
                f"{self.max_body_bytes}: one attribute value has to fit inside a session body"
            )
        if self.max_batch_bytes < self.max_body_bytes:
            raise ConfigError(
                f"max_batch_bytes {self.max_batch_bytes} is below max_body_bytes {self.max_body_bytes}: "
                "a batch must be able to hold one session"
            )
        for name in (
            "header_timeout_seconds",
            "body_timeout_seconds",
            "shutdown_timeout_seconds",
            "reload_check_seconds",
            "tombstone_refresh_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.max_header_bytes < 1024 or self.max_headers < 8:
            raise ConfigError(
                f"max_header_bytes {self.max_header_bytes} / max_headers {self.max_headers} are too small: "
                "use at least 1024 bytes and 8 headers"
            )
        if self.max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, not {self.max_in_flight}")
        if self.rate_limit_per_second < 0 or self.rate_limit_burst < 1:
            raise ConfigError("rate_limit_per_second must be >= 0 (0 = off) and rate_limit_burst >= 1")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"log_level {self.log_level!r} is not a level: use debug, info, warning or error")
        if self.erasure_interval_seconds <= 0 or self.erasure_burst < 1 or self.erasure_max_per_minute < 1:
            raise ConfigError(
                "erasure_interval_seconds must be positive, erasure_burst and erasure_max_per_minute at least 1"
            )
        if self.quarantine_max_samples < 0 or self.quarantine_sample_bytes < 256:
            raise ConfigError("quarantine_max_samples must be >= 0 and quarantine_sample_bytes >= 256")


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: check the --config path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return data


def load_config(path: str | None, *, defaults: dict[str, Any] | None = None, **overrides: Any) -> ServerConfig:
    """Settings from ``defaults``, then the TOML file at ``path``, then non-None ``overrides``.

    ``applications`` from all three are combined. Keys are ServerConfig's field names;
    in the file, ``applications`` may also be a table per application that declares
    its data (``tallystick.privacy.declarations``).
    """
    known = {f.name: f for f in fields(ServerConfig) if f.name not in ("declarations", "config_path")}
    values: dict[str, Any] = dict(defaults or {})
    apps: set[str] = set(values.pop("applications", ()) or ())
    declarations: dict[str, Declaration] = {}
    if path:
        for key, value in _read_toml(path).items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown setting {key!r} in {path}: known settings are {', '.join(sorted(known))}")
            if name == "applications":
                try:
                    listed, declarations = parse_applications(value, path)
                except DeclarationError as exc:
                    raise ConfigError(str(exc)) from None
                apps.update(listed)
            else:
                values[name] = value
    for key, value in overrides.items():
        if key == "applications":
            apps.update(value or ())
        elif value is not None:
            values[key] = value
    for name, value in values.items():
        expected = known[name].type
        if expected in ("int", int, "int | None") and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"setting {name} must be a whole number, not {value!r}")
        if expected in ("float", float):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"setting {name} must be a number, not {value!r}")
            values[name] = float(value)
        if expected in ("bool", bool) and not isinstance(value, bool):
            raise ConfigError(f"setting {name} must be true or false, not {value!r}")
        if expected in ("str", str) and not isinstance(value, str):
            raise ConfigError(f"setting {name} must be a string, not {value!r}")
    return ServerConfig(
        applications=frozenset(apps),
        declarations=declarations,
        config_path=str(path) if path else None,
        **values,
    )
