"""uvicorn's httptools protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections, but a client that connects and then
sends its headers a byte at a time (slowloris) holds a connection forever. Here a
connection must deliver a request's complete headers within ``header_timeout``
seconds of connecting or of its previous response, or it gets ``408`` and is
closed. The body has its own deadline, enforced while reading it (``body.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT_BODY = b'{"message": "request headers took too long: send them in one go"}'
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


def protocol_class(header_timeout: float) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with this header deadline."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_message_begin(self) -> None:
            # The first byte of a request on a kept-alive connection starts its clock.
            if self._header_deadline is None:
                self._arm()
            super().on_message_begin()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_deadline = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    return HeaderDeadlineProtocol
