"""HTTP/1.1 for the uploader, on a bare socket: proxies, verified TLS. Imported only where uploads run.

``http.client`` costs ~17 ms to import (most of it the ``email`` package). A
request here is one JSON body out and one small answer back, on a fresh
connection that is closed after it (``Connection: close``), so a minimal client
suffices: status line, headers, then a body by Content-Length, chunks, or EOF.

It behaves like curl and the standard library where users expect it to:

- ``https_proxy``/``HTTPS_PROXY`` for https, ``http_proxy``/``HTTP_PROXY`` for http
  (the upper-case one ignored under CGI, where it could come from a request header),
  ``all_proxy``/``ALL_PROXY`` otherwise; lower case wins. A proxy URL may carry
  ``user:password@`` (percent-encoded); it is sent as ``Proxy-Authorization: Basic``
  and never appears in an error message or a log line. https goes through a
  ``CONNECT`` tunnel; http in absolute form.
- ``no_proxy``/``NO_PROXY``: comma- or space-separated; ``*`` matches every host; a
  name matches itself and its subdomains (a leading dot or ``*.`` is ignored); an IP
  literal or a CIDR block matches addresses; ``:port`` restricts an entry to that port.
- TLS verifies the certificate and the host name against the system store plus every CA
  location the user named that exists: ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` (OpenSSL's own),
  ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` (what Python users behind a TLS-intercepting
  proxy are told to set). All of them, not the first: real machines set several at once to
  different files (the system bundle in one, the company's CA added to another), and the
  upload should work wherever the user's other tools do. Each only adds CAs the user chose
  to trust; a missing path (left from another machine) or an unreadable file is skipped;
  nothing turns verification off.
- An answer sent before the peer reset the connection while the body was going out (a proxy's
  413 or 407, sent as soon as the headers said too much) is read and returned, not lost as a reset;
  so is one whose end is a reset instead of an end of file. A connection closed with no answer at
  all raises ``NoAnswer``: the uploader tells a body too large for a proxy from a dead network by it.
- Interim ``1xx`` answers (a ``100 Continue`` some proxies and servers send unasked, as HTTP/1.1 lets
  them) are skipped, as every HTTP/1.1 client must; a chunked page cut short keeps its status.
"""

from __future__ import annotations

import socket
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping
    from typing import BinaryIO

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_HEADER_LINES = 100
MAX_INTERIM = 10  # 1xx answers skipped before the final one


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.x as expected."""


class ProxyError(OSError):
    """The proxy cannot be reached, refused to open a tunnel, or is misconfigured."""


class ProxyAuthError(ProxyError):
    """The proxy wants credentials (its 407 to ``CONNECT``): none in the proxy URL, or not these."""


class NoAnswer(OSError):
    """The connection was closed (or reset) before any byte of an answer: a proxy refusing a body too large
    without saying so, one wanting credentials, or a network cut. ``proxy``: the connection was a proxy's."""

    def __init__(self, message: str, *, proxy: bool) -> None:
        super().__init__(message)
        self.proxy = proxy


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
    scheme, _, host, port, path = _parse_url(url)
    return scheme, host, port, path


def _parse_url(url: str, default_scheme: str | None = None) -> tuple[str, str, str, int, str]:
    """``scheme, userinfo, host, port, path``; a URL without scheme gets ``default_scheme``."""
    scheme, sep, rest = url.partition("://")
    if not sep and default_scheme is not None:
        scheme, rest = default_scheme, url
    scheme = scheme.lower()
    if scheme not in {"http", "https"}:
        raise ProtocolError(f"unsupported URL scheme {scheme!r}: use http:// or https://")
    authority, slash, path = rest.partition("/")
    authority = authority.partition("?")[0].partition("#")[0]
    userinfo, at, authority = authority.rpartition("@")
    if not at:
        userinfo = ""
    port = 443 if scheme == "https" else 80
    if authority.startswith("["):  # IPv6 literal
        host, _, tail = authority[1:].partition("]")
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    else:
        host, colon, number = authority.partition(":")
        if colon and number:
            if not number.isdigit():
                raise ProtocolError(f"bad port in URL for host {host!r}")
            port = int(number)
    if not host:
        raise ProtocolError("no host in URL")
    return scheme, userinfo, host, port, slash + path if slash else "/"


