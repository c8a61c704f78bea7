"""HTTP/1.1 for the uploader, on a bare socket. Imported only by the upload thread.

``http.client`` costs ~17 ms to import (most of it the ``email`` package), and
an import on the upload thread holds the GIL the host tool's main thread needs.
A request here is one JSON body out and one small answer back, on a fresh
connection that is closed after it (``Connection: close``), so a minimal client
suffices: status line, headers, then a body by Content-Length, chunks, or EOF.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_HEADER_LINES = 100


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.x as expected."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Response({self.status})"


def split_url(url: str) -> tuple[str, str, int, str]:
    """``scheme, host, port, path`` of an http(s) URL."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in {"http", "https"}:
        raise ProtocolError(f"unsupported URL {url!r}: use http:// or https://")
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    port = 443 if scheme == "https" else 80
    if authority.startswith("["):  # IPv6 literal
        host, _, tail = authority[1:].partition("]")
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    else:
        host, colon, number = authority.partition(":")
        if colon:
            if not number.isdigit():
                raise ProtocolError(f"bad port in {url!r}")
            port = int(number)
    if not host:
        raise ProtocolError(f"no host in {url!r}")
    return scheme, host, port, slash + path if slash else "/"


def send(method: str, url: str, body: bytes, *, timeout: float, user_agent: str) -> Response:
    """One request with a JSON body; raises OSError on any network or protocol trouble."""
    scheme, host, port, path = split_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if scheme == "https":
            import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        default_port = 443 if scheme == "https" else 80
        host_header = host if ":" not in host else f"[{host}]"
        if port != default_port:
            host_header += f":{port}"
        head = (
            f"{method} {path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            "Content-Type: application/json\r\n"
            "Accept: application/json\r\n"
            f"User-Agent: {user_agent}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.sendall(head.encode("latin-1") + body)
        with sock.makefile("rb") as stream:
            return _read_response(stream)
    finally:
        sock.close()


def _read_response(stream: BinaryIO) -> Response:
    readline, read = stream.readline, stream.read
    status_line = readline(8192)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP answer: {status_line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = readline(65536)
        if line in {b"\r\n", b"\n", b""}:
            break
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    else:
        raise ProtocolError("too many header lines")
    if status in {204, 304} or 100 <= status < 200:
        return Response(status, headers, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_RESPONSE_BYTES:
            size_line = readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if size == 0:
                break
            chunks.append(read(size))
            total += size
            readline(16)
        return Response(status, headers, b"".join(chunks)[:MAX_RESPONSE_BYTES])
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return Response(status, headers, read(min(int(length), MAX_RESPONSE_BYTES)))
    return Response(status, headers, read(MAX_RESPONSE_BYTES))
