"""``PUT /v1/sessions`` as a plain ASGI handler: the one route where microseconds count.

Every other route goes through Starlette (``app.py``). This one is dispatched by ``Edge``
before Starlette's router, middleware stack, ``Request`` and ``Response`` objects, which
together cost a durable request about a fifth of its time. The answers are the same as
Starlette's would be (status, JSON body, ``content-length``/``content-type``; ``Edge``'s
headers), and the rules the same as ``Api``'s: rate limit and admission first, then the
body's content type, framing, size and deadline (``body.py``), then ``Ingest.ingest_body``.
Any method but PUT falls through to Starlette, which answers 405 with ``Allow``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from tallystick.server.body import BodyError, check_framing, check_media_type
from tallystick.server.errors import StoreFailed

if TYPE_CHECKING:
    from tallystick.server.app import Api

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}
_NO_CONTENT = (b"content-length", b"0")
_JSON = (b"content-type", b"application/json")


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
        content_type = encoding = length = None
        for name, value in raw_headers:
            # The first of each, as Starlette's Headers.get.
            if name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"content-encoding":
                encoding = value if encoding is None else encoding
            elif name == b"content-length":
                length = value if length is None else length
        check_media_type(content_type.decode("latin-1") if content_type else "")
        gzipped = check_framing(
            encoding.decode("latin-1") if encoding else None, length.decode("latin-1") if length else None, self.limit
        )
        return await self.deadlines.read(receive, self.limit, gzipped)
