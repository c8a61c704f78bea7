"""Uploads in the networks users have: through real proxies (tinyproxy) and over verified TLS (a test CA)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from tallystick.client import _queue
from tallystick.client._config import Config
from tallystick.client._queue import Queue, file_name
from tallystick.client._session import new_uuid4
from tallystick.client._transport import _basic, bypass_proxy, proxy_for
from tallystick.client._uploader import Uploader

NOW = 2_000_000_000.0


Setup = tuple[Uploader, list[str], list[str]]


def setup(tmp_path: Path, url: str, environ: Mapping[str, str], sessions: int = 1) -> Setup:
    """An uploader for ``url`` seeing ``environ``, ``sessions`` queued; it, their IDs and its log lines."""
    config = Config("mytool", "1.0.0", url, data_dir=tmp_path, clock=lambda: NOW, environ=environ, request_timeout=5)
    ignore = lambda _r, _n: None  # noqa: E731
    queue = Queue(str(tmp_path), max_files=100, max_bytes=10**8, max_age_seconds=1e9, clock=config.clock, count=ignore)
    ids = []
    for i in range(sessions):
        session_id = new_uuid4()
        ids.append(session_id)
        queue.put(file_name(NOW - 100 + i, session_id), json.dumps({"sessionId": session_id}).encode())
    lines: list[str] = []
    return Uploader(config, queue, count=ignore, log=lines.append), ids, lines


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_https_goes_through_the_proxys_tunnel_verified(tmp_path: Path, fake_ingest, certificates, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """HTTPS_PROXY: the upload asks the proxy for a CONNECT tunnel and verifies the server's certificate through it."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = tinyproxy()
    environ = {"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(certificates.ca_file)}
    uploader, ids, _ = setup(tmp_path, server.url, environ, 2)
    assert uploader.attempt() == "sent"
    assert server.received == ids
    assert proxy.relayed() == [f"CONNECT 127.0.0.1:{_port(server.url)}"]


def test_plain_http_goes_through_the_proxy(tmp_path: Path, fake_ingest, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """http_proxy: a plain-http upload is sent to the proxy in absolute form."""
    server = fake_ingest()
    proxy = tinyproxy()
    uploader, ids, _ = setup(tmp_path, server.url, {"http_proxy": proxy.url}, 1)
    assert uploader.attempt() == "sent"
    assert server.received == ids
    assert proxy.relayed() == [f"PUT {server.url}/v1/sessions"]


def test_an_authenticating_proxy(tmp_path: Path, fake_ingest, certificates, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """Credentials in the proxy URL get through; without them the files stay; the password is never logged or kept."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = tinyproxy(auth=("alice", "pass123"))
    ca = {"SSL_CERT_FILE": str(certificates.ca_file)}
    data = tmp_path / "data"
    uploader, ids, lines = setup(data, server.url, {**ca, "HTTPS_PROXY": proxy.url})
    assert uploader.attempt() == "proxyauth"  # its 407 to CONNECT: not the same trouble as an unreachable proxy
    assert server.received == []
    secret = proxy.url.replace("http://", "http://alice:pass123@")
    _queue.write_state(str(data), _queue.UploadState())  # the back-off has passed
    uploader, _, more = setup(data, server.url, {**ca, "HTTPS_PROXY": secret}, 0)
    assert uploader.attempt() == "sent"
    assert server.received == ids
    assert len(proxy.relayed()) == 2
    everything = "\n".join(lines + more) + "".join(p.read_text() for p in data.rglob("*") if p.is_file())
    assert "pass123" not in everything


def test_a_proxy_asking_for_credentials_keeps_the_files(tmp_path: Path, fake_ingest, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """A 407 from the proxy is not the server's verdict: nothing is deleted or set aside."""
    server = fake_ingest()
    proxy = tinyproxy(auth=("alice", "pass123"))
    uploader, _, _ = setup(tmp_path, server.url, {"http_proxy": proxy.url}, 2)
    # tinyproxy answers 407 and closes without reading the body: read before the reset, it is "proxyauth";
    # lost to it, "proxy" once one session sent alone is cut off too (never "network", as if the server
    # failed, nor "http407").
    assert uploader.attempt() in {"proxyauth", "proxy"}
    assert uploader.requests <= 2
    assert server.received == []
    assert len(uploader.queue.entries()) == 2 and not Path(uploader.queue.rejected_directory).exists()


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost, 127.0.0.0/8", "*", "[::1],127.0.0.1:{port}"])
def test_no_proxy_goes_direct(tmp_path: Path, fake_ingest, tinyproxy, no_proxy: str) -> None:  # type: ignore[no-untyped-def]
    """A host matched by NO_PROXY is reached directly; the proxy sees nothing."""
    server = fake_ingest()
    proxy = tinyproxy()
    environ = {"HTTP_PROXY": proxy.url, "NO_PROXY": no_proxy.format(port=_port(server.url))}
    uploader, ids, _ = setup(tmp_path, server.url, environ)
    assert uploader.attempt() == "sent"
    assert server.received == ids
    assert proxy.relayed() == []


def test_no_proxy_for_another_host_or_port_still_uses_the_proxy(tmp_path: Path, fake_ingest, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """NO_PROXY naming other hosts, or this host on another port, leaves the upload to the proxy."""
    server = fake_ingest()
    proxy = tinyproxy()
    environ = {"HTTP_PROXY": proxy.url, "NO_PROXY": f"example.org,127.0.0.1:{_port(server.url) + 1}"}
    uploader, _, _ = setup(tmp_path, server.url, environ)
    assert uploader.attempt() == "sent"
    assert len(proxy.relayed()) == 1


def test_the_right_ca_uploads_a_wrong_one_fails_verification(tmp_path: Path, fake_ingest, certificates) -> None:  # type: ignore[no-untyped-def]
    """SSL_CERT_FILE with the server's CA uploads; with another CA verification fails and everything is kept."""
    server = fake_ingest(tls=certificates.server_context())
    uploader, _, _ = setup(tmp_path / "wrong", server.url, {"SSL_CERT_FILE": str(certificates.wrong_ca_file)}, 2)
    assert uploader.attempt() == "certificate"
    assert len(uploader.queue.entries()) == 2 and server.received == []
    state = _queue.read_state(str(tmp_path / "wrong"))
    assert (state.failures, state.outcome) == (1, "certificate")
    uploader, ids, _ = setup(tmp_path / "right", server.url, {"SSL_CERT_FILE": str(certificates.ca_file)}, 2)
    assert uploader.attempt() == "sent"
    assert server.received == ids


def test_the_system_store_does_not_trust_a_test_ca(tmp_path: Path, fake_ingest, certificates) -> None:  # type: ignore[no-untyped-def]
    """Without SSL_CERT_FILE/SSL_CERT_DIR the system store decides: a certificate from a private CA is refused."""
    server = fake_ingest(tls=certificates.server_context())
    uploader, _, _ = setup(tmp_path, server.url, {})
    assert uploader.attempt() == "certificate"


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("telemetry.example.org", 443, "example.org", True),
        ("telemetry.example.org", 443, ".example.org", True),
        ("telemetry.example.org", 443, "*.example.org", True),
        ("example.org", 443, ".example.org", True),
        ("badexample.org", 443, "example.org", False),
        ("Telemetry.Example.ORG.", 443, "EXAMPLE.org", True),
        ("telemetry.example.org", 443, "example.org:8443", False),
        ("telemetry.example.org", 8443, "example.org:8443", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("10.1.2.3", 80, "10.1.2.3", True),
        ("10.1.2.4", 80, "10.1.2.3", False),
        ("::1", 80, "[::1]", True),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]:81", False),
        ("anything", 1, " * ", True),
        ("anything", 1, "", False),
        ("10.1.2.3", 80, "example.org 10.1.2.3", True),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    """NO_PROXY follows curl: suffixes, leading dots and *., ports, IP literals and CIDR blocks, * for all."""
    assert bypass_proxy(host, port, no_proxy) is bypass


def test_which_proxy_variable_applies() -> None:
    """Lower case wins; https and http have their own; ALL_PROXY is the fallback; HTTP_PROXY is ignored under CGI."""
    assert proxy_for("https", "h", 443, {"https_proxy": "a", "HTTPS_PROXY": "b"}) == "a"
    assert proxy_for("https", "h", 443, {"HTTPS_PROXY": "b", "http_proxy": "c"}) == "b"
    assert proxy_for("http", "h", 80, {"HTTPS_PROXY": "b"}) is None
    assert proxy_for("http", "h", 80, {"ALL_PROXY": "d"}) == "d"
    assert proxy_for("http", "h", 80, {"HTTP_PROXY": "e"}) == "e"
    assert proxy_for("http", "h", 80, {"HTTP_PROXY": "e", "REQUEST_METHOD": "GET"}) is None
    assert proxy_for("https", "h", 443, {"HTTPS_PROXY": "b", "no_proxy": "h"}) is None


def test_proxy_credentials_are_percent_decoded() -> None:
    """user:password in the proxy URL may be percent-encoded, as in curl."""
    import base64

    assert base64.b64decode(_basic("al%40ice:p%3Ass").split()[1]) == b"al@ice:p:ss"


def test_ssl_cert_dir_is_honoured(tmp_path: Path, fake_ingest, certificates) -> None:  # type: ignore[no-untyped-def]
    """SSL_CERT_DIR (a hashed directory, as `openssl rehash` makes) trusts the CAs in it."""
    import shutil
    import subprocess

    from fixtures.common import require_tool

    openssl = shutil.which("openssl")
    require_tool(openssl is not None, "openssl", "apt-get install openssl (python3 dev.py test does it as root)")
    assert openssl is not None
    subject_hash = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(certificates.ca_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    directory = tmp_path / "certs"
    directory.mkdir()
    shutil.copy(certificates.ca_file, directory / f"{subject_hash}.0")
    server = fake_ingest(tls=certificates.server_context())
    uploader, ids, _ = setup(tmp_path / "data", server.url, {"SSL_CERT_DIR": str(directory)})
    assert uploader.attempt() == "sent"
    assert server.received == ids


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_an_unreachable_proxy_is_named_as_the_proxy(tmp_path: Path, fake_ingest, scheme: str) -> None:  # type: ignore[no-untyped-def]
    """A proxy that refuses connections fails as `proxy`, not as the server refusing; its password is never logged."""
    from fixtures.common import free_port

    server = fake_ingest()
    url = server.url.replace("http://", f"{scheme}://")
    dead = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    uploader, _, lines = setup(tmp_path, url, {f"{scheme.upper()}_PROXY": dead})
    assert uploader.attempt() == "proxy"
    assert server.received == [] and len(uploader.queue.entries()) == 1
    assert lines and all("s3cret" not in line and "alice" not in line for line in lines)


@pytest.mark.parametrize(
    ("answer", "through_proxy"),
    [
        (b"HTTP/1.1 201 Created\r\nX-Padding: " + b"x" * 200, False),
        (b"HTTP/1.1 201 Created\r\nContent-Length: 400\r\n\r\n" + b"{" * 400, False),
        (b"HTTP/1.1 200 Connection established\r\nX-Padding: " + b"x" * 200, True),
    ],
    ids=["headers", "body", "proxy-connect"],
)
def test_a_slow_loris_is_bounded_by_the_request_timeout(
    tmp_path: Path, slow_loris, answer: bytes, through_proxy: bool
) -> None:  # type: ignore[no-untyped-def]
    """A server or proxy dripping its answer a byte at a time fails as `timeout` within the request timeout.

    Every single read gets a byte well within the timeout, so only a bound on the whole request ends it;
    without one the upload process held the queue's lock for hours.
    """
    import time

    drip = slow_loris(answer, pause=0.05)
    url, environ = (drip.url, {})
    if through_proxy:
        url, environ = "https://127.0.0.1:9", {"HTTPS_PROXY": drip.url}
    config = Config("mytool", "1.0.0", url, data_dir=tmp_path, clock=lambda: NOW, environ=environ, request_timeout=1)
    ignore = lambda _r, _n: None  # noqa: E731
    queue = Queue(str(tmp_path), max_files=100, max_bytes=10**8, max_age_seconds=1e9, clock=config.clock, count=ignore)
    queue.put(file_name(NOW - 100, new_uuid4()), b'{"sessionId": "x"}')
    uploader = Uploader(config, queue, count=ignore, log=lambda _line: None)
    began = time.monotonic()
    assert uploader.attempt() == "timeout"
    assert time.monotonic() - began < 3
    assert len(queue.entries()) == 1


@pytest.mark.parametrize(
    "trust",
    ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "stale SSL_CERT_FILE", "two bundles", "none"],
)
def test_a_tls_intercepting_corporate_proxy(
    tmp_path: Path, fake_ingest, certificates, intercepting_proxy, trust: str
) -> None:  # type: ignore[no-untyped-def]
    """Behind a proxy that re-signs TLS with the company's CA (Basic auth, `https_proxy` in lower case, no
    scheme): the upload trusts that CA from the variable the user set; with none, it fails as `certificate`."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = intercepting_proxy(certificates.ca_file)
    environ = {"https_proxy": f"alice:s3cret@127.0.0.1:{proxy.port}", "NO_PROXY": ".example.org,10.0.0.0/8,localhost"}
    if trust == "stale SSL_CERT_FILE":  # left over from another machine: skipped, the next variable applies
        environ |= {"SSL_CERT_FILE": str(tmp_path / "gone.pem"), "REQUESTS_CA_BUNDLE": str(proxy.ca_file)}
    elif trust == "two bundles":  # SSL_CERT_FILE names another bundle; the company's CA was added to requests'
        environ |= {"SSL_CERT_FILE": str(certificates.wrong_ca_file), "REQUESTS_CA_BUNDLE": str(proxy.ca_file)}
    elif trust != "none":
        environ[trust] = str(proxy.ca_file)
    uploader, ids, lines = setup(tmp_path / "data", server.url, environ)
    if trust == "none":  # the system store does not know the company's CA
        assert uploader.attempt() == "certificate"
        assert server.received == [] and len(uploader.queue.entries()) == 1
        return
    assert uploader.attempt() == "sent"
    assert server.received == ids
    assert proxy.intercepted == ["PUT /v1/sessions HTTP/1.1"]  # really decrypted by the proxy
    assert all("s3cret" not in line for line in lines)


def test_an_intercepting_proxy_refusing_the_credentials(
    tmp_path: Path, fake_ingest, certificates, intercepting_proxy
) -> None:  # type: ignore[no-untyped-def]
    """Wrong proxy credentials: `proxyauth`, the queue kept, the password in no log line."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = intercepting_proxy(certificates.ca_file)
    environ = {"HTTPS_PROXY": f"http://alice:wrong@127.0.0.1:{proxy.port}", "SSL_CERT_FILE": str(proxy.ca_file)}
    uploader, _, lines = setup(tmp_path / "data", server.url, environ)
    assert uploader.attempt() == "proxyauth"
    assert proxy.refused == 1 and server.received == [] and len(uploader.queue.entries()) == 1
    assert all("wrong" not in line for line in lines)


def test_an_ipv6_loopback_server_directly_and_past_a_proxy(tmp_path: Path, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A server at http://[::1]:port is reached; NO_PROXY=[::1] sends it past a (dead) proxy, as curl does."""
    server = fake_ingest(host="::1")
    assert server.url.startswith("http://[::1]:")
    environ = {"http_proxy": "http://127.0.0.1:9", "no_proxy": "example.org, [::1]"}
    uploader, ids, _ = setup(tmp_path, server.url, environ, 2)
    assert uploader.attempt() == "sent"
    assert server.received == ids
