"""Fixtures of the client tests: the example tool as a subprocess, and small misbehaving servers.

Every server here listens on 127.0.0.1 port 0, runs in daemon threads, stops at
the end of its test and, as a backstop, by itself after ``SERVER_LIFETIME`` seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fixtures.common import free_port, require_tool, wait_until
from fixtures.ingest import session_tree
from tallystick.client._queue import file_name
from tallystick.client._session import CI_SYSTEMS, new_uuid4

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mytool.py"
SERVER_LIFETIME = 120.0
TOOL_TIMEOUT = 60.0


class FakeIngest:
    """An HTTP server that answers like the ingest API (or as scripted) and counts what it receives.

    ``status``: answer every request with this status (and ``headers``); None means
    behave: 201 for a new session, 304 for a repeat, 200 with results for a batch.
    ``batches``: whether ``/v1/batches`` exists (404 if not). ``delay``: seconds to
    wait before answering.
    """

    def __init__(
        self,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        batches: bool = True,
        delay: float = 0.0,
        *,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.status = status
        self.headers = headers or {}
        self.batches = batches
        self.delay = delay
        self.received: list[str] = []  # every session ID in every request, repeats included
        self.requests: list[tuple[str, str, int]] = []  # method, path, sessions in it
        self.bodies: list[Any] = []
        self._lock = threading.Lock()
        server_class = ThreadingHTTPServer
        if ":" in host:  # an IPv6 loopback server

            class server_class(ThreadingHTTPServer):  # type: ignore[no-redef]
                address_family = socket.AF_INET6

        self._server = server_class((host, 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        if tls is not None:  # the handshake runs in each request's thread, not in the accept loop
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        bracketed = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if tls else 'http'}://{bracketed}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._timer = threading.Timer(SERVER_LIFETIME, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        with self._lock:
            found: dict[str, int] = {}
            for session_id in self.received:
                found[session_id] = found.get(session_id, 0) + 1
            return found

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            tree = json.loads(body)
        except ValueError:
            tree = None
        sessions = []
        if path == "/v1/sessions" and isinstance(tree, dict):
            sessions = [tree]
        elif path == "/v1/batches" and isinstance(tree, dict) and self.batches:
            sessions = list(tree.get("sessions", []))
        with self._lock:
            self.requests.append((method, path, len(sessions)))
            self.bodies.append(tree)
            seen = set(self.received)
            self.received.extend(str(s.get("sessionId")) for s in sessions)
        if self.delay:
            time.sleep(self.delay)
        if self.status is not None:
            return self.status, self.headers, b'{"message": "scripted answer"}'
        if path == "/v1/sessions" and method == "PUT":
            return (304 if sessions[0].get("sessionId") in seen else 201), {}, b""
        if path == "/v1/batches" and method == "POST" and self.batches:
            results = [
                {"sessionId": s.get("sessionId"), "status": 304 if s.get("sessionId") in seen else 201}
                for s in sessions
            ]
            return 200, {"Content-Type": "application/json"}, json.dumps({"results": results}).encode()
        if path == "/v1/erasures" and method == "POST":
            return 202, {"Content-Type": "application/json"}, b'{"message": "Erasure recorded"}'
        return 404, {}, b'{"message": "not found"}'

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                if isinstance(self.request, ssl.SSLSocket):
                    self.request.settimeout(10)
                    self.request.do_handshake()  # a client that refuses the certificate ends here
                super().setup()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers, payload = fake._answer(self.command, self.path, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST = do_GET = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class AcceptLoop:
    """A socket on 127.0.0.1 accepting connections until stopped (or ``SERVER_LIFETIME``); each goes to
    ``connected``, by default ``serve`` on a thread of its own. Subclasses call ``listen`` last in ``__init__``."""

    def listen(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self._socket.settimeout(0.05)
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._deadline = time.monotonic() + SERVER_LIFETIME
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.connected(connection)
        self.closing()
        self._socket.close()

    def connected(self, connection: socket.socket) -> None:
        threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection: socket.socket) -> None:
        connection.close()

    def closing(self) -> None:
        """The loop has ended."""

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class BlackHole(AcceptLoop):
    """A socket that accepts connections and never answers."""

    def __init__(self) -> None:
        self.accepted = 0
        self._held: list[socket.socket] = []
        self.listen()

    def connected(self, connection: socket.socket) -> None:
        self.accepted += 1
        self._held.append(connection)

    def closing(self) -> None:
        for connection in self._held:
            connection.close()


class SlowLoris(AcceptLoop):
    """A server (or a proxy) that reads a request, then drips ``answer`` one byte every ``pause`` seconds."""

    def __init__(self, answer: bytes, pause: float = 0.2) -> None:
        self.answer = answer
        self.pause = pause
        self.listen()

    def serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.settimeout(5)
                connection.recv(65536)
                for byte in self.answer:
                    if self._stop.wait(self.pause):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return


@pytest.fixture
def slow_loris() -> Iterator[Callable[..., SlowLoris]]:
    """Factory: ``slow_loris(answer, pause=0.2)`` → a running SlowLoris."""
    servers: list[SlowLoris] = []

    def start(answer: bytes, pause: float = 0.2) -> SlowLoris:
        server = SlowLoris(answer, pause)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def fake_ingest() -> Iterator[Callable[..., FakeIngest]]:
    """Factory: ``fake_ingest(status=None, headers=None, batches=True, delay=0, tls=None, host="127.0.0.1")``."""
    servers: list[FakeIngest] = []

    def start(**options: Any) -> FakeIngest:
        server = FakeIngest(**options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A server that accepts connections and stays silent."""
    hole = BlackHole()
    yield hole
    hole.stop()