def redirect_target(url: str, location: str) -> tuple[str | None, str]:
    """Where a redirect from ``url`` may be followed, or None and why not.

    Only to the same host (any port), over the same scheme or from http to https: the
    sessions go only where ``server_url`` says, never to a host it does not name (a captive
    portal's login page, a hijacked answer), never in clear text after TLS. No credentials
    in the target. ``location`` may be relative; a fragment is dropped.
    """
    if not location.strip():
        return None, "no Location"
    from urllib.parse import urljoin

    target = urljoin(url, location.strip()).partition("#")[0]
    try:
        scheme, userinfo, host, _, _ = _parse_url(target)
        old_scheme, _, old_host, _, _ = _parse_url(url)
    except ProtocolError:
        return None, "not to an http(s) URL"
    if userinfo:
        return None, "the target carries credentials"
    if old_scheme == "https" and scheme == "http":
        return None, "it leads from https to plain http"
    if host.lower().rstrip(".") != old_host.lower().rstrip("."):
        return None, f"it leads to another host ({host}) than server_url names"
    return target, ""


def shown_url(url: str) -> str:
    """``url`` without userinfo, query or fragment: what a log line may show."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    path = path.partition("?")[0].partition("#")[0]
    return f"{scheme}{sep}{authority}{slash}{path}"


def _env(environ: Mapping[str, str], name: str) -> str:
    """The lower-case variable, else the upper-case one (not ``HTTP_PROXY`` under CGI)."""
    value = environ.get(name.lower())
    if value is None and not (name == "HTTP_PROXY" and "REQUEST_METHOD" in environ):
        value = environ.get(name.upper())
    return (value or "").strip()


def proxy_for(scheme: str, host: str, port: int, environ: Mapping[str, str]) -> str | None:
    """The proxy URL to reach ``host:port`` over ``scheme``, or None to connect directly."""
    proxy = _env(environ, f"{scheme.upper()}_PROXY") or _env(environ, "ALL_PROXY")
    if not proxy or bypass_proxy(host, port, _env(environ, "NO_PROXY")):
        return None
    return proxy


def bypass_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` says to reach ``host:port`` directly (rules in this module's docstring)."""
    host = host.lower().rstrip(".").strip("[]")
    address = _ip(host)
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [v6]:port
            inner, _, tail = entry[1:].partition("]")
            entry = inner
            if tail.startswith(":") and tail[1:].isdigit():
                entry_port = int(tail[1:])
        elif entry.count(":") == 1:  # name:port or v4:port (a bare v6 address has several colons)
            name, _, number = entry.partition(":")
            if not number.isdigit():
                continue
            entry, entry_port = name, int(number)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None or _ip(entry.partition("/")[0]) is not None:
            if address is not None and _in_network(address, entry):
                return True
            continue
        entry = entry.removeprefix("*").lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


def _ip(text: str) -> object | None:
    if not text or not (text[0].isdigit() or ":" in text):
        return None
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _in_network(address: object, entry: str) -> bool:
    import ipaddress

    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return address in network


def _basic(userinfo: str) -> str:
    import base64
    from urllib.parse import unquote

    user, _, password = userinfo.partition(":")
    token = f"{unquote(user)}:{unquote(password)}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def ca_locations(environ: Mapping[str, str]) -> list[tuple[str | None, str | None]]:
    """``(cafile, capath)`` for each CA variable naming a file or a directory that exists."""
    import os

    found: list[tuple[str | None, str | None]] = []
    for name in CA_VARIABLES:
        value = environ.get(name) or ""
        if value and os.path.isfile(value):
            location: tuple[str | None, str | None] = (value, None)
        elif value and os.path.isdir(value):
            location = (None, value)
        else:
            continue
        if location not in found:
            found.append(location)
    return found


