"""The ingest service: an ASGI app speaking wire contract v1 (Abacus-compatible).

| request                       | answer                                                    |
|-------------------------------|-----------------------------------------------------------|
| PUT /v1/sessions              | 201 stored, 304 already stored, 400 invalid (every        |
|                               | violation listed), 408 too slow, 413 too large, 415 wrong |
|                               | type or encoding, 429 rate limited, 503 busy or storage   |
|                               | unavailable (both with Retry-After)                       |
| POST /v1/batches              | 200 with one result per session, in order                 |
| POST /v1/erasures             | 202 for every well-formed request (privacy/erasure.py),   |
|                               | 400 malformed, 429 rate limited                           |
| GET /ping, /healthz, /readyz  | liveness and readiness                                    |
| GET /metrics, /openapi.json   | Prometheus metrics, the API's OpenAPI document            |

A session is acknowledged only after the store reports it durably written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tallystick.privacy import erasure
from tallystick.privacy.gate import Gate
from tallystick.schema import InvalidSession, Session, ValidationError, decode_json, validation_errors
from tallystick.schema.fastpath import fast_batch, fast_fields
from tallystick.server.body import BodyError, Deadlines, check_content_type, read_body
from tallystick.server.config import ServerConfig
from tallystick.server.errors import StoreFailed
from tallystick.server.fastroute import SessionRoute
from tallystick.server.limits import Admission, RateLimiter
from tallystick.server.metrics import CONTENT_TYPE, Metrics
from tallystick.server.middleware import Edge
from tallystick.server.openapi import OPENAPI_FILE
from tallystick.storage import StorageError, Store, open_store
from tallystick.storage.layout import encode_json, session_key, stamped_json

log = logging.getLogger("tallystick.server")

_json = msgspec.json.Encoder()
ERASURE_MAX_BYTES = 4096  # {"userId": ..., "secret": ...} is about 130 bytes
_UNAVAILABLE = {"message": "Could not process request"}
_BUSY = {"message": "The service is busy: retry after the number of seconds in Retry-After"}
_RATE_LIMITED = {"message": "Too many requests from this client: retry after the number of seconds in Retry-After"}
ROUTES = frozenset(
    {
        "/v1/sessions",
        "/v1/batches",
        "/v1/erasures",
        "/v1/noop",
        "/ping",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_json.encode(body), status_code=status, media_type="application/json", headers=headers)


def error_body(message: str, errors: list[ValidationError] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["validationErrors"] = errors
    return body


@dataclass
class Outcome:
    """What became of one session: 201 stored, 304 duplicate, 400 invalid."""

    status: int
    session_id: str | None
    errors: list[ValidationError] | None = None


class Ingest:
    """Validation and storage of sessions, independent of HTTP."""

    def __init__(self, config: ServerConfig, store: Store, metrics: Metrics | None = None) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics or Metrics()
        self._stored = self.metrics.sessions.labels("stored")
        self._duplicate = self.metrics.sessions.labels("duplicate")
        self._invalid = self.metrics.sessions.labels("invalid")
        # Declarations, tombstones and quarantine (tallystick.privacy); owns the registered applications.
        self.privacy = Gate.for_config(config, store, self.metrics.registry)
        self._attached = False  # see attach()

    def attach(self) -> None:
        """On the first session: the store's own I/O (the local store's log, ``storage/_wal.py``) uses this loop."""
        self._attached = True
        self.store.attach_event_loop(asyncio.get_running_loop())

    def check(self, tree: Any) -> Session | list[ValidationError]:
        """The validated session, or every violation including an unregistered application."""
        errors = validation_errors(tree, self.config.attribute_chars)
        app = tree.get("applicationId") if isinstance(tree, dict) else None
        if (
            isinstance(app, str)
            and app not in self.privacy.applications
            and not any(e.key == "applicationId" for e in errors)
        ):
            errors.append(
                ValidationError(
                    "applicationId",
                    "registered",
                    app,
                    f"applicationId {app!r} is not registered with this server",
                )
            )
        if errors:
            return errors
        session = msgspec.convert(tree, Session)
        return self.privacy.check(session) or session

    def object_for(self, session: Session, sent: bytes | dict[str, Any] | None = None) -> tuple[str, bytes]:
        """The key and stored object of a valid session; ``sent``: the body or tree it was validated from,
        stored as sent (``layout.stamped_json``)."""
        return session_key(session), encode_json(stamped_json(session, sent, datetime.now(UTC)))

    def put(self, key: str, data: bytes) -> asyncio.Future[bool]:
        """Store durably (``stored`` tells the answer when it is done); StoreFailed if the store refuses at once."""
        try:
            return self.store.put_if_absent_future(key, data)
        except (StorageError, OSError) as exc:
            log.warning("storage failed: %s", exc)
            raise StoreFailed from exc

    def stored(self, done: asyncio.Future[bool]) -> int:
        """The answer to a finished ``put``: 201 if new, 304 if a session with its key was already stored."""
        try:
            created = done.result()
        except (StorageError, OSError) as exc:
            log.warning("storage failed: %s", exc)
            raise StoreFailed from exc
        if created:
            self._stored.inc()
            return 201
        self._duplicate.inc()
        return 304

    async def store_object(self, key: str, data: bytes) -> int:
        """``put`` and wait: 201 or 304 once durable."""
        done = self.put(key, data)
        with contextlib.suppress(StorageError, OSError):  # ``stored`` words the failure
            await done
        return self.stored(done)

    async def store_session(self, session: Session, sent: bytes | dict[str, Any] | None = None) -> int:
        """Store durably; 201 if new, 304 if a session with this key was already stored (see ``object_for``)."""
        return await self.store_object(*self.object_for(session, sent))

    def invalid(self, session_id: Any, errors: list[ValidationError], sample: Any = None) -> Outcome:
        """A 400 outcome, counted (and ``sample``, its body or tree, quarantined: see ``privacy.quarantine``)."""
        self._invalid.inc()
        for error in errors:
            self.metrics.validation_failures.labels(error.type).inc()
        self.privacy.rejected(errors, sample)
        log.debug("invalid session", extra={"validationErrors": [e.type for e in errors]})
        return Outcome(400, session_id if isinstance(session_id, str) else None, errors)

    def prepare(self, body: bytes | msgspec.Raw) -> tuple[str, bytes, str] | Outcome:
        """Validate one session's JSON text (the fast path first, see ``schema.fastpath``): its key, the object to
        store and its ID, or the 400 Outcome. Run ``privacy.maintain`` (or ``maintain_now``) first."""
        session = fast_fields(body, self.config.attribute_chars)
        if session is None or session.application_id not in self.privacy.applications:
            try:
                tree = decode_json(bytes(body))
            except InvalidSession as exc:
                return self.invalid(None, exc.errors, bytes(body))
            return self.prepare_tree(tree, bytes(body))
        errors = self.privacy.check(session)
        if errors:
            return self.invalid(session.session_id, errors, bytes(body))
        return (*self.object_for(session, bytes(body)), session.session_id)

    def prepare_tree(self, tree: Any, body: bytes | None = None) -> tuple[str, bytes, str] | Outcome:
        """``prepare`` for a session decoded by ``decode_json`` (``body``: its JSON text, if at hand)."""
        checked = self.check(tree)
        if isinstance(checked, list):
            return self.invalid(tree.get("sessionId") if isinstance(tree, dict) else None, checked, body or tree)
        return (*self.object_for(checked, tree), checked.session_id)

    def ingest_now(self, body: bytes) -> tuple[asyncio.Future[bool], str] | Outcome | None:
        """``ingest_body`` without a task, on the server's loop: the store's future (``stored`` reads it) and the
        session ID, or the 400 Outcome; None when privacy upkeep must be awaited first (use ``ingest_body``).
        StoreFailed if the store refuses at once."""
        if not self._attached:
            self.attach()
        if not self.privacy.maintain_now():
            return None
        prepared = self.prepare(body)
        if isinstance(prepared, Outcome):
            return prepared
        key, data, session_id = prepared
        return self.put(key, data), session_id

    async def ingest_body(self, body: bytes | msgspec.Raw) -> Outcome:
        """Validate and store one session's JSON text (the fast path first, see ``schema.fastpath``)."""
        if not self._attached:
            self.attach()
        await self.privacy.maintain()
        prepared = self.prepare(body)
        if isinstance(prepared, Outcome):
            return prepared
        key, data, session_id = prepared
        return Outcome(await self.store_object(key, data), session_id)

    async def ingest(self, tree: Any, body: bytes | None = None) -> Outcome:
        """Validate and store one session decoded by ``decode_json`` (``body``: its JSON text, if at hand)."""
        if not self._attached:
            self.attach()
        if body is None:
            await self.privacy.maintain()
        prepared = self.prepare_tree(tree, body)
        if isinstance(prepared, Outcome):
            return prepared
        key, data, session_id = prepared
        return Outcome(await self.store_object(key, data), session_id)

    def too_large(self, session_id: Any) -> Outcome:
        limit = self.config.max_body_bytes
        error = ValidationError("", "maxBytes", None, f"this session is larger than {limit} bytes, the limit for one")
        return self.invalid(session_id, [error])


