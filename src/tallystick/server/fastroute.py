"""``PUT /v1/sessions``, the one route where microseconds count, without Starlette or ASGI.

Every other route goes through Starlette (``app.py``). This one is answered two ways:

* **Straight from the protocol** (``SessionRoute.handle``): ``server/protocol.py`` parses the
  request and, when it is an ordinary one (``SessionRoute.takes``: a declared length within the
  limit, no content encoding, a JSON content type, no ``Expect``, the whole body in the read that
  ended its headers), hands the body here. It is validated, handed to the store, and answered from
  the store's future by a callback: no ASGI scope or messages, no task, no Starlette objects.
* **As a plain ASGI handler** (``SessionRoute.__call__``), dispatched by ``Edge`` before
  Starlette's router, for every other request to this route (gzip, chunked, a trickling body,
  odd headers) and for callers of the app without our protocol.

The answers are the same either way, and the same as Starlette's would be (status, JSON body,
``content-length``/``content-type``; ``Edge``'s headers), as are the rules: rate limit and
admission first, then the body's content type, framing, size and deadline (``body.py``), then
``Ingest``. Metrics, the request ID and the optional request log line are ``Edge``'s. Any
method but PUT falls through to Starlette, which answers 405 with ``Allow``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from tallystick.server.body import BodyError, check_framing, check_media_type
from tallystick.server.errors import StoreFailed
from tallystick.server.logs import new_request_id, request_id
from tallystick.server.middleware import SECURITY_HEADERS

if TYPE_CHECKING:
    from tallystick.server.app import Api, Outcome

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

log = logging.getLogger("tallystick.server")
requests_log = logging.getLogger("tallystick.server.requests")

_EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}
_NO_CONTENT = (b"content-length", b"0")
_JSON = (b"content-type", b"application/json")
_SECURITY_LINES = b"".join(b"%s: %s\r\n" % pair for pair in SECURITY_HEADERS)
_NO_CONTENT_LINES = b"content-length: 0\r\n" + _SECURITY_LINES + b"x-request-id: "
_TEXT = b"text/plain; charset=utf-8"
Answer = tuple[int, bytes, Headers]  # status, body (JSON unless a 500's text), headers beyond Edge's
_FAILED: Answer = (500, b"Internal Server Error", [])  # what uvicorn answers when an ASGI app raises


_CHUNKED, _FORWARDED = 1, 2


def _request_headers(headers: Headers) -> tuple[bytes | None, bytes | None, bytes | None, bytes | None, int]:
    """The first Content-Type, Content-Encoding, Content-Length and X-Request-ID (as Starlette's ``Headers.get``),
    and flags: _CHUNKED for a Transfer-Encoding, _FORWARDED for an X-Forwarded-For."""
    content_type = encoding = length = given = None
    other = 0
    for name, value in headers:
        if name == b"content-length":
            length = value if length is None else length
        elif name == b"content-type":
            content_type = value if content_type is None else content_type
        elif name == b"x-request-id":
            given = value if given is None else given
        elif name == b"content-encoding":
            encoding = value if encoding is None else encoding
        elif name == b"transfer-encoding":
            other |= _CHUNKED
        elif name == b"x-forwarded-for":
            other |= _FORWARDED
    return content_type, encoding, length, given, other


class Connection(Protocol):
    """What ``SessionRoute.handle`` needs of the connection a request came on (``server/protocol.py``)."""

    client: tuple[str, int] | None

    def reply(self, status: int, headers: bytes, body: bytes, *, close: bool = False) -> None:
        """Write the answer: the status line, the server's own headers, ``headers`` (whole lines), ``body``."""


async def answer(send: Send, status: int, headers: Headers, body: bytes = b"") -> int:
    """Send a complete answer (``headers`` are Edge's: security headers and the request ID); its status."""
    if body:
        head = [(b"content-length", str(len(body)).encode()), _JSON, *headers]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})
    else:
        await send({"type": "http.response.start", "status": status, "headers": [_NO_CONTENT, *headers]})
        await send(_EMPTY_BODY)
    return status