def clean_environment(home: Path) -> dict[str, str]:
    """This process's environment without anything that steers telemetry, and a private home."""
    steering = {variable for variable, _ in CI_SYSTEMS} | {"DO_NOT_TRACK", "XDG_DATA_HOME", "container"}
    env = {k: v for k, v in os.environ.items() if k not in steering and not k.startswith(("MYTOOL_", "TALLYSTICK"))}
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / "data")
    return env


class Tool:
    """The example tool, run as a real subprocess with its own home and data directory."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        # Every run may upload (the default pause after a success is 10 minutes); tests of the pause set their own.
        # Nothing ever goes to the example's public default URL: a closed local port unless a test says otherwise.
        self.env = {
            **clean_environment(home),
            "MYTOOL_TELEMETRY_UPLOAD_INTERVAL": "0",
            "MYTOOL_TELEMETRY_URL": "http://127.0.0.1:9",
        }
        self.data_dir = home / "data" / "mytool" / "telemetry"
        self.queue_dir = self.data_dir / "queue"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(EXAMPLE), *args]

    def run(self, *args: str, env: dict[str, str] | None = None, **options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
            **options,
        )

    def allow(self) -> None:
        """Store consent the way ``mytool telemetry allow`` does."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "consent").write_text("allowed")

    def queue_sessions(self, n: int = 2, start: float = 1_800_000_000.0) -> list[str]:
        """Put ``n`` sessions from earlier runs in the queue, so the uploader has work; their IDs."""
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        ids = []
        for i in range(n):
            session_id = new_uuid4()
            tree = session_tree(session_id)
            (self.queue_dir / file_name(start + i, session_id)).write_text(json.dumps(tree))
            ids.append(session_id)
        return ids

    def queued(self) -> list[Path]:
        if not self.queue_dir.exists():
            return []
        return sorted(p for p in self.queue_dir.iterdir() if p.suffix == ".json" and not p.name.startswith("."))

    def queued_ids(self) -> set[str]:
        return {json.loads(p.read_text())["sessionId"] for p in self.queued()}


@pytest.fixture
def tool(tmp_path: Path) -> Tool:
    """The example tool with a fresh home; consent not yet given."""
    return Tool(tmp_path / "home")


@pytest.fixture(scope="module")
def shared_ingest() -> Iterator[FakeIngest]:
    """One well-behaved counting server for a whole test module."""
    server = FakeIngest()
    yield server
    server.stop()