def tls_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """A verifying client context: the system store and every CA location ``ca_locations`` finds."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names
    context.load_default_certs()
    for cafile, capath in ca_locations(environ):
        try:  # noqa: SIM105  (contextlib costs an import)
            context.load_verify_locations(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError):  # unreadable, or not certificates: the others still apply
            pass
    return context


def send(
    method: str,
    url: str,
    body: bytes,
    *,
    timeout: float,
    user_agent: str,
    environ: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Response:
    """One request with a JSON body; raises OSError on any network, TLS, proxy or protocol trouble.

    ``environ`` supplies the proxy and certificate variables (default: none). ``timeout``
    bounds the whole request, not each read: a server or proxy that drips its answer a
    byte at a time (a slow loris) fails as ``timeout`` like one that never answers.
    """
    deadline = time.monotonic() + timeout
    environ = environ or {}
    scheme, _, host, port, path = _parse_url(url)
    proxy = proxy_for(scheme, host, port, environ)
    proxy_auth = ""
    if proxy is not None:
        try:
            proxy_scheme, userinfo, proxy_host, proxy_port, _ = _parse_url(proxy, default_scheme="http")
        except ProtocolError as exc:
            raise ProxyError(f"unusable proxy setting: {exc}") from None
        if proxy_scheme != "http":
            raise ProxyError("only http:// proxies are supported")
        if userinfo:
            proxy_auth = f"Proxy-Authorization: {_basic(userinfo)}\r\n"
        try:
            sock = socket.create_connection((proxy_host, proxy_port), timeout=timeout)
        except OSError as exc:  # named as the proxy's: "refused" would blame the server; no URL, no password
            raise ProxyError(f"cannot reach the proxy: {type(exc).__name__}") from None
    else:
        sock = socket.create_connection((host, port), timeout=timeout)
    try:
        bracketed = host if ":" not in host else f"[{host}]"
        authority = bracketed if port == (443 if scheme == "https" else 80) else f"{bracketed}:{port}"
        target = path
        if scheme == "https":
            import ssl

            if proxy is not None:
                _connect_tunnel(sock, f"{bracketed}:{port}", proxy_auth, deadline)
                proxy_auth = ""
            sock.settimeout(_left(deadline))
            sock = (context or tls_context(environ)).wrap_socket(sock, server_hostname=host)
            assert isinstance(sock, ssl.SSLSocket)
        elif proxy is not None:
            target = f"http://{authority}{path}"
        head = (
            f"{method} {target} HTTP/1.1\r\n"
            f"Host: {authority}\r\n"
            f"{proxy_auth}"
            "Content-Type: application/json\r\n"
            "Accept: application/json\r\n"
            f"User-Agent: {user_agent}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        sock.settimeout(_left(deadline))
        return _exchange(sock, head.encode("latin-1") + body, deadline, proxy=proxy is not None)
    finally:
        sock.close()


def _closed(exc: OSError) -> bool:
    """Whether ``exc`` says the peer closed or reset the connection (TLS's unannounced end included)."""
    return isinstance(exc, ConnectionError) or type(exc).__name__ in {"SSLEOFError", "SSLZeroReturnError"}


def _exchange(sock: socket.socket, request: bytes, deadline: float, *, proxy: bool) -> Response:
    """Send ``request`` and read the answer on ``sock``; ``proxy``: the connection is a proxy's (or its tunnel).

    Closed or reset before any answer: ``NoAnswer``. A proxy that refuses a body as too large, or
    wants credentials, may do that instead of answering, or answer and close before reading the body.
    """
    try:
        sock.sendall(request)
    except OSError as exc:
        if not _closed(exc):
            raise
        # The answer sent before the close (a proxy's 413 or 407, as soon as the headers said too much)
        # can still be in the socket's buffer.
        early = _early_answer(sock, deadline)
        if early is not None:
            return early
        raise NoAnswer("the connection was closed while the request went out, with no answer", proxy=proxy) from None
    try:
        return _read_response(_Reader(sock, deadline))
    except NoAnswer as exc:
        exc.proxy = proxy
        raise
    except OSError as exc:
        if not _closed(exc):
            raise
        raise NoAnswer("the connection was closed before an answer", proxy=proxy) from None


def _early_answer(sock: socket.socket, deadline: float) -> Response | None:
    """The answer already received on a connection the peer reset while the body was going out, if whole."""
    try:
        return _read_response(_Reader(sock, deadline))
    except OSError:  # ProtocolError too: nothing, or not a whole answer
        return None


def _left(deadline: float) -> float:
    """Seconds left before ``deadline``; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no complete answer within the request timeout")
    return left


class _Reader:
    """``readline``/``read`` on a socket, every ``recv`` within one deadline for the whole answer."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buffer = bytearray()
        self.lenient = False

    def _fill(self) -> bool:
        self._sock.settimeout(_left(self._deadline))
        try:
            chunk = self._sock.recv(65536)
        except OSError as exc:
            # Once the status line is in, a reset while the rest comes (a proxy closing a refused upload
            # with the body unread) ends the answer, like an end of file; before it, it is no answer.
            if not (self.lenient and _closed(exc)):
                raise
            chunk = b""
        self._buffer += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        taken = bytes(self._buffer[:n])
        del self._buffer[:n]
        return taken

    def readline(self, limit: int) -> bytes:
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buffer) >= limit or not self._fill():
                return self._take(limit)

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n and self._fill():
            pass
        return self._take(n)


