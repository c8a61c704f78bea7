"""The uploader behind a corporate forward proxy with a small body limit, and the proxy's other answers.

The forward proxy is Debian's nginx (``http_proxy``; nginx relays absolute-form requests with
``proxy_pass http://$http_host``), its ``client_max_body_size`` far below the server's 1 MiB; the
server behind it is the counting FakeIngest, so each session's arrivals are known.
"""

from __future__ import annotations

import json
from pathlib import Path

from tallystick.client import _bodylimit, _queue
from tallystick.client._config import Config
from tallystick.client._queue import Queue, file_name
from tallystick.client._session import new_uuid4
from tallystick.client._uploader import Uploader

NOW = 1_900_000_000.0
LIMIT = 64 * 1024


def forward_proxy(nginx, limit: str = "64k", extra: str = ""):  # type: ignore[no-untyped-def]
    """nginx as a forward proxy for plain http, refusing bodies over ``limit`` with its own HTML 413."""
    return nginx(f"client_max_body_size {limit};\n    {extra}\n    location / {{ proxy_pass http://$http_host; }}")


class Client:
    """An uploader over a queue in ``directory``, through ``proxy``, with a clock the test moves."""

    def __init__(self, directory: Path, url: str, proxy: str) -> None:
        self.now = NOW
        self.counts: dict[str, int] = {}
        self.lines: list[str] = []
        self.environ = {"http_proxy": proxy}
        self.config = Config(
            "mytool", "1.0.0", url, data_dir=directory, clock=lambda: self.now, request_timeout=5, environ=self.environ
        )
        self.queue = Queue(
            str(directory),
            max_files=10**4,
            max_bytes=10**9,
            max_age_seconds=30 * 86400,
            clock=self.config.clock,
            count=self.count,
        )
        self.directory = directory

    def count(self, reason: str, n: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n

    def uploader(self) -> Uploader:
        """A new uploader: a new upload process, which knows only what is on disk."""
        return Uploader(self.config, self.queue, count=self.count, log=self.lines.append)

    def put(self, n: int, size: int = 8000) -> list[str]:
        """Queue ``n`` sessions of about ``size`` bytes; their IDs."""
        ids = []
        for _ in range(n):
            session_id = new_uuid4()
            body = json.dumps({"sessionId": session_id, "padding": "x" * size}).encode()
            self.queue.put(file_name(self.now - 3600 + len(self.queue.entries()), session_id), body)
            ids.append(session_id)
        return ids

    def refusals(self) -> int:
        return sum("refused as too large" in line for line in self.lines)

    def learned(self) -> int | None:
        return _bodylimit.BodyLimit(str(self.directory), self.route(), self.now).bytes

    def route(self) -> str:
        return _bodylimit.route(self.config.server_url, self.environ)


def test_a_refused_batch_is_halved_and_the_limit_remembered(tmp_path: Path, fake_ingest, nginx) -> None:  # type: ignore[no-untyped-def]
    """A batch over the proxy's 64 KiB: sent again in halves in the same pass; the next upload sends fitting batches."""
    server = fake_ingest()
    proxy = forward_proxy(nginx)
    client = Client(tmp_path / "data", server.url, proxy.url)
    ids = client.put(40)  # one batch of about 320 KB
    uploader = client.uploader()
    assert uploader.attempt() == _queue.SENT
    assert client.queue.entries() == [] and server.counts() == dict.fromkeys(ids, 1)  # each arrived once
    assert client.refusals() == 3  # 320 KB, 160 KB, 80 KB; then batches of at most 40 KB
    learned = client.learned()
    assert learned is not None and 32 * 1024 < learned < LIMIT
    assert all(n <= learned // 7000 for _, _, n in server.requests)
    first_pass = uploader.requests

    more = client.put(40)
    client.now += 3600  # a later upload process, within the day
    uploader = client.uploader()
    assert uploader.attempt() == _queue.SENT
    assert client.refusals() == 3 and uploader.requests == first_pass - 3  # no refusal: fitting batches at once
    assert server.counts() == dict.fromkeys(ids + more, 1)


def test_the_learned_limit_expires_and_belongs_to_its_proxy(tmp_path: Path, fake_ingest, nginx) -> None:  # type: ignore[no-untyped-def]
    """A day later the limit is learned afresh (a proxy may have been changed); another proxy starts with none."""
    server = fake_ingest()
    small, large = forward_proxy(nginx), forward_proxy(nginx, "1m")
    client = Client(tmp_path / "data", server.url, small.url)
    client.put(12)  # about 96 KB
    client.uploader().attempt()
    assert client.refusals() == 1 and client.learned() is not None

    client.environ["http_proxy"] = large.url  # the laptop left the office: no limit known for this proxy
    assert client.learned() is None
    ids = client.put(12)
    client.now += 3600
    uploader = client.uploader()
    assert uploader.attempt() == _queue.SENT and uploader.requests == 1 and server.counts()[ids[0]] == 1

    client.environ["http_proxy"] = small.url
    client.now += _bodylimit.REMEMBERED + 1  # the day is over: the proxy may let more through now
    assert client.learned() is None
    client.put(12)
    client.uploader().attempt()
    assert client.refusals() == 2 and client.learned() is not None


def test_a_session_too_large_alone_is_held_and_the_rest_go(tmp_path: Path, fake_ingest, nginx) -> None:  # type: ignore[no-untyped-def]
    """A batch halved down to one session the proxy refuses: that one is held; none is lost or sent twice."""
    server = fake_ingest()
    proxy = forward_proxy(nginx, "16k")
    client = Client(tmp_path / "data", server.url, proxy.url)
    before = client.put(3, 2000)
    (big,) = client.put(1, 40_000)
    after = client.put(3, 2000)
    uploader = client.uploader()
    assert uploader.attempt() == _queue.SENT
    assert server.counts() == dict.fromkeys(before + after, 1)
    (held,) = (p.name for p in Path(client.queue.held_directory).iterdir())
    assert big in held and client.counts == {"proxyTooLarge": 1}
    assert client.queue.entries() == []
