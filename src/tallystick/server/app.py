"""The ingest service: an ASGI app speaking wire contract v1 (Abacus-compatible).

| request                       | answer                                                    |
|-------------------------------|-----------------------------------------------------------|
| PUT /v1/sessions              | 201 stored, 304 already stored, 400 invalid (every        |
|                               | violation listed), 413 too large, 415 wrong type or       |
|                               | encoding, 503 storage unavailable (with Retry-After)      |
| POST /v1/batches              | 200 with one result per session, in order                 |
| GET /ping, /healthz, /readyz  | liveness and readiness                                    |

A session is acknowledged only after the store reports it durably written.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tallystick.schema import InvalidSession, Session, ValidationError, decode_json, validation_errors
from tallystick.server.body import BodyError, check_content_type, read_body
from tallystick.server.config import ServerConfig
from tallystick.storage import StorageError, Store, open_store
from tallystick.storage.layout import encode_session, session_key

log = logging.getLogger("tallystick.server")

_json = msgspec.json.Encoder()
_UNAVAILABLE = {"message": "Could not process request"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_json.encode(body), status_code=status, media_type="application/json", headers=headers)


def error_body(message: str, errors: list[ValidationError] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["validationErrors"] = errors
    return body


class StoreFailed(Exception):
    """The store could not take a session; the client should retry later."""


@dataclass
class Outcome:
    """What became of one session: 201 stored, 304 duplicate, 400 invalid."""

    status: int
    session_id: str | None
    errors: list[ValidationError] | None = None


class Ingest:
    """Validation and storage of sessions, independent of HTTP."""

    def __init__(self, config: ServerConfig, store: Store) -> None:
        self.config = config
        self.store = store

    def check(self, tree: Any) -> Session | list[ValidationError]:
        """The validated session, or every violation including an unregistered application."""
        errors = validation_errors(tree)
        app = tree.get("applicationId") if isinstance(tree, dict) else None
        if (
            isinstance(app, str)
            and app not in self.config.applications
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
        return msgspec.convert(tree, Session)

    async def store_session(self, session: Session) -> int:
        """Store durably; 201 if new, 304 if a session with this key was already stored."""
        stamped = msgspec.structs.replace(session, ingestion_time=datetime.now(UTC))
        data = encode_session(stamped)
        try:
            created = await self.store.put_if_absent_async(session_key(session), data)
        except (StorageError, OSError) as exc:
            log.warning("storage failed: %s", exc)
            raise StoreFailed from exc
        return 201 if created else 304

    async def ingest(self, tree: Any) -> Outcome:
        checked = self.check(tree)
        if isinstance(checked, list):
            sid = tree.get("sessionId") if isinstance(tree, dict) else None
            return Outcome(400, sid if isinstance(sid, str) else None, checked)
        return Outcome(await self.store_session(checked), checked.session_id)


def create_app(config: ServerConfig, store: Store | None = None) -> Starlette:
    """The ingest service as an ASGI app; ``store`` defaults to the one ``config`` names."""
    ingest = Ingest(config, store or open_store(config.storage_url))
    unavailable_headers = {"Retry-After": str(config.retry_after_seconds)}

    async def put_session(request: Request) -> Response:
        try:
            check_content_type(request)
            body = await read_body(request, config.max_body_bytes)
            outcome = await ingest.ingest(decode_json(body))
        except BodyError as exc:
            return json_response(exc.status, error_body(exc.message))
        except InvalidSession as exc:
            return json_response(400, error_body("The session is not valid.", exc.errors))
        except StoreFailed:
            return json_response(503, _UNAVAILABLE, unavailable_headers)
        if outcome.status == 400:
            return json_response(400, error_body("The session is not valid.", outcome.errors))
        return Response(status_code=outcome.status)

    async def post_batch(request: Request) -> Response:
        try:
            check_content_type(request)
            body = await read_body(request, config.max_batch_bytes)
            tree = decode_json(body)
        except BodyError as exc:
            return json_response(exc.status, error_body(exc.message))
        except InvalidSession as exc:
            return json_response(400, error_body("The batch is not valid JSON.", exc.errors))
        problem = _batch_problem(tree)
        if problem is not None:
            return json_response(400, error_body("The batch is not valid.", [problem]))
        try:
            outcomes = await asyncio.gather(*(ingest.ingest(item) for item in tree["sessions"]))
        except StoreFailed:
            return json_response(503, _UNAVAILABLE, unavailable_headers)
        results = []
        for outcome in outcomes:
            result: dict[str, Any] = {"sessionId": outcome.session_id, "status": outcome.status}
            if outcome.errors is not None:
                result["validationErrors"] = outcome.errors
            results.append(result)
        return json_response(200, {"results": results})

    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong")

    async def ready(request: Request) -> Response:
        try:
            await asyncio.to_thread(ingest.store.check)
        except (StorageError, OSError) as exc:
            log.warning("not ready: %s", exc)
            return json_response(503, {"message": "storage unavailable"}, unavailable_headers)
        return PlainTextResponse("ready")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path}: use {allowed}"
        else:
            message = str(exc.detail)
        return json_response(exc.status_code, {"message": message}, dict(exc.headers or {}))

    routes = [
        Route("/v1/sessions", put_session, methods=["PUT"]),
        Route("/v1/batches", post_batch, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/healthz", ping, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.ingest = ingest
    return app


def _batch_problem(tree: Any) -> ValidationError | None:
    limit = 100
    if not isinstance(tree, dict):
        return ValidationError("", "type", None, "body must be an object with a sessions array")
    extra = [k for k in tree if k != "sessions"]
    if extra:
        return ValidationError(extra[0], "unknownField", extra[0], f"{extra[0]} is not a field of a batch")
    sessions = tree.get("sessions")
    if not isinstance(sessions, list):
        return ValidationError("sessions", "required", None, "sessions is required and must be an array")
    if len(sessions) > limit:
        return ValidationError("sessions", "maxItems", len(sessions), f"sessions must have at most {limit} items")
    return None
