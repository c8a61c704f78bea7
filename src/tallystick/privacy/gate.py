"""The ingest service's one call into privacy: declarations, tombstones and quarantine per session.

``Ingest`` asks ``check(session)`` for every valid session (the declaration of its
application, then the tombstones) and reports every rejection to ``rejected``.
``maintain()``, awaited once per session, does the periodic work off the request
path: re-reading the config file's declarations (SIGHUP, or its mtime checked every
``reload_check_seconds``), refreshing tombstones (every ``tombstone_refresh_seconds``)
and scheduling a quarantine flush a few seconds after a rejection.

Reload: only the ``applications`` of the config file are re-read; applications
given on the command line stay registered. A file that no longer parses is logged
(one line) and the previous declarations stay in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter

from tallystick.privacy.conformance import check
from tallystick.privacy.declarations import Declaration, parse_applications
from tallystick.privacy.errors import DeclarationError
from tallystick.privacy.quarantine import Quarantine
from tallystick.privacy.tombstones import Tombstones
from tallystick.schema import ValidationError
from tallystick.schema._rules import ERASURE_COMMITMENT_ATTRIBUTE
from tallystick.storage import StorageError, Store

log = logging.getLogger("tallystick.privacy")

FLUSH_SECONDS = 2.0


def read_applications(path: str) -> tuple[set[str], dict[str, Declaration]]:
    """The applications (and declarations) of a config file; raises DeclarationError with what to fix."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DeclarationError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DeclarationError(f"cannot read {path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    return parse_applications(data.get("applications", []), path)


class PrivacySettings(Protocol):
    """The privacy part of the ingest service's config: what a gate is built from."""

    @property
    def applications(self) -> frozenset[str]: ...
    @property
    def declarations(self) -> Mapping[str, Declaration]: ...
    @property
    def config_path(self) -> str | None: ...
    @property
    def reload_check_seconds(self) -> float: ...
    @property
    def tombstone_refresh_seconds(self) -> float: ...
    @property
    def quarantine_samples(self) -> bool: ...
    @property
    def quarantine_max_samples(self) -> int: ...
    @property
    def quarantine_sample_bytes(self) -> int: ...


class Gate:
    """Per-session privacy checks and bookkeeping for one ingest app."""

    def __init__(
        self,
        store: Store,
        registry: CollectorRegistry,
        *,
        applications: frozenset[str],
        declarations: Mapping[str, Declaration],
        config_path: str | None = None,
        reload_check_seconds: float = 2.0,
        tombstone_refresh_seconds: float = 10.0,
        quarantine_samples: bool = True,
        quarantine_max_samples: int = 200,
        quarantine_sample_bytes: int = 16 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.applications = applications
        self.declarations = dict(declarations)
        self.config_path = config_path
        self.reload_check_seconds = reload_check_seconds
        self.clock = clock
        self.tombstones = Tombstones(store, refresh_seconds=tombstone_refresh_seconds, clock=clock)
        self.quarantine = Quarantine(
            store, samples=quarantine_samples, max_samples=quarantine_max_samples, sample_bytes=quarantine_sample_bytes
        )
        self.rejections = Counter(
            "tallystick_rejected_sessions",
            "Sessions answered 400, by application, version and rule (see `tallystick rejects`).",
            ["application", "version", "rule"],
            registry=registry,
        )
        self.undeclared_names = Counter(
            "tallystick_undeclared_names",
            "Names sessions carried without declaring them (open mode), by application.",
            ["application"],
            registry=registry,
        )
        self._base = applications
        self._stamp: tuple[int, int] | None = None
        self._checked = clock()
        self._reload_requested = False
        self._flushing: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Future[None] | None = None  # the tombstone refresh running, if any
        if config_path:
            self._stamp = self._file_stamp()
            with contextlib.suppress(DeclarationError):  # it was just read by load_config
                self._base = applications - read_applications(config_path)[0]

    @classmethod
    def for_config(cls, config: PrivacySettings, store: Store, registry: CollectorRegistry) -> Gate:
        """A gate with the privacy settings of a server's config (``tallystick.server.config.ServerConfig``)."""
        return cls(
            store,
            registry,
            applications=config.applications,
            declarations=config.declarations,
            config_path=config.config_path,
            reload_check_seconds=config.reload_check_seconds,
            tombstone_refresh_seconds=config.tombstone_refresh_seconds,
            quarantine_samples=config.quarantine_samples,
            quarantine_max_samples=config.quarantine_max_samples,
            quarantine_sample_bytes=config.quarantine_sample_bytes,
        )

    # --- per session ---------------------------------------------------------------------------

    def check(self, session: Any) -> list[ValidationError]:
        """Violations of the application's declaration (strict mode) and of a deletion, for a valid session."""
        errors: list[ValidationError] = []
        declaration = self.declarations.get(session.application_id)
        if declaration is not None:
            findings = check(declaration, session)
            errors = findings.errors
            if findings.undeclared:
                self.quarantine.undeclared(session.application_id, findings.undeclared)
                self.undeclared_names.labels(session.application_id).inc(len(set(findings.undeclared)))
                self._schedule_flush()
        attributes = session.attributes
        commitment = attributes.get(ERASURE_COMMITMENT_ATTRIBUTE) if attributes else None
        deleted = self.tombstones.refuses(session.user_id, session.session_start_time, commitment)
        if deleted is not None:
            errors.append(
                ValidationError(
                    "userId",
                    "deletedUser",
                    session.user_id,
                    f"the data of this user ID was deleted at {deleted.isoformat()}; sessions that started "
                    "before then are not accepted: do not send them again",
                )
            )
        return errors

    def rejected(self, errors: list[ValidationError], sample: Any) -> None:
        """Count a 400 answer; ``sample`` is the body (bytes) or decoded tree it was for, if any."""
        tree = sample
        body: bytes | None = None
        if isinstance(sample, bytes | bytearray | memoryview):
            body = bytes(sample)
            try:
                tree = json.loads(body)
            except (ValueError, RecursionError):
                tree = None
        elif sample is not None:
            try:
                body = json.dumps(sample, ensure_ascii=False, default=str).encode()
            except (ValueError, RecursionError):
                body = None
        fields = tree if isinstance(tree, dict) else {}
        app, version = self.quarantine.labels(
            fields.get("applicationId"), fields.get("applicationVersion"), self.applications
        )
        attributes = fields.get("attributes")
        whose = {
            "userId": fields.get("userId"),
            "sessionId": fields.get("sessionId"),
            "commitment": attributes.get(ERASURE_COMMITMENT_ATTRIBUTE) if isinstance(attributes, dict) else None,
        }
        self.quarantine.rejected(app, version, errors, body, whose=whose)
        for rule in sorted({e.type for e in errors}):
            self.rejections.labels(app, version, rule).inc()
        self._schedule_flush()

    # --- periodic work -----------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Re-read the declarations before the next session (the SIGHUP handler; signal-safe)."""
        self._reload_requested = True

    def maintain_now(self) -> bool:
        """The part of ``maintain`` that needs no await; False when a tombstone refresh is due (await ``maintain``)."""
        if self._reload_requested or (self.config_path and self.clock() - self._checked >= self.reload_check_seconds):
            self.reload_if_changed()
        if self.tombstones.due():
            return False
        if self.quarantine.dirty:
            self._schedule_flush()
        return True

    async def maintain(self) -> None:
        """Reload declarations and refresh tombstones when due; cheap when nothing is."""
        if self.maintain_now():
            return
        # One refresh at a time, which every session that finds it due waits for: a refresh per request
        # while one ran (each listing the store) made busy minutes of them, and seconds of waiting.
        refreshing = self._refreshing
        if refreshing is None or refreshing.done():
            refreshing = self._refreshing = asyncio.ensure_future(self._refresh())
        await asyncio.shield(refreshing)
        if self.quarantine.dirty:
            self._schedule_flush()

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self.tombstones.refresh)
        except (StorageError, OSError) as exc:
            log.warning("could not read tombstones (keeping the previous ones): %s", exc)
            self.tombstones._refreshed = self.clock()

    def reload_if_changed(self) -> bool:
        """Re-read the config file's applications if it changed or a reload was requested; whether it did."""
        forced, self._reload_requested = self._reload_requested, False
        self._checked = self.clock()
        if not self.config_path:
            return False
        stamp = self._file_stamp()
        if stamp == self._stamp and not forced:
            return False
        self._stamp = stamp
        try:
            apps, declarations = read_applications(self.config_path)
        except DeclarationError as exc:
            log.warning("kept the previous declarations: %s", exc)
            return False
        self.applications = frozenset(self._base | apps)
        self.declarations = declarations
        log.info(
            "reloaded the declarations of %s",
            self.config_path,
            extra={"applications": sorted(self.applications), "declared": sorted(declarations)},
        )
        return True

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.config_path or "")
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _schedule_flush(self) -> None:
        if self._flushing is not None and not self._flushing.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flushing = loop.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await asyncio.to_thread(self.quarantine.flush)
        except (StorageError, OSError) as exc:
            log.warning("could not write the quarantine counts (retrying later): %s", exc)
            self.quarantine.dirty = True

    def flush(self) -> None:
        """Write the quarantine now (blocking; for shutdown and tests)."""
        self.quarantine.flush()
