"""How fast does each storage backend take and list sessions? One command, all figures from one run.

    .venv/bin/python bench/storage.py                    # 2000 sessions, every backend
    .venv/bin/python bench/storage.py --sessions 10000 --concurrency 64

For each backend, with the same demo sessions (``tallystick.demo.generate``, the real
layout and gzip encoding):

- ``put``: every session through ``put_if_absent_async`` with ``--concurrency`` writes in
  flight, as the ingest service writes (create-only, durable on return);
- ``list``: ``list("sessions/v1/")`` of all of them, best of three.

Backends: ``local`` (our LocalStore: temp file + fsync + link; the default and the
baseline of the ratio column), ``obstore-local`` (obstore's own LocalStore, which does not
fsync: why the default stays ours), ``memory``, ``s3`` (moto_server) and ``azure``
(Azurite), both started here on 127.0.0.1. moto and Azurite are emulators written in
Python and Node: their figures measure the adapter and the emulator, not AWS or Azure.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.common import free_port  # noqa: E402
from fixtures.objectstores import AZURITE_ACCOUNT, AzureServer, S3Server, find_tool  # noqa: E402
from tallystick.storage import Store, open_store  # noqa: E402
from tallystick.storage.layout import PREFIX  # noqa: E402

BACKENDS = ["local", "obstore-local", "memory", "s3", "azure"]


def sessions(count: int) -> list[tuple[str, bytes]]:
    import msgspec

    from tallystick import demo
    from tallystick.schema import Session
    from tallystick.storage.layout import encode_session, session_key

    decoder = msgspec.json.Decoder(Session)
    encoder = msgspec.json.Encoder()
    result = []
    for value in demo.generate(count, seed=11, days=30):
        session = decoder.decode(encoder.encode(value))
        result.append((session_key(session), encode_session(session)))
    return result


@contextmanager
def server(argv: list[str], ready_url: str, workdir: Path) -> Iterator[None]:
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"{argv[0]} did not start; see {workdir / 'server.log'}") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def obstore_local(directory: Path) -> Store:
    from obstore.store import LocalStore

    from tallystick.storage.bucket import Backend, BucketStore

    directory.mkdir(parents=True)
    backend = Backend("file", "obstore LocalStore", "directory", "", "")
    return BucketStore(LocalStore(directory), url=directory.as_uri(), backend=backend, bucket=str(directory))


def measure(store: Store, data: list[tuple[str, bytes]], concurrency: int) -> tuple[float, float]:
    """(puts per second, objects listed per second)."""

    async def put_all() -> None:
        limit = asyncio.Semaphore(concurrency)

        async def one(key: str, blob: bytes) -> None:
            async with limit:
                if not await store.put_if_absent_async(key, blob):
                    raise SystemExit(f"{key} already existed in a fresh store")

        await asyncio.gather(*(one(k, b) for k, b in data))

    started = time.perf_counter()
    asyncio.run(put_all())
    put_rate = len(data) / (time.perf_counter() - started)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        listed = sum(1 for _ in store.list(PREFIX))
        best = min(best, time.perf_counter() - started)
        if listed != len(data):
            raise SystemExit(f"listed {listed} of {len(data)} objects")
    return put_rate, len(data) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated subset of " + ", ".join(BACKENDS)
    )
    args = parser.parse_args()
    chosen = args.backends.split(",")
    data = sessions(args.sessions)
    size = sum(len(b) for _, b in data) / len(data)

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        work = Path(tmp)
        results: dict[str, tuple[float, float]] = {}
        factories: dict[str, Callable[[], Store]] = {
            "local": lambda: open_store((work / "local").as_uri()),
            "obstore-local": lambda: obstore_local(work / "obstore-local"),
            "memory": lambda: open_store("memory://"),
        }
        for name in ("local", "obstore-local", "memory"):
            if name in chosen:
                results[name] = measure(factories[name](), data, args.concurrency)
        if "s3" in chosen:
            port = free_port()
            (work / "moto").mkdir()
            moto = find_tool("moto_server") or "moto_server"
            argv = [moto, "-H", "127.0.0.1", "-p", str(port)]
            with server(argv, f"http://127.0.0.1:{port}/moto-api/", work / "moto"):
                s3 = S3Server(endpoint=f"http://127.0.0.1:{port}")
                results["s3"] = measure(open_store(s3.url(s3.create_bucket("bench"), "t")), data, args.concurrency)
        if "azure" in chosen:
            port = free_port()
            (work / "azurite").mkdir()
            azurite = find_tool("azurite-blob") or "azurite-blob"
            argv = [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
            argv += ["--disableTelemetry", "--skipApiVersionCheck", "--silent"]
            with server(argv, f"http://127.0.0.1:{port}/", work / "azurite"):
                az = AzureServer(endpoint=f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")
                store = open_store(az.url(az.create_container("bench"), "t"))
                results["azure"] = measure(store, data, args.concurrency)

    azurite_version = "?"
    if (tool := find_tool("azurite-blob")) is not None:
        azurite_version = subprocess.run(
            [tool, "--version"], check=False, capture_output=True, text=True
        ).stdout.strip()
    print(
        f"{platform.machine()} {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"obstore {version('obstore')}, moto {version('moto')}, azurite {azurite_version}"
    )
    print(f"{args.sessions} sessions of {size:.0f} bytes (gzip), {args.concurrency} writes in flight")
    print()
    base_put, base_list = results.get("local", (float("nan"), float("nan")))
    print(f"{'backend':<14} {'put/s':>9} {'vs local':>9} {'list/s':>10} {'vs local':>9}")
    for name, (put_rate, list_rate) in results.items():
        put_ratio, list_ratio = put_rate / base_put, list_rate / base_list
        print(f"{name:<14} {put_rate:>9,.0f} {put_ratio:>8.2f}x {list_rate:>10,.0f} {list_ratio:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