def _connect_tunnel(sock: socket.socket, authority: str, proxy_auth: str, deadline: float) -> None:
    """Ask the proxy for a tunnel to ``authority``; raises ProxyError unless it answers 2xx."""
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{proxy_auth}\r\n".encode("latin-1"))
    # Byte by byte up to the blank line: nothing after it may be read, it belongs to TLS.
    head = bytearray()
    while not head.endswith(b"\r\n\r\n") and not head.endswith(b"\n\n"):
        sock.settimeout(_left(deadline))
        byte = sock.recv(1)
        if not byte:
            raise ProxyError("the proxy closed the connection before answering CONNECT")
        head += byte
        if len(head) > 65536:
            raise ProxyError("the proxy's answer to CONNECT is too long")
    parts = bytes(head).split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProxyError("the proxy's answer to CONNECT is not HTTP")
    status = int(parts[1])
    if status == 407:
        raise ProxyAuthError("the proxy wants credentials (407)")
    if not 200 <= status < 300:
        raise ProxyError(f"the proxy answered CONNECT with {status}")


def _read_response(stream: _Reader | BinaryIO) -> Response:
    """The final answer on ``stream``: interim ``1xx`` answers before it (a ``100 Continue`` some proxies and
    servers send unasked) are skipped; a body cut short by the end of the connection is kept as far as it came."""
    readline, read = stream.readline, stream.read
    status_line = readline(8192)
    if not status_line:
        raise NoAnswer("the connection was closed before an answer", proxy=False)
    if isinstance(stream, _Reader):
        stream.lenient = True
    for _ in range(MAX_INTERIM):
        status, headers = _read_head(status_line, readline)
        if not 100 <= status < 200 or status == 101:
            break
        status_line = readline(8192)
    else:
        raise ProtocolError("too many interim answers")
    if status in {204, 304} or 100 <= status < 200:
        return Response(status, headers, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_RESPONSE_BYTES:
            raw = readline(1024)
            if not raw:  # the connection ended before the last chunk
                break
            try:
                size = int(raw.split(b";", 1)[0].strip(), 16)
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


def _read_head(status_line: bytes, readline: Callable[[int], bytes]) -> tuple[int, dict[str, str]]:
    """The status and the headers (names in lower case) of an answer whose status line was read."""
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP answer: {status_line[:80]!r}")
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
    return int(parts[1]), headers


def error_kind(exc: BaseException) -> str:
    """A short name for why a request failed, for the client's own counters (no host names, no URLs)."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, ProxyAuthError):
        return "proxyauth"
    if isinstance(exc, ProxyError) or (isinstance(exc, NoAnswer) and exc.proxy):
        return "proxy"
    if isinstance(exc, ProtocolError):
        return "protocol"
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, socket.gaierror):
        return "dns"
    return "network"
