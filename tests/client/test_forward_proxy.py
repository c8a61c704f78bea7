"""The uploader behind a corporate forward proxy with a small body limit, and the proxy's other answers.

The forward proxy is Debian's nginx (``http_proxy``; nginx relays absolute-form requests with
``proxy_pass http://$http_host``), its ``client_max_body_size`` far below the server's 1 MiB; for
https, the TLS-intercepting proxy of the fixtures (a stand-in in Python: no proxy that decrypts TLS
can be installed here) with a body limit. The server behind them is the counting FakeIngest, so each
session's arrivals are known.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tallystick.client import _bodylimit, _queue
from tallystick.client.__main__ import report
from tallystick.client._config import Config
from tallystick.client._outcomes import cause
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

    def __init__(self, directory: Path, url: str, proxy: str, environ: dict[str, str] | None = None) -> None:
        self.now = NOW
        self.counts: dict[str, int] = {}
        self.lines: list[str] = []
        self.environ = environ or {"http_proxy": proxy}
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
    shown = report(client.config, str(client.directory), as_json=False)
    assert f"body limit:      a proxy on the way refused larger requests: batches kept to {learned} bytes" in shown
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


def _intercepted(tmp_path: Path, fake_ingest, certificates, intercepting_proxy, **options):  # type: ignore[no-untyped-def]
    server = fake_ingest(tls=certificates.server_context())
    proxy = intercepting_proxy(certificates.ca_file, **options)
    environ = {"https_proxy": f"http://alice:s3cret@127.0.0.1:{proxy.port}", "SSL_CERT_FILE": str(proxy.ca_file)}
    return server, proxy, Client(tmp_path / "data", server.url, "", environ)


@pytest.mark.parametrize("over", ["413", "close"])
def test_a_tls_intercepting_proxys_limit(
    tmp_path: Path, fake_ingest, certificates, intercepting_proxy, over: str
) -> None:  # type: ignore[no-untyped-def]
    """Bodies over 32 KiB refused inside TLS, by an HTML 413 ended by a reset or by a close with no answer: halved,
    every session arrives once, the limit is remembered."""
    server, proxy, client = _intercepted(
        tmp_path, fake_ingest, certificates, intercepting_proxy, max_body=32 * 1024, over=over
    )
    ids = client.put(12)  # one batch of about 96 KB
    uploader = client.uploader()
    assert uploader.attempt() == _queue.SENT, client.lines
    assert server.counts() == dict.fromkeys(ids, 1) and client.queue.entries() == []
    learned = client.learned()
    assert learned is not None and learned <= 32 * 1024 and client.counts == {}
    assert len(proxy.too_large) <= 3 and uploader.requests <= len(proxy.too_large) * 2 + 12 * 8000 // learned + 1
    if over == "413":
        assert client.refusals() == len(proxy.too_large)  # each 413 was heard, not lost to the reset
    else:
        assert sum("cut off with no answer" in line for line in client.lines) == len(proxy.too_large)


def test_a_session_cut_off_alone_is_held_once_smaller_ones_get_through(  # type: ignore[no-untyped-def]
    tmp_path: Path, fake_ingest, certificates, intercepting_proxy
) -> None:
    """A proxy that closes with no answer on bodies over 16 KiB: the large session is held, the others arrive once."""
    server, _, client = _intercepted(
        tmp_path, fake_ingest, certificates, intercepting_proxy, max_body=16 * 1024, over="close"
    )
    (big,) = client.put(1, 40_000)  # the oldest: first in every pass
    small = client.put(3, 2000)
    assert client.uploader().attempt() == _queue.SENT, client.lines
    assert server.counts() == dict.fromkeys(small, 1)
    (held,) = (p.name for p in Path(client.queue.held_directory).iterdir())
    assert big in held and client.counts == {"proxyClosed": 1}


def test_a_cut_off_batch_then_a_413_for_the_one_sent_alone(  # type: ignore[no-untyped-def]
    tmp_path: Path, fake_ingest, certificates, intercepting_proxy
) -> None:
    """Over 12 KiB no answer, over 4 KiB a 413: the one sent alone after the cut is held, and so are the
    others (each too large alone); the upload counts as done, not as a network failure."""
    server, proxy, client = _intercepted(
        tmp_path, fake_ingest, certificates, intercepting_proxy, max_body=4 * 1024, close_over=12 * 1024
    )
    client.put(3)  # 8 KB each: one batch of 24 KB
    uploader = client.uploader()
    assert uploader.attempt() == _queue.SENT, client.lines
    assert server.requests == [] and client.queue.entries() == [] and client.counts == {"proxyTooLarge": 3}
    assert len(proxy.too_large) == 4 and uploader.requests == 4  # the batch, then each session once
    assert _queue.read_state(str(client.directory)).failures == 0


@pytest.mark.parametrize("waiting", [1, 5])
def test_a_proxy_that_answers_nothing_costs_two_requests(
    tmp_path: Path, fake_ingest, certificates, intercepting_proxy, waiting: int
) -> None:  # type: ignore[no-untyped-def]
    """Every body cut off with no answer: the batch and one session alone (or the one session), then a back-off;
    nothing held or lost."""
    server, proxy, client = _intercepted(
        tmp_path, fake_ingest, certificates, intercepting_proxy, max_body=0, over="close"
    )
    client.put(waiting)
    uploader = client.uploader()
    assert uploader.attempt() == "proxy"
    requests = min(waiting, 2)
    assert uploader.requests == requests and len(proxy.too_large) == requests and server.requests == []
    assert len(client.queue.entries()) == waiting and client.counts == {} and client.learned() is None
    assert _queue.read_state(str(client.directory)).failures == 1


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_from_the_proxy_backs_off(tmp_path: Path, nginx, black_hole, status: int) -> None:  # type: ignore[no-untyped-def]
    """nginx's own 502 (the server refuses it) or 504 (the server never answers): kept, retried after a back-off."""
    proxy = forward_proxy(nginx, extra="proxy_read_timeout 1s;")
    client = Client(tmp_path / "data", "http://127.0.0.1:9" if status == 502 else black_hole.url, proxy.url)
    client.put(3)
    uploader = client.uploader()
    assert uploader.attempt() == f"http{status}"
    assert uploader.requests == 1 and len(client.queue.entries()) == 3 and client.counts == {}
    state = _queue.read_state(str(client.directory))
    assert state.failures == 1 and state.next == NOW + _queue.backoff(1)
    assert "gateway on the way" in (cause(state.outcome) or "")
    client.now += 30  # within the back-off: no request
    assert client.uploader().attempt() == "skipped"


