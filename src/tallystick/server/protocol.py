"""uvicorn's httptools protocol with bounds on request headers: time, bytes and count.

Every server the project starts (``serve``, ``up``: ingest and dashboard) runs this
protocol (``run.make_server``), so the bounds hold whatever the application does.

- **Time** (slowloris). uvicorn closes idle keep-alive connections, but a client that
  connects and then sends its headers a byte at a time holds a connection forever. Here
  a connection must deliver a request's complete headers within ``header_timeout``
  seconds of connecting or of its previous response, or it gets ``408`` and is closed.
  The body has its own deadline, enforced while reading it (``body.py``).
- **Bytes and count.** httptools gathers a header's name and value in memory until the
  header ends, and uvicorn keeps every header: one 100 MiB header was held whole (and
  answered ``201``). Here the bytes a request sends before its headers end (request line
  included) are counted as they arrive, before the parser sees them, and past
  ``max_header_bytes``, or past ``max_headers`` header lines, the request gets ``431``
  and the connection is closed. So a connection holds at most ``max_header_bytes`` plus
  one read (asyncio reads at most 256 KiB at a time) of header data.

Counting: a request's count starts at its first byte (``on_message_begin``) and stops
when its headers end. A read that arrives while a request's headers are incomplete counts
whole; a read that completes them is not counted (its tail is body): instead, when the
headers end, their parsed size (URL, names, values, plus line ends) is checked before the
app sees the request. So the limit holds to within a few bytes per header line, and
memory to the limit plus one read.

The hot route. A server whose app has a ``raw_route`` (``server/fastroute.py``: ``PUT
/v1/sessions``) answers that route's ordinary requests here, without ASGI: when a request's
headers end, the route says whether it takes it (``takes``); if so its body is gathered from
the parser and, when the request is complete within the same read, handed to the route
(``handle``), which answers through ``reply`` (now or from a callback). A request whose body is
not complete by the end of that read goes to the app after all, with what arrived of its
body, as does every request the route does not take: the app then applies the body's
deadline and limits. While such an answer is pending, the connection's next request waits
(uvicorn's pipelining: ``_Answering`` stands in for its request cycle), so answers keep
their order.

Closing: the ``431`` is written, the sending side shut (``write_eof``), and what the
client still sends is read and dropped for up to ``LINGER_SECONDS`` before closing: closing
a socket with unread data makes the kernel send a reset, which can destroy the answer
before the client reads it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tallystick.server.middleware import SECURITY_HEADERS

LINGER_SECONDS = 1.0
_SECURITY = b"".join(b"%s: %s\r\n" % pair for pair in SECURITY_HEADERS)


def _answer(status: bytes, message: bytes) -> bytes:
    """A whole answer written by the protocol itself (no app runs), with the security headers."""
    body = b'{"message": "%s"}' % message
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\n" % status
    return head + _SECURITY + b"content-length: %d\r\n\r\n%s" % (len(body), body)


_BAD_REQUEST = _answer(b"400 Bad Request", b"invalid HTTP request")


_TIMEOUT_ANSWER = _answer(b"408 Request Timeout", b"request headers took too long: send them in one go")


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback to stop it at once."""