Handler = Callable[[Request], Awaitable[Response]]


class Api:
    """The HTTP side: admission, limits and the answers of each route."""

    def __init__(self, config: ServerConfig, ingest: Ingest) -> None:
        self.config = config
        self.ingest = ingest
        self.metrics = ingest.metrics
        self.admission = Admission(config.max_in_flight)
        self.limiter = (
            RateLimiter(config.rate_limit_per_second, config.rate_limit_burst) if config.rate_limit_per_second else None
        )
        # Erasure requests: per client address, and from all clients together (one shared bucket).
        self.erasures_per_client = RateLimiter(1.0 / config.erasure_interval_seconds, config.erasure_burst)
        self.erasures_in_all = RateLimiter(config.erasure_max_per_minute / 60.0, config.erasure_max_per_minute)
        self.erasures = Counter(
            "tallystick_erasure_requests",
            "Well-formed erasure requests recorded (whether or not any session matched: that is never known here).",
            registry=self.metrics.registry,
        )
        self.unavailable_headers = {"Retry-After": str(config.retry_after_seconds)}
        self.refused = {r: self.metrics.refused.labels(r) for r in ("busy", "rate_limited", "storage")}
        self.openapi = OPENAPI_FILE.read_bytes()
        self.deadlines = Deadlines(config.body_timeout_seconds)
        self._busy = _json.encode(_BUSY)
        self._unavailable = _json.encode(_UNAVAILABLE)
        self._rate_limited = _json.encode(_RATE_LIMITED)

    def refusal(self, host: str | None) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """Rate limit, then the in-flight bound: None if the request may go on (call ``admission.leave()``
        when it is done), else the refusal's status, JSON body and headers."""
        if self.limiter is not None and host is not None:
            wait = self.limiter.retry_after(host)
            if wait:
                self.refused["rate_limited"].inc()
                return 429, self._rate_limited, [(b"retry-after", str(wait).encode())]
        if not self.admission.try_enter():
            self.refused["busy"].inc()
            return 503, self._busy, [(b"retry-after", str(self.config.busy_retry_after_seconds).encode())]
        return None

    def store_failed(self) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The answer when the store could not take a session, counted."""
        self.refused["storage"].inc()
        return 503, self._unavailable, [(b"retry-after", str(self.config.retry_after_seconds).encode())]

    def error_json(self, message: str) -> bytes:
        return _json.encode(error_body(message))

    def invalid_json(self, errors: list[ValidationError] | None) -> bytes:
        return _json.encode(error_body("The session is not valid.", errors))

    def admitted(self, handler: Handler) -> Handler:
        """Rate limit, then the in-flight bound: refused requests are answered before their body is read."""

        async def guarded(request: Request) -> Response:
            refusal = self.refusal(request.client.host if request.client is not None else None)
            if refusal is None:
                try:
                    return await handler(request)
                except StoreFailed:
                    refusal = self.store_failed()
                finally:
                    self.admission.leave()
            status, body, headers = refusal
            return Response(body, status, {k.decode(): v.decode() for k, v in headers}, "application/json")

        return guarded

    async def _body(self, request: Request, limit: int) -> bytes:
        check_content_type(request)
        return await read_body(request, limit, self.deadlines)

    async def put_session(self, request: Request) -> Response:
        try:
            body = await self._body(request, self.config.max_body_bytes)
        except BodyError as exc:
            return json_response(exc.status, error_body(exc.message))
        outcome = await self.ingest.ingest_body(body)
        if outcome.status == 400:
            return Response(self.invalid_json(outcome.errors), 400, media_type="application/json")
        return Response(status_code=outcome.status)

    async def put_noop(self, request: Request) -> Response:
        try:
            await self._body(request, self.config.max_body_bytes)
        except BodyError as exc:
            return json_response(exc.status, error_body(exc.message))
        return Response(status_code=201)

    async def post_batch(self, request: Request) -> Response:
        try:
            body = await self._body(request, self.config.max_batch_bytes)
        except BodyError as exc:
            return json_response(exc.status, error_body(exc.message))
        limit = self.config.max_body_bytes
        ingest = self.ingest
        raws = fast_batch(body)
        work: Iterable[Awaitable[Outcome]]
        if raws is not None:
            work = (ingest.ingest_body(raw) if len(raw) <= limit else _done(ingest.too_large(None)) for raw in raws)
        else:
            try:
                tree = decode_json(body)
            except InvalidSession as exc:
                return json_response(400, error_body("The batch is not valid JSON.", exc.errors))
            problem = _batch_problem(tree)
            if problem is not None:
                return json_response(400, error_body("The batch is not valid.", [problem]))
            work = (
                ingest.ingest(item) if len(json.dumps(item)) <= limit else _done(ingest.too_large(_session_id(item)))
                for item in tree["sessions"]
            )
        outcomes = await asyncio.gather(*work)
        results = []
        for outcome in outcomes:
            result: dict[str, Any] = {"sessionId": outcome.session_id, "status": outcome.status}
            if outcome.errors is not None:
                result["validationErrors"] = outcome.errors
            results.append(result)
        return json_response(200, {"results": results})

    async def post_erasure(self, request: Request) -> Response:
        """Record an erasure; the answer depends on the request's form only (see privacy/erasure.py)."""
        host = request.client.host if request.client is not None else ""
        wait = self.erasures_per_client.retry_after(host) or self.erasures_in_all.retry_after("")
        if wait:
            self.refused["rate_limited"].inc()
            return json_response(429, _RATE_LIMITED, {"Retry-After": str(wait)})
        try:
            body = await self._body(request, ERASURE_MAX_BYTES)
            tree = decode_json(body)
        except BodyError as exc:
            return json_response(exc.status, error_body(exc.message))
        except InvalidSession as exc:
            return json_response(400, error_body("The erasure request is not valid JSON.", exc.errors))
        problems = erasure.problems(tree)
        if problems:
            return json_response(400, error_body("The erasure request is not valid.", problems))
        wanted = erasure.request_for(tree["userId"], tree["secret"], datetime.now(UTC))
        try:
            await erasure.record(self.ingest.store, self.ingest.privacy.tombstones, wanted)
        except (StorageError, OSError) as exc:
            log.warning("storage failed: %s", exc)
            raise StoreFailed from exc
        self.erasures.inc()
        return json_response(202, erasure.ANSWER)

    async def ping(self, request: Request) -> Response:
        return PlainTextResponse("pong")

    async def ready(self, request: Request) -> Response:
        try:
            await asyncio.to_thread(self.ingest.store.check)
        except (StorageError, OSError) as exc:
            log.warning("not ready: %s", exc)
            return json_response(503, {"message": "storage unavailable"}, self.unavailable_headers)
        return PlainTextResponse("ready")

    async def metrics_page(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def openapi_page(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}: use {allowed}"
        elif exc.status_code == 404:
            message = f"{request.url.path} is not a path of this API: see /openapi.json"
        else:
            message = str(exc.detail)
        return json_response(exc.status_code, {"message": message}, dict(exc.headers or {}))


def create_app(config: ServerConfig, store: Store | None = None) -> Edge:
    """The ingest service as an ASGI app; ``store`` defaults to the one ``config`` names."""
    metrics = Metrics()
    store = store or open_store(config.storage_url)
    store.open_log()  # the local store: this process becomes the directory's one writer, or StoreLocked says who is
    ingest = Ingest(config, store, metrics)
    api = Api(config, ingest)
    routes = [
        Route("/v1/sessions", api.admitted(api.put_session), methods=["PUT"]),
        Route("/v1/batches", api.admitted(api.post_batch), methods=["POST"]),
        Route("/v1/erasures", api.admitted(api.post_erasure), methods=["POST"]),
        Route("/ping", api.ping, methods=["GET"]),
        Route("/healthz", api.ping, methods=["GET"]),
        Route("/readyz", api.ready, methods=["GET"]),
        Route("/metrics", api.metrics_page, methods=["GET"]),
        Route("/openapi.json", api.openapi_page, methods=["GET"]),
    ]
    if config.noop_endpoint:
        routes.append(Route("/v1/noop", api.admitted(api.put_noop), methods=["PUT"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: api.http_error})
    # No redirect from /v1/sessions/ to /v1/sessions: behind a TLS proxy its Location would say http://,
    # and a client following it would send the session in clear text. A path not listed is 404.
    app.router.redirect_slashes = False
    app.state.ingest = ingest
    # PUT /v1/sessions skips Starlette (fastroute.py); the Route above stays for other callers of ``app``.
    sessions = SessionRoute(api)
    edge = Edge(app, metrics, ROUTES, log_requests=config.log_requests, direct={"/v1/sessions": sessions})
    edge.state = app.state  # what the CLI and tests look up (``app.state.ingest``)
    edge.raw_route = (b"PUT", b"/v1/sessions", sessions)  # answered by our protocol itself (``run.make_server``)
    return edge


def _session_id(item: Any) -> Any:
    return item.get("sessionId") if isinstance(item, dict) else None


async def _done(outcome: Outcome) -> Outcome:
    return outcome


def _batch_problem(tree: Any) -> ValidationError | None:
    limit = 100
    if not isinstance(tree, dict):
        return ValidationError("", "type", None, "body must be an object with a sessions array")
    for dup in getattr(tree, "duplicates", ()):
        return ValidationError(dup, "duplicateKey", dup, f"{dup} appears more than once")
    extra = [k for k in tree if k != "sessions"]
    if extra:
        return ValidationError(extra[0], "unknownField", extra[0], f"{extra[0]} is not a field of a batch")
    sessions = tree.get("sessions")
    if not isinstance(sessions, list):
        return ValidationError("sessions", "required", None, "sessions is required and must be an array")
    if len(sessions) > limit:
        return ValidationError("sessions", "maxItems", len(sessions), f"sessions must have at most {limit} items")
    return None
