"""The uploader behind a real reverse proxy (Debian's nginx) in front of the real ingest server.

A proxy's own 413 (its body limit) holds a session instead of setting it aside for good, while
the server's 413 sets it aside; redirects are followed once, to the same host only, never from
https to http.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.conftest import AcceptLoop
from fixtures.ingest import IngestServer, session_tree
from tallystick.client import _queue
from tallystick.client.__main__ import report
from tallystick.client._config import Config
from tallystick.client._queue import Queue, file_name
from tallystick.client._session import new_uuid4
from tallystick.client._transport import send
from tallystick.client._uploader import HOLD_SECONDS, Uploader

NOW = 1_900_000_000.0


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestServer]:
    """One real ingest server for the module, refusing bodies over 64 KiB (its own JSON 413)."""
    server = IngestServer(tmp_path_factory.mktemp("ingest"), ["mytool"], extra=["--max-body-bytes", "65536"])
    server.start()
    yield server
    server.stop()


class Client:
    """An uploader over a queue in ``directory``, with a clock the test moves and the lines it logged."""

    def __init__(self, directory: Path, url: str, environ: dict[str, str] | None = None) -> None:
        self.now = NOW
        self.counts: dict[str, int] = {}
        self.lines: list[str] = []
        self.config = Config(
            "mytool", "1.0.0", url, data_dir=directory, clock=lambda: self.now, request_timeout=10, environ=environ
        )
        self.queue = Queue(
            str(directory),
            max_files=1000,
            max_bytes=10**8,
            max_age_seconds=30 * 86400,
            clock=self.config.clock,
            count=self.count,
        )
        self.directory = directory

    def count(self, reason: str, n: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n

    def uploader(self, url: str | None = None) -> Uploader:
        if url is not None:
            self.config.server_url = url
        return Uploader(self.config, self.queue, count=self.count, log=self.lines.append)

    def put(self, padding: int = 0) -> str:
        """Queue one valid session of about ``padding`` bytes more than the bare minimum; its ID."""
        session_id = new_uuid4()
        tree = session_tree(session_id)
        tree["events"] = [
            {"type": "Padding", "time": "2030-01-01T00:00:00Z", "attributes": {"text": "x" * 1000}}
            for _ in range(padding // 1000)
        ]
        self.queue.put(file_name(NOW - 3600 + len(self.queue.entries()), session_id), json.dumps(tree).encode())
        return session_id

    def names(self, directory: str) -> list[str]:
        path = Path(directory)
        return sorted(p.name for p in path.iterdir() if p.suffix == ".json") if path.exists() else []


def test_a_proxys_413_holds_the_session_and_the_servers_sets_it_aside(tmp_path: Path, ingest, nginx) -> None:  # type: ignore[no-untyped-def]
    """nginx's HTML 413 (client_max_body_size 16k): held a day, the rest sent; the server's JSON 413: set aside."""
    proxy = nginx("client_max_body_size 16k;\n    location / { proxy_pass " + ingest.url + "; }")
    client = Client(tmp_path / "data", proxy.url)
    small = [client.put(), client.put()]
    medium = client.put(padding=32_000)  # through the server's 64 KiB, not through the proxy's 16 KiB
    uploader = client.uploader()
    uploader.run_pass()
    assert uploader.outcome == _queue.SENT
    stored = set(ingest.stored_session_ids())
    assert set(small) <= stored and medium not in stored
    assert client.queue.entries() == [] and client.names(client.queue.rejected_directory) == []
    (held,) = client.names(client.queue.held_directory)
    assert medium in held and client.counts == {"proxyTooLarge": 1}
    assert any("too large by something in front of the server" in line for line in client.lines)
    shown = report(client.config, str(client.directory), as_json=False)
    assert "held back:       1 session(s) refused as too large by a proxy" in shown

    before = uploader.requests
    uploader.run_pass()  # the same day: not sent again
    assert uploader.requests == before and client.names(client.queue.held_directory) == [held]

    client.now += HOLD_SECONDS + 1  # a day later, the proxy fixed (here: the server reached directly)
    uploader = client.uploader(ingest.url)
    uploader.run_pass()
    assert medium in set(ingest.stored_session_ids())
    assert client.names(client.queue.held_directory) == [] and client.counts == {"proxyTooLarge": 1}

    huge = client.put(padding=80_000)  # past the server's own limit: its JSON 413 is a verdict
    uploader.run_pass()
    assert huge not in set(ingest.stored_session_ids())
    (rejected,) = client.names(client.queue.rejected_directory)
    assert huge in rejected
    answer = json.loads(Path(client.queue.rejected_directory, rejected + ".answer").read_bytes())
    assert "larger than 65536 bytes" in answer["message"]
    assert client.counts == {"proxyTooLarge": 1, "rejected": 1}


def test_held_sessions_expire_with_the_queue(tmp_path: Path) -> None:
    """A held session is deleted unsent once older than max_age_days, like a queued one, and counted expired."""
    client = Client(tmp_path / "data", "http://127.0.0.1:9")
    client.put()
    (entry,) = client.queue.entries()
    client.queue.hold(entry, NOW + HOLD_SECONDS)
    assert client.queue.sweep() == 0 and len(client.names(client.queue.held_directory)) == 1
    client.now += 31 * 86400
    client.queue.sweep()
    assert client.names(client.queue.held_directory) == []
    assert client.counts == {"proxyTooLarge": 1, "expired": 1}


def _followed(client: Client, ingest: IngestServer, url: str, environ: dict[str, str] | None = None) -> Uploader:
    ids = [client.put() for _ in range(3)]
    if environ:
        client.config.environ = environ
    uploader = client.uploader(url)
    uploader.run_pass()
    assert uploader.outcome == _queue.SENT, client.lines
    assert set(ids) <= set(ingest.stored_session_ids()) and client.queue.entries() == []
    assert uploader.requests == 2  # the batch answered by the redirect, then the batch at its target
    late = client.put()
    uploader.run_pass()  # the same process: straight to where the redirect said
    assert uploader.requests == 3 and late in set(ingest.stored_session_ids())
    return uploader


def test_an_http_to_https_redirect_is_followed_once(tmp_path: Path, ingest, nginx, certificates) -> None:  # type: ignore[no-untyped-def]
    """nginx sending http to https (301, same host): followed with the same body, verified TLS; the log says where."""
    proxy = nginx(
        "location / { if ($scheme = http) { return 301 https://$host:{tls_port}$request_uri; }\n"
        "      proxy_pass " + ingest.url + "; }",
        certificates,
    )
    client = Client(tmp_path / "data", proxy.url)
    _followed(client, ingest, proxy.url, {"SSL_CERT_FILE": str(certificates.ca_file)})
    assert any(f"set server_url to {proxy.tls_url} to save a request" in line for line in client.lines)


def test_a_moved_endpoint_is_followed_once(tmp_path: Path, ingest, nginx) -> None:  # type: ignore[no-untyped-def]
    """A 308 to the API under a new path on the same host: followed, and the rest of the process goes there."""
    proxy = nginx(
        "location /v1/ { return 308 /tally$request_uri; }\n    location /tally/ { proxy_pass " + ingest.url + "/; }"
    )
    client = Client(tmp_path / "data", proxy.url)
    _followed(client, ingest, proxy.url)
    assert any(f"set server_url to {proxy.url}/tally to save a request" in line for line in client.lines)


@pytest.mark.parametrize(
    ("block", "scheme", "why"),
    [
        pytest.param("return 301 http://localhost:{port}$request_uri;", "http", "another host", id="other-host"),
        pytest.param(
            "return 301 http://$host:{port}$request_uri;", "https", "from https to plain http", id="https-to-http"
        ),
        pytest.param(
            "location /v1/ { return 308 /a$request_uri; }\n    location /a/ { return 308 /b$request_uri; }",
            "http",
            "one redirect is followed at most",
            id="two-hops",
        ),
    ],
)
def test_redirects_that_are_not_followed_keep_the_queue_and_say_why(  # type: ignore[no-untyped-def]
    tmp_path: Path, ingest, nginx, certificates, *, block: str, scheme: str, why: str
) -> None:
    """To another host, from https to http, or a second hop: nothing is sent there; kept, and the log says why."""
    proxy = nginx(block if block.startswith("location") else "location / { " + block + " }", certificates)
    url = proxy.tls_url if scheme == "https" else proxy.url
    client = Client(tmp_path / "data", url, {"SSL_CERT_FILE": str(certificates.ca_file)})
    ids = {client.put() for _ in range(2)}
    uploader = client.uploader()
    uploader.run_pass()
    assert uploader.outcome.startswith("http30")
    assert len(client.queue.entries()) == 2 and not ids & set(ingest.stored_session_ids())
    assert any(why in line for line in client.lines), client.lines
    assert "set server_url" in "\n".join(client.lines) or why == "one redirect is followed at most"


class Impatient(AcceptLoop):
    """A proxy that answers 413 with its own page as soon as the headers are in, then closes unread: a reset.

    ``length``: whether the page has a Content-Length (without, it ends where the connection does).
    """

    def __init__(self, *, length: bool = True) -> None:
        self.length = length
        self.listen()

    def serve(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                head += chunk
            page = b"<html><body>413 Request Entity Too Large</body></html>"
            connection.sendall(
                b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: text/html\r\n"
                + (f"Content-Length: {len(page)}\r\n" if self.length else "").encode()
                + b"Connection: close\r\n\r\n"
                + page
            )
            time.sleep(0.05)  # closed with most of the body unread: the kernel resets the connection


def test_a_proxy_that_resets_after_its_413_is_heard() -> None:
    """A 413 sent before the proxy reset the connection mid-body is read, not lost as a network error.

    A stand-in in Python: nginx reads and discards the rest of a refused body (lingering close), so it
    never resets; proxies that do cannot be installed here. The body is larger than a session so that,
    on loopback, it is still going out when the reset comes, as a session's is over a real network.
    """
    proxy = Impatient()
    try:
        response = send("PUT", proxy.url + "/v1/sessions", b"x" * 8_000_000, timeout=10, user_agent="test")
    finally:
        proxy.stop()
    assert response.status == 413 and b"Request Entity Too Large" in response.body


def test_a_proxys_413_page_ended_by_a_reset_is_heard() -> None:
    """A 413 page with ``Connection: close`` and no length, whose end is the proxy's reset: a 413, not no answer.

    The same stand-in (see above); a body that fits the socket's buffers, so all of it is out before the
    answer is read, and the reset comes while the page is.
    """
    proxy = Impatient(length=False)
    try:
        response = send("PUT", proxy.url + "/v1/sessions", b"x" * 96_000, timeout=10, user_agent="test")
    finally:
        proxy.stop()
    assert response.status == 413 and response.body.endswith(b"Request Entity Too Large</body></html>")
