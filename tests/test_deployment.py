"""The nginx front that docs/ingest.md shows, run as written (Debian's nginx, TLS from a test CA) in
front of two `tallystick serve` replicas sharing one S3 bucket (moto)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.common import free_port, require_tool, wait_until
from fixtures.ingest import IngestServer, session_tree
from tallystick.client._session import new_uuid4

DOCS = Path(__file__).parent.parent / "docs" / "ingest.md"


def _documented_block() -> str:
    """The ```nginx block of docs/ingest.md, without the indentation of its list item."""
    found = re.search(r"```nginx\n(.*?)```", DOCS.read_text(), re.S)
    assert found, "docs/ingest.md shows no nginx block"
    return "\n".join(line.removeprefix("  ") for line in found[1].splitlines())


class Front:
    """Debian's nginx running ``block`` (the http context's content), listening on ``port``."""

    def __init__(self, directory: Path, block: str, port: int) -> None:
        binary = shutil.which("nginx")
        require_tool(binary is not None, "nginx", "apt-get install nginx-light (python3 dev.py test does it as root)")
        assert binary is not None
        directory.mkdir()
        self.port = port
        temp = " ".join(f"{kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi"))
        temp += f" uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;"
        config = directory / "nginx.conf"
        config.write_text(
            f"worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
            f"events {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  {temp}\n{block}\n}}\n"
        )
        argv = [binary, "-p", str(directory), "-c", str(config), "-g", "daemon off; master_process off;"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=15, what=f"nginx (its log: {directory}/error.log)")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True


@pytest.fixture
def replicas(tmp_path: Path, s3_store_url: Callable[..., str]) -> Iterator[list[IngestServer]]:
    bucket = s3_store_url("sessions")
    servers = []
    for i in range(2):
        (tmp_path / f"replica{i}").mkdir()
        servers.append(IngestServer(tmp_path / f"replica{i}", ["mytool"], bucket))
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_the_documented_nginx_front_publishes_the_api_and_keeps_metrics_private(
    tmp_path: Path, replicas: list[IngestServer]
) -> None:
    """Through the documented block: a session 201, its retry 304 (round robin: from the other replica), an erasure
    202; /metrics, /readyz and /openapi.json 404 there while each replica answers them directly."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    block = _documented_block()
    for documented, server in zip(("10.0.0.11:8780", "10.0.0.12:8780"), replicas, strict=True):
        assert documented in block
        block = block.replace(documented, f"127.0.0.1:{server.port}")
    assert "listen 443 ssl;" in block
    port = free_port()
    block = block.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    block = block.replace("/etc/ssl/telemetry.example.org.pem", str(tmp_path / "cert.pem"))
    block = block.replace("/etc/ssl/telemetry.example.org.key", str(tmp_path / "key.pem"))
    front = Front(tmp_path / "nginx", block, port)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    base = f"https://127.0.0.1:{port}"
    try:
        session_id = new_uuid4()
        body = json.dumps(session_tree(session_id)).encode()
        answers = [_send(context, f"{base}/v1/sessions", "PUT", body) for _ in range(2)]
        assert [status for status, _ in answers] == [201, 304]
        erasure = json.dumps({"userId": new_uuid4(), "secret": "ab" * 32}).encode()
        assert _send(context, f"{base}/v1/erasures", "POST", erasure)[0] == 202
        assert _send(context, f"{base}/ping", "GET")[0] == 200
        for private in ("/metrics", "/readyz", "/healthz", "/openapi.json"):
            assert _send(context, base + private, "GET")[0] == 404, private
        outcomes = []
        for server in replicas:
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
                text = response.read().decode()
            outcomes += re.findall(r'tallystick_sessions_total\{outcome="(\w+)"\} 1\.0', text)
        assert sorted(outcomes) == ["duplicate", "stored"]  # one replica stored it, the other found it there
        assert replicas[0].stored_session_ids() == [session_id]
    finally:
        front.process.terminate()
        front.process.wait(timeout=10)


def _send(context: ssl.SSLContext, url: str, method: str, body: bytes | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