class SessionRoute:
    """``PUT /v1/sessions`` of one ``Api``: call it with the request and Edge's headers, get the status sent."""

    method = "PUT"

    def __init__(self, api: Api) -> None:
        self.api = api
        self.ingest = api.ingest
        self.limit = api.config.max_body_bytes
        self.deadlines = api.deadlines
        self.metrics = api.metrics
        self.log_requests = api.config.log_requests
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- straight from the protocol ------------------------------------------------------------

    def takes(self, headers: Headers) -> bytes | None:
        """Whether ``handle`` may answer a PUT with these headers once its body is in: the ``X-Request-ID`` it
        gave (``b""`` if none), or None when the ASGI route must (it alone words the refusals of bodies)."""
        content_type, encoding, length, given, other = _request_headers(headers)
        if encoding is not None or other & _CHUNKED or (other & _FORWARDED and self.api.limiter is not None):
            # Decoding and reassembly are the ASGI route's; with a rate limit, so is a proxied request (whose
            # client is then the one uvicorn's proxy-headers middleware finds).
            return None
        if length is None or not length.isdigit() or int(length) > self.limit:
            return None
        if content_type != b"application/json":
            try:
                check_media_type(content_type.decode("latin-1") if content_type else "")
            except BodyError:
                return None
        return given or b""

    def handle(self, connection: Connection, body: bytes, given: bytes) -> None:
        """Answer one request that ``takes`` took, now or from the store's callback (``connection.reply``)."""
        started = time.perf_counter()
        rid = new_request_id(given)
        token = request_id.set(rid)
        self.metrics.in_flight += 1
        try:
            try:
                answer = self._begin(connection, body, rid, started)
            except Exception:
                log.exception("PUT /v1/sessions failed")
                answer = _FAILED
            if answer is not None:
                self._reply(connection, rid, started, answer)
        finally:
            request_id.reset(token)

    def _begin(self, connection: Connection, body: bytes, rid: str, started: float) -> Answer | None:
        """The answer now, or None when a callback of the store's future (or of a task) will give it."""
        api = self.api
        client = connection.client
        refusal = api.refusal(client[0] if client else None)
        if refusal is not None:
            return refusal
        try:
            result = self.ingest.ingest_now(body)
        except StoreFailed:
            api.admission.leave()
            return api.store_failed()
        except BaseException:
            api.admission.leave()
            raise
        if isinstance(result, tuple):
            result[0].add_done_callback(partial(self._finish, self._stored_answer, connection, rid, started))
            return None
        if result is None:  # privacy upkeep to await first: the coroutine route, as a task
            task = asyncio.ensure_future(self.ingest.ingest_body(body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(partial(self._finish, self._outcome_answer, connection, rid, started))
            return None
        api.admission.leave()
        return 400, api.invalid_json(result.errors), []

    def _stored_answer(self, done: asyncio.Future[bool]) -> Answer:
        return self.ingest.stored(done), b"", []

    def _outcome_answer(self, task: asyncio.Future[Outcome]) -> Answer:
        outcome = task.result()
        return outcome.status, self.api.invalid_json(outcome.errors) if outcome.status == 400 else b"", []

    def _finish(
        self,
        answer_of: Callable[[asyncio.Future[Any]], Answer],
        connection: Connection,
        rid: str,
        started: float,
        done: asyncio.Future[Any],
    ) -> None:
        """The callback of the store's future (or of the task): answer with what ``answer_of`` makes of it.

        It runs in a copy of the context ``handle`` had (asyncio's rule), so the request ID is set."""
        self.api.admission.leave()
        try:
            answer = answer_of(done)
        except StoreFailed:
            answer = self.api.store_failed()
        except Exception:
            log.exception("PUT /v1/sessions failed")
            answer = _FAILED
        self._reply(connection, rid, started, answer)

    def _reply(self, connection: Connection, rid: str, started: float, answer: Answer) -> None:
        """Answer as the ASGI route, ``Edge`` and uvicorn would (same headers, in the same order); count it."""
        status, body, extra = answer
        if not body:
            connection.reply(status, b"%s%s\r\n" % (_NO_CONTENT_LINES, rid.encode()), b"")
        else:
            head = b"content-length: %d\r\ncontent-type: %s\r\n%sx-request-id: %s\r\n" % (
                len(body),
                _TEXT if status == 500 else b"application/json",
                _SECURITY_LINES,
                rid.encode(),
            )
            for name, value in extra:
                head += b"%s: %s\r\n" % (name, value)
            connection.reply(status, head, body, close=status == 500)
        metrics = self.metrics
        metrics.in_flight -= 1
        seconds = time.perf_counter() - started
        metrics.request_done("/v1/sessions", status, seconds)
        if self.log_requests:
            requests_log.info(
                "%s %s %d",
                "PUT",
                "/v1/sessions",
                status,
                extra={"method": "PUT", "route": "/v1/sessions", "status": status, "ms": round(seconds * 1000, 2)},
            )

    # --- as an ASGI handler ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> int:
        api = self.api
        client = scope.get("client")
        refusal = api.refusal(client[0] if client else None)
        if refusal is not None:
            status, body, extra = refusal
            return await answer(send, status, [*headers, *extra], body)
        try:
            try:
                data = await self._body(scope["headers"], receive)
            except BodyError as exc:
                return await answer(send, exc.status, headers, api.error_json(exc.message))
            outcome = await self.ingest.ingest_body(data)
            if outcome.status == 400:
                return await answer(send, 400, headers, api.invalid_json(outcome.errors))
            return await answer(send, outcome.status, headers)
        except StoreFailed:
            status, body, extra = api.store_failed()
            return await answer(send, status, [*headers, *extra], body)
        finally:
            api.admission.leave()

    async def _body(self, raw_headers: Headers, receive: Receive) -> bytes:
        content_type, encoding, length, _, _ = _request_headers(raw_headers)
        check_media_type(content_type.decode("latin-1") if content_type else "")
        gzipped = check_framing(
            encoding.decode("latin-1") if encoding else None, length.decode("latin-1") if length else None, self.limit
        )
        return await self.deadlines.read(receive, self.limit, gzipped)