class RawRoute(Protocol):
    """A route answered by the protocol itself (``fastroute.SessionRoute``)."""

    def takes(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """Given a request's headers: None to leave it to the app, else a value for ``handle``."""

    def handle(self, connection: Any, body: bytes, taken: bytes) -> None:
        """Answer a complete request through ``connection.reply``, once, now or later."""


class _NoEvent:
    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()


class _Answering:
    """In place of uvicorn's request cycle while the raw route answers (the attributes uvicorn uses)."""

    __slots__ = ("disconnected", "keep_alive", "response_complete")
    message_event = _NO_EVENT

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.disconnected = False
        self.response_complete = False


_READING = 1  # the raw route took this request; its body is being gathered


def protocol_class(
    header_timeout: float,
    max_header_bytes: int = 32 * 1024,
    max_headers: int = 100,
    raw_route: tuple[bytes, bytes, RawRoute] | None = None,
) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with these header bounds.

    ``raw_route``: (method, path, route) of the route this protocol answers itself (see the module docstring).
    """
    raw_method, raw_path, route = raw_route or (b"", b"", None)
    too_large = _answer(
        b"431 Request Header Fields Too Large",
        b"request headers too large: at most %d bytes and %d header lines" % (max_header_bytes, max_headers),
    )

    class BoundedHeadersProtocol(HttpToolsProtocol):
        # The header clock: when the current request's headers are due (None: none are awaited), and
        # one timer per connection that checks it. Starting and stopping the clock only sets the time;
        # the timer is re-armed when it fires early, so a request costs no timer of its own.
        _due: float | None = None
        _timer: asyncio.TimerHandle | None = None
        _in_headers = True  # a new connection's first bytes are a request's headers
        _header_bytes = 0
        _header_count = 0
        _received = 0  # bytes read on this connection, up to the end of the read being parsed
        _read_from = 0  # ... up to its start
        _begun_at = 0  # ... up to the start of the read in which the current request began
        _refused = False
        _raw = 0  # _READING while the raw route's request is being read
        _taken = b""  # what the raw route's ``takes`` said
        _body: list[bytes] | None = None  # the body so far of the raw route's request
        _answering: _Answering  # the raw route's request being answered
        _date = None  # uvicorn's default headers (the date) for which _date_lines was made
        _date_lines = b""
        # The keep-alive clock, like the header clock: since when the connection has been idle after an
        # answer (None: busy), and one timer per connection that checks it, where uvicorn arms and
        # cancels a timer for every answer.
        _idle_from: float | None = None
        _idle_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._start_clock()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # lingering after a 431: drop what the client still sends
            self._read_from = self._received
            self._received += len(data)
            if self._in_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if self._in_headers and self._header_bytes > max_header_bytes and not self._refused:
                self._refuse()
            if self._raw:  # the raw route's request is not complete in this read: the app takes it over
                self._raw = 0
                body, self._body = self._body, None
                if self._refused or self.transport.is_closing():
                    return
                self._to_app()
                for part in body or ():
                    HttpToolsProtocol.on_body(self, part)

        def on_message_begin(self) -> None:
            self._in_headers = True
            self._header_bytes = 0
            self._header_count = 0
            self._begun_at = self._read_from
            # The first byte of a request on a kept-alive connection starts its clock.
            if self._due is None:
                self._start_clock()
            # uvicorn's, without the ASGI scope: ``_to_app`` makes it for a request that goes to the app.
            self.url = b""
            self.expect_100_continue = False
            self.headers = []

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > max_headers:
                self._refused_by_parser = True
                raise _HeadersTooLarge
            # uvicorn's, inline.
            name = name.lower()
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.headers.append((name, value))

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._due = None
            # Headers that arrived in one read were not counted on the way in: measure them now,
            # before the app sees the request (request line and line ends estimated, not counted).
            # The estimate exceeds the bytes sent by at most 1 + a byte per line, and those bytes came in
            # the reads since the one where the request began: when these are small (most requests), the
            # estimate cannot pass the limit and is not worked out.
            if self._received - self._begun_at + 1 + self._header_count > max_header_bytes:
                size = len(self.url) + 16 + sum(len(n) + len(v) + 4 for n, v in self.headers)
                if size > max_header_bytes:
                    self._refused_by_parser = True
                    raise _HeadersTooLarge
            if route is not None and self.url == raw_path and not self.expect_100_continue:
                parser = self.parser
                cycle = self.cycle
                if (
                    (cycle is None or cycle.response_complete)
                    and parser.get_method() == raw_method
                    and parser.get_http_version() == "1.1"
                    and not parser.should_upgrade()
                ):
                    taken = route.takes(self.headers)
                    if taken is not None:
                        self._raw = _READING
                        self._taken = taken
                        self._body = []
                        return
            self._to_app()

        def _to_app(self) -> None:
            """uvicorn's handling of a request's head: the ASGI scope, a request cycle, the app's task."""
            url, headers, expect = self.url, self.headers, self.expect_100_continue
            HttpToolsProtocol.on_message_begin(self)
            self.url, self.expect_100_continue = url, expect
            self.headers.extend(headers)  # the list the scope holds
            HttpToolsProtocol.on_headers_complete(self)

        def on_body(self, body: bytes) -> None:
            if self._raw:
                self._body.append(body)  # type: ignore[union-attr]
            else:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._raw:
                super().on_message_complete()
                return
            self._raw = 0
            parts, self._body = self._body or [b""], None
            self._answering = self.cycle = _Answering(self.parser.should_keep_alive())  # type: ignore[assignment]
            route.handle(self, parts[0] if len(parts) == 1 else b"".join(parts), self._taken)  # type: ignore[union-attr]

        def reply(self, status: int, headers: bytes, body: bytes, *, close: bool = False) -> None:
            """The raw route's answer: the status line, uvicorn's default headers (the date), ``headers``, ``body``."""
            cycle = self._answering  # not always self.cycle: a pipelined request may have gone to the app since
            cycle.response_complete = True
            keep_alive = cycle.keep_alive and not close
            transport = self.transport
            if not cycle.disconnected and not transport.is_closing():
                defaults = self.server_state.default_headers
                if defaults is not self._date:
                    type(self)._date = defaults
                    type(self)._date_lines = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
                connection = b"" if keep_alive else b"connection: close\r\n"
                transport.write(b"%s%s%s%s\r\n%s" % (STATUS_LINE[status], self._date_lines, headers, connection, body))
                if not keep_alive:
                    transport.close()
            self.on_response_complete()

        def send_400_response(self, msg: str) -> None:
            # uvicorn answers a parser error with 400; a stop by ``on_header`` above is a 431.
            if getattr(self, "_refused_by_parser", False):
                self._refuse()
                return
            self.transport.write(_BAD_REQUEST)  # uvicorn's own would lack the security headers
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            self._idle_from = None
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            super().connection_lost(exc)

        def _unset_keepalive_if_required(self) -> None:
            self._idle_from = None

        def on_response_complete(self) -> None:
            # uvicorn's, with the keep-alive clock above in place of a timer per answer.
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self._idle_from = None
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self._idle_from = now = self.loop.time()
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_at(now + self.timeout_keep_alive, self._check_idle)

        def _check_idle(self) -> None:
            self._idle_timer = None
            if self._idle_from is None:
                return  # busy: the next answer starts the clock again
            due = self._idle_from + self.timeout_keep_alive
            if self.loop.time() < due - 0.001:  # idle since a later answer: look again when that runs out
                self._idle_timer = self.loop.call_at(due, self._check_idle)
                return
            self.timeout_keep_alive_handler()

        def _refuse(self) -> None:
            self._refused = True
            self._disarm()
            if self.transport.is_closing():
                return
            self.transport.write(too_large)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def _start_clock(self) -> None:
            self._due = self.loop.time() + header_timeout
            if self._timer is None:
                self._timer = self.loop.call_at(self._due, self._check_clock)

        def _check_clock(self) -> None:
            self._timer = None
            if self._due is None:
                return  # no headers awaited: the next request's first byte starts the clock again
            if self.loop.time() < self._due - 0.001:  # a later request's clock: look again when it runs out
                self._timer = self.loop.call_at(self._due, self._check_clock)
                return
            self._headers_too_slow()

        def _disarm(self) -> None:
            self._due = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _headers_too_slow(self) -> None:
            self._due = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    return BoundedHeadersProtocol
