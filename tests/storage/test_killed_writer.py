"""A writer SIGKILLed in the middle of writing a large object leaves it absent or complete, never partial."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from fixtures.common import wait_until
from tallystick.storage import ObjectNotFound, open_store

SIZE = 8 * 1024 * 1024
KEY = "sessions/v1/app=big/date=2026-05-01/large.json.gz"
WRITER = """
import sys
from tallystick.storage import open_store
url, key, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = (b"0123456789abcdef" * (size // 16))
print("writing", flush=True)
open_store(url).put_if_absent(key, data)
print("done", flush=True)
"""


def _expected() -> bytes:
    return b"0123456789abcdef" * (SIZE // 16)


class ThrottlingProxy:
    """A TCP proxy on 127.0.0.1 that forwards client bytes slowly and counts them."""

    def __init__(self, upstream: tuple[str, int], chunk: int = 64 * 1024, pause: float = 0.01) -> None:
        self.upstream = upstream
        self.chunk = chunk
        self.pause = pause
        self.forwarded = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, throttle: bool) -> None:
        try:
            while data := source.recv(self.chunk):
                sink.sendall(data)
                if throttle:
                    self.forwarded += len(data)
                    time.sleep(self.pause)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def _through(url: str, proxy: ThrottlingProxy) -> str:
    """The same storage URL with its endpoint's host and port replaced by the proxy's."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    endpoint = urlsplit(query["endpoint"])
    query["endpoint"] = endpoint._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    return parts._replace(query=urlencode(query)).geturl()


@pytest.fixture(params=["local", "s3", "azure"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Callable[[], bool]]]:
    """(URL the writer uses, URL to inspect with, "the write is under way" predicate)."""
    if request.param == "local":
        root = tmp_path / "store"
        open_store(root.as_uri()).close()

        def writing_locally() -> bool:
            return any(p.stat().st_size > 0 for p in (root / ".tmp").iterdir())

        yield root.as_uri(), root.as_uri(), writing_locally
        return
    url = request.getfixturevalue("s3_store_url" if request.param == "s3" else "azure_store_url")()
    endpoint = urlsplit(dict(parse_qsl(urlsplit(url).query))["endpoint"])
    assert endpoint.hostname is not None and endpoint.port is not None
    proxy = ThrottlingProxy((endpoint.hostname, endpoint.port))
    yield _through(url, proxy), url, lambda: proxy.forwarded > SIZE // 2
    proxy.close()


def test_writer_killed_mid_write_leaves_no_partial_object(target: tuple[str, str, Callable[[], bool]]) -> None:
    """SIGKILL during a large put_if_absent: the key is then absent or holds the complete object."""
    writer_url, inspect_url, writing = target
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, writer_url, KEY, str(SIZE)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
        wait_until(writing, timeout=30, interval=0.0005, what="the write to be under way")
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=10) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()

    store = open_store(inspect_url)
    try:
        try:
            stored: bytes | None = store.get(KEY)
        except ObjectNotFound:
            stored = None
        assert stored is None or stored == _expected(), f"partial object of {len(stored or b'')} bytes"
        listed = [(i.key, i.size) for i in store.list("sessions/")]
        assert listed == ([] if stored is None else [(KEY, SIZE)])
        # The key is still usable: a later writer creates it (or finds the complete one).
        assert store.put_if_absent(KEY, _expected()) is (stored is None)
        assert store.get(KEY) == _expected()
    finally:
        store.close()