class FakeStream:
    """A text stream standing in for stderr, saying whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.written: list[str] = []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.written)


@pytest.fixture
def stream() -> Callable[[bool], FakeStream]:
    """Factory for fake stderr streams: ``stream(tty=True)``."""
    return FakeStream


class Certificates:
    """A test CA (trustme) with a certificate for 127.0.0.1, and another CA that signed nothing here."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1")
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.wrong_ca_file = directory / "wrong-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(self.wrong_ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.configure_cert(context)
        return context


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    """A fresh test CA and a server certificate for 127.0.0.1."""
    return Certificates(tmp_path)


class Daemon:
    """A server process of the system's listening on 127.0.0.1 ``port``: waited for, then stopped."""

    process: subprocess.Popen[bytes]
    port: int
    name = "daemon"

    def _listening(self) -> bool:
        assert self.process.poll() is None, f"{self.name} exited"
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class TinyProxy(Daemon):
    """Debian's tinyproxy on 127.0.0.1, optionally asking for a user and password; its log says what it relayed."""

    def __init__(self, directory: Path, auth: tuple[str, str] | None = None) -> None:
        binary = shutil.which("tinyproxy")
        require_tool(binary is not None, "tinyproxy", "apt-get install tinyproxy (python3 dev.py test does it as root)")
        assert binary is not None
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = directory / "tinyproxy.log"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            "MaxClients 100",
            "Allow 127.0.0.1",
            "LogLevel Connect",
            f'LogFile "{self.log_file}"',
            "DisableViaHeader Yes",
        ]
        if auth is not None:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        config = directory / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self._listening, timeout=15, what="tinyproxy listening")

    name = "tinyproxy"

    def relayed(self) -> list[str]:
        """The requests the proxy handled, e.g. ``CONNECT 127.0.0.1:5000`` or ``PUT http://127.0.0.1:5000/v1/sessions``."""
        if not self.log_file.exists():
            return []
        found = []
        for line in self.log_file.read_text().splitlines():
            if "Request (file descriptor" in line:
                found.append(line.split("): ", 1)[1].rsplit(" HTTP/", 1)[0])
        return found


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Callable[..., TinyProxy]]:
    """Factory: ``tinyproxy(auth=None)`` → a running TinyProxy (``auth=("user", "password")`` asks for Basic auth)."""
    proxies: list[TinyProxy] = []

    def start(auth: tuple[str, str] | None = None) -> TinyProxy:
        proxy = TinyProxy(tmp_path / f"proxy{len(proxies)}", auth)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


class InterceptingProxy(AcceptLoop):
    """A corporate proxy that intercepts TLS: Basic auth on CONNECT, then it answers the TLS handshake itself
    with a certificate for the requested host issued by its own CA (the one corporate users are told to
    trust), and relays the decrypted request to the real server over TLS it verifies with ``upstream_ca``.

    ``max_body``: a request body larger than this is refused as soon as its headers are in, the body
    left unread (so the connection ends in a reset): ``over="413"`` answers with an HTML page of its own,
    ``Connection: close`` and no length (the page ends where the connection does); ``over="close"``
    closes with no answer at all. ``close_over``: a body larger than this is closed on with no
    answer, whatever ``over`` says (a proxy with two limits).
    """

    def __init__(
        self,
        directory: Path,
        upstream_ca: Path,
        auth: tuple[str, str],
        *,
        max_body: int | None = None,
        over: str = "413",
        close_over: int | None = None,
    ) -> None:
        import base64

        import trustme

        self.ca = trustme.CA()
        self.ca_file = directory / "corporate-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1").configure_cert(self._server_context)
        self._upstream_context = ssl.create_default_context(cafile=str(upstream_ca))
        self._expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        self.intercepted: list[str] = []  # the decrypted request lines, e.g. "PUT /v1/sessions HTTP/1.1"
        self.refused = 0  # CONNECTs without the right credentials
        self.max_body = max_body
        self.over = over
        self.close_over = close_over
        self.too_large: list[int] = []  # the sizes of the bodies refused
        self.listen()

    def serve(self, connection: socket.socket) -> None:
        client = connection
        try:
            client.settimeout(10)
            head = self._read_head(client)
            if head is None:
                return
            method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split()[:2]
            authorization = dict(self._header_items(head)).get("proxy-authorization")
            if method != "CONNECT" or authorization != self._expected:
                self.refused += 1
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            inner = self._server_context.wrap_socket(client, server_side=True)
            request = self._read_head(inner)
            if request is None:
                return
            length = int(next((v for k, v in self._header_items(request) if k == "content-length"), "0"))
            if self.max_body is not None and length > self.max_body:
                self.too_large.append(length)
                if self.over == "413" and (self.close_over is None or length <= self.close_over):
                    page = b"<html><head><title>413 Request Entity Too Large</title></head><body>Blocked</body></html>"
                    inner.sendall(b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: text/html\r\n")
                    inner.sendall(b"Connection: close\r\n\r\n" + page)
                    time.sleep(0.2)  # then closed with the body unread: the connection ends in a reset
                inner.close()
                return
            while len(request) - request.index(b"\r\n\r\n") - 4 < length:
                request += inner.recv(65536)
            self.intercepted.append(request.split(b"\r\n", 1)[0].decode("latin-1"))
            raw = socket.create_connection((host, int(port)), timeout=10)
            with self._upstream_context.wrap_socket(raw, server_hostname=host) as upstream:
                upstream.sendall(request)
                while chunk := upstream.recv(65536):
                    inner.sendall(chunk)
            inner.close()
        except (OSError, ValueError):
            return
        finally:
            client.close()

    @staticmethod
    def _read_head(sock: socket.socket) -> bytes | None:
        """Bytes up to and including the blank line after the headers (and what came with them); None at EOF."""
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            head += chunk
        return head

    @staticmethod
    def _header_items(request: bytes) -> list[tuple[str, str]]:
        lines = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        return [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines)]


