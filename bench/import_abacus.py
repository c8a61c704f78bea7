"""How much faster does ``tallystick import`` read an S3 bucket with its thread pool than one object at a time?

    .venv/bin/python bench/import_abacus.py                  # 2,000 sessions, readers 1 and 8
    .venv/bin/python bench/import_abacus.py --sessions 500 --readers 1 4 8 16

A moto S3 server (``moto_server``, as the tests start it) on 127.0.0.1 holds demo sessions in
Abacus's layout (``v1/<app>/<version>/<sessionId>.json``); each run imports the whole bucket
into a fresh local directory (fsync off: the bucket's round trips are the question) and is
timed. The first ``--readers`` value is the baseline; each line shows its ratio to it, with
the load average. moto answers from memory on this machine, so a real bucket's latency (tens
of milliseconds per request) makes the pool's gain larger than measured here, not smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

from tallystick import demo
from tallystick.storage import open_store
from tallystick.storage.abacus import import_abacus
from tallystick.storage.local import LocalStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    moto = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    port = _free_port()
    log = open(workdir / "moto.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return process, endpoint
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("moto_server did not start: pip install 'moto[server]'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--readers", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        process, endpoint = _start_moto(root)
        try:
            request = urllib.request.Request(f"{endpoint}/abacus", method="PUT")
            urllib.request.urlopen(request, timeout=10).close()
            query = urlencode(
                {"endpoint": endpoint, "region": "us-east-1", "access_key_id": "x", "secret_access_key": "x"}
            )
            bucket = open_store(f"s3://abacus/?{query}")
            objects = []
            for tree in demo.generate(args.sessions, seed=5):
                key = f"v1/{tree['applicationId']}/{tree['applicationVersion']}/{tree['sessionId']}.json"
                objects.append((key, json.dumps(tree, separators=(",", ":")).encode()))
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda o: bucket.put_if_absent(*o), objects))
            print(
                f"{args.sessions:,} Abacus sessions in moto S3; "
                f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
            )
            baseline = None
            for readers in args.readers:
                dest = LocalStore(root / f"dest-{readers}", fsync=False)
                start = time.perf_counter()
                stats = import_abacus(bucket, dest, readers=readers)
                seconds = time.perf_counter() - start
                assert stats.imported == args.sessions, stats.summary()
                baseline = baseline or seconds
                load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                print(
                    f"readers {readers:>3}: {seconds:6.2f} s, {args.sessions / seconds:8,.0f} sessions/s, "
                    f"{baseline / seconds:4.1f}x readers {args.readers[0]}'s speed  (load {load})"
                )
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
