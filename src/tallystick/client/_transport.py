"""HTTP for the uploader. Imported only by the upload thread: the network stack costs ~25 ms."""

from __future__ import annotations

import http.client
import urllib.parse

MAX_RESPONSE_BYTES = 1024 * 1024


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Response({self.status})"


def send(method: str, url: str, body: bytes, *, timeout: float, user_agent: str) -> Response:
    """One request with a JSON body; raises OSError or http.client.HTTPException on network trouble."""
    parts = urllib.parse.urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout)
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    else:
        raise OSError(f"unsupported URL scheme {parts.scheme!r}: use http or https")
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": user_agent,
        "Connection": "close",
    }
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(MAX_RESPONSE_BYTES)
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()