@pytest.fixture
def intercepting_proxy(tmp_path: Path) -> Iterator[Callable[..., InterceptingProxy]]:
    """Factory: ``intercepting_proxy(upstream_ca, auth=("alice", "s3cret"), max_body=None, over="413")``."""
    proxies: list[InterceptingProxy] = []

    def start(upstream_ca: Path, auth: tuple[str, str] = ("alice", "s3cret"), **options: Any) -> InterceptingProxy:
        directory = tmp_path / f"intercepting{len(proxies)}"
        directory.mkdir()
        proxy = InterceptingProxy(directory, upstream_ca, auth, **options)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


class Nginx(Daemon):
    """Debian's nginx on 127.0.0.1: a reverse proxy in front of a server, as operators put one.

    ``server``: the directives of its one ``server`` block (``{port}`` and ``{tls_port}`` in it are
    replaced; ``listen`` lines are added: plain HTTP on ``port``, TLS on ``tls_port`` with
    ``certificates``' certificate when given). ``url``/``tls_url`` reach it.
    """

    def __init__(self, directory: Path, server: str, certificates: Certificates | None = None) -> None:
        binary = shutil.which("nginx")
        require_tool(binary is not None, "nginx", "apt-get install nginx-light (python3 dev.py test does it as root)")
        assert binary is not None
        directory.mkdir(parents=True, exist_ok=True)
        self.port, self.tls_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_url = f"https://127.0.0.1:{self.tls_port}"
        listen = f"listen 127.0.0.1:{self.port};"
        if certificates is not None:
            certificates.server.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
            certificates.server.private_key_pem.write_to_path(str(directory / "key.pem"))
            listen += (
                f"\n    listen 127.0.0.1:{self.tls_port} ssl;\n"
                f"    ssl_certificate {directory}/cert.pem;\n    ssl_certificate_key {directory}/key.pem;"
            )
        temp = " ".join(f"{kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi"))
        temp += f" uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;"
        config = directory / "nginx.conf"
        config.write_text(
            f"worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
            "events { worker_connections 64; }\n"
            f"http {{\n  access_log off;\n  {temp}\n  server {{\n    {listen}\n"
            f"    {server.replace('{port}', str(self.port)).replace('{tls_port}', str(self.tls_port))}\n  }}\n}}\n"
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(config), "-g", "daemon off; master_process off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._listening, timeout=15, what=f"nginx listening (its log: {directory}/error.log)")

    name = "nginx"


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """Factory: ``nginx(server_block, certificates=None)`` → a running Nginx."""
    started: list[Nginx] = []

    def start(server: str, certificates: Certificates | None = None) -> Nginx:
        proxy = Nginx(tmp_path / f"nginx{len(started)}", server, certificates)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