def test_a_proxy_wanting_credentials_is_silent_and_status_says_so(tool, fake_ingest, certificates, tinyproxy) -> None:  # type: ignore[no-untyped-def]
    """A proxy's 407: the tool prints nothing; `telemetry status` names the cause and what to set, never a password."""
    server = fake_ingest(tls=certificates.server_context())
    proxy = tinyproxy(auth=("alice", "s3cret"))
    tool.allow()
    env = {"MYTOOL_TELEMETRY_URL": server.url, "https_proxy": proxy.url, "SSL_CERT_FILE": str(certificates.ca_file)}
    run = tool.run("hello", "Ada", env={**env, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert run.returncode == 0 and run.stdout == "Hello, Ada!\n" and run.stderr == ""
    assert server.requests == [] and len(tool.queued()) == 1
    status = tool.run("telemetry", "status", env=env).stdout
    assert "uploads are failing: proxyauth (1 in a row)" in status
    assert "why: the proxy wants a user name and password (407): https_proxy names none" in status
    wrong = proxy.url.replace("http://", "http://alice:wrong@")
    status = tool.run("telemetry", "status", env={**env, "https_proxy": wrong}).stdout
    assert "and refused those in https_proxy" in status and "wrong" not in status
    shown = tool.run("telemetry", "show", env=env).stdout
    assert "why:             the proxy wants a user name and password (407)" in shown


def test_a_proxy_refusing_batches_under_the_smallest_limit_gets_sessions_one_by_one(
    tmp_path: Path,
    fake_ingest,  # type: ignore[no-untyped-def]
    nginx,  # type: ignore[no-untyped-def]
) -> None:
    """A proxy refusing bodies under 1 KiB: a refused batch that cannot be halved further goes one by one, not again."""
    server = fake_ingest()
    proxy = forward_proxy(nginx, "700")  # below _bodylimit.SMALLEST, above one small session
    client = Client(tmp_path / "data", server.url, proxy.url)
    ids = client.put(6, 200)  # about 270 bytes each: batches of up to 3 fit the learned 1 KiB
    # The upload process's lifetime bounds a loop, which then fails the test instead of hanging it.
    uploader = Uploader(
        client.config, client.queue, count=client.count, log=client.lines.append, deadline=time.monotonic() + 10
    )
    assert uploader.attempt() == _queue.SENT
    assert server.counts() == dict.fromkeys(ids, 1) and client.queue.entries() == []
    assert uploader.requests <= 10  # a batch refused, halved to the 1 KiB floor, refused again: then one by one


def test_the_route_names_the_proxy_not_its_credentials() -> None:
    """The learned limit's route: the same for any credentials in the proxy URL, another for another proxy."""
    server = "https://telemetry.example.org"
    routes = {
        _bodylimit.route(server, {"https_proxy": proxy})
        for proxy in ("http://alice:s3cret@proxy.corp:3128", "alice:other@proxy.corp:3128", "proxy.corp:3128")
    }
    assert len(routes) == 1
    assert _bodylimit.route(server, {"https_proxy": "http://proxy.corp:8080"}) not in routes
    assert _bodylimit.route(server, {}) not in routes


def test_from_the_tool_behind_a_proxy_with_a_small_limit(tool, fake_ingest, nginx) -> None:  # type: ignore[no-untyped-def]
    """The tool's own upload process halves what nginx refuses (2 KiB): every session arrives once, the tool says
    nothing, the limit is kept for the next upload process and `show` names it."""
    server = fake_ingest()
    proxy = forward_proxy(nginx, "2k")
    tool.allow()
    queued = tool.queue_sessions(20)  # about 5 KB in one batch
    env = {"MYTOOL_TELEMETRY_URL": server.url, "http_proxy": proxy.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"}
    result = tool.run("hello", "Ada", env=env)
    assert result.stdout == "Hello, Ada!\n" and result.stderr == ""
    counts = server.counts()
    assert tool.queued() == [] and len(counts) == 21 and set(counts.values()) == {1}
    assert dict.fromkeys(queued, 1).items() <= counts.items()
    assert "refused as too large" in (tool.data_dir / "upload.log").read_text()
    limit = (tool.data_dir / "body-limit").read_text().split()
    assert 1024 <= int(limit[0]) <= 2048 and proxy.url not in " ".join(limit)
    shown = tool.run("telemetry", "show", env=env).stdout
    assert f"batches kept to {limit[0]} bytes" in shown
