"""How fast does the loader move sessions from local storage into the warehouse?

    .venv/bin/python bench/loader.py                      # 1,000,000 sessions, DuckDB and ClickHouse
    .venv/bin/python bench/loader.py --sessions 100000 --engines duckdb

Generates demo sessions once into ``--data`` (reused by later runs: the layout is
the real one, one gzip object per session), then measures in the same run, each
phase in a fresh subprocess so peak RSS is its own:

- baseline ``read``: list and read every object's bytes, one thread (the floor of any loader);
- baseline ``read+parse``: also gunzip and decode+validate each one, one thread (the
  naive loader's ceiling, about 14,000 sessions/s on this machine class);
- ``load duckdb``: ``Loader`` into a new DuckDB file;
- ``load clickhouse``: ``Loader`` into a ClickHouse server started here (Debian's
  ``clickhouse-server``, on 127.0.0.1 with its own data directory).

Peak RSS is sampled every 20 ms over the phase's whole process tree (the loader
and its reader workers together).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE = 20_000
TARGET_RSS_MIB = 1024


def generate(data: Path, sessions: int, seed: int) -> None:
    import msgspec

    from tallystick import demo
    from tallystick.schema import Session
    from tallystick.storage.layout import encode_session, session_key
    from tallystick.storage.local import LocalStore

    marker = data / f"generated-{sessions}-{seed}.txt"
    if marker.exists():
        return
    if data.exists():
        shutil.rmtree(data)
    store = LocalStore(data / "sessions", fsync=False)
    decoder = msgspec.json.Decoder(Session)
    encoder = msgspec.json.Encoder()
    started = time.perf_counter()
    count = 0
    for value in demo.generate(sessions, seed=seed, days=365):
        session = decoder.decode(encoder.encode(value))
        store.put_if_absent(session_key(session), encode_session(session))
        count += 1
        if count % 100_000 == 0:
            print(f"  generated {count:,} sessions", file=sys.stderr, flush=True)
    marker.write_text(f"{count}\n")
    print(f"  generated {count:,} sessions in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(_tree_rss_bytes(int(child)) for child in f.read().split())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return total


class PeakRss:
    """Samples this process tree's resident memory every 20 ms; ``peak_mib`` is the largest sum seen.

    (``ru_maxrss`` cannot be used: Linux carries it over fork and exec, so a phase would
    inherit the benchmark driver's peak, and the workers their parent's.)
    """

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss_bytes(os.getpid()))
        return self.peak / 2**20


def phase(name: str, data: Path, workdir: Path, clickhouse_port: int) -> dict[str, float]:
    """Run one measured phase in this (fresh) process; returns its figures."""
    from tallystick.storage.layout import decode_session
    from tallystick.storage.local import LocalStore
    from tallystick.warehouse.loader import partitions

    store = LocalStore(data / "sessions", fsync=False)
    rss = PeakRss()
    started = time.perf_counter()
    sessions = 0
    size = 0
    if name in ("read", "read+parse"):
        # The loader's own listing and read functions, one thread, nothing else.
        for partition in partitions(store):
            for key in store.keys_in(partition):
                raw = store.get_listed(key)
                size += len(raw)
                if name == "read+parse":
                    decode_session(raw)
                sessions += 1
    else:
        from tallystick.warehouse import open_warehouse
        from tallystick.warehouse.loader import Loader

        spec = str(workdir / "bench.duckdb") if name == "duckdb" else f"clickhouse://127.0.0.1:{clickhouse_port}/bench"
        warehouse = open_warehouse(spec)
        stats = Loader(store, warehouse).run()
        check = warehouse.query("SELECT count(*), count(DISTINCT sessionId) FROM sessions").rows[0]
        warehouse.close()
        sessions = stats.loaded
        if (int(check[0]), int(check[1])) != (sessions, sessions):
            raise SystemExit(f"{name}: the warehouse holds {check}, expected {sessions} distinct sessions")
    seconds = time.perf_counter() - started
    return {"sessions": sessions, "seconds": seconds, "rss_mib": rss.stop(), "bytes": size}


class ClickHouseServer:
    def __init__(self, workdir: Path) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from fixtures.clickhouse import start_server  # the test suite's server starter, reused

        self.server = start_server(workdir / "clickhouse")
        self.port = self.server.http_port

    def stop(self) -> None:
        self.server.stop()


def run_phase(name: str, args: argparse.Namespace, workdir: Path, port: int) -> dict[str, float]:
    argv = [sys.executable, __file__, "--phase", name, "--data", str(args.data), "--workdir", str(workdir)]
    argv += ["--clickhouse-port", str(port)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def versions() -> str:
    import duckdb
    import msgspec

    parts = [f"Python {platform.python_version()}", f"duckdb {duckdb.__version__}", f"msgspec {msgspec.__version__}"]
    ch = shutil.which("clickhouse-server")
    if ch:
        query = ["dpkg-query", "-W", "-f", "${Version}", "clickhouse-server"]
        answer = subprocess.run(query, capture_output=True, text=True, check=False)
        parts.append(f"clickhouse-server {answer.stdout.strip() or '(version unknown)'}")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "bench-loader")
    parser.add_argument("--engines", default="duckdb,clickhouse", help="comma-separated: duckdb, clickhouse")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--clickhouse-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        assert args.workdir is not None
        print(json.dumps(phase(args.phase, args.data, args.workdir, args.clickhouse_port)))
        return 0

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    print(f"loader benchmark: {args.sessions:,} demo sessions, local storage {args.data}", file=sys.stderr)
    generate(args.data, args.sessions, args.seed)
    results: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="tallystick-bench-") as tmp:
        workdir = Path(tmp)
        run_phase("read", args, workdir, 0)  # warm the page cache: every phase then reads from memory
        for name in ("read", "read+parse"):
            results.append((f"baseline: {name} (1 thread)", run_phase(name, args, workdir, 0)))
        if "duckdb" in engines:
            results.append(("load into DuckDB", run_phase("duckdb", args, workdir, 0)))
        if "clickhouse" in engines:
            server = ClickHouseServer(workdir)
            try:
                results.append(("load into ClickHouse 18.16", run_phase("clickhouse", args, workdir, server.port)))
            finally:
                server.stop()

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}")
    print(f"load average at the end (1, 5, 15 min): {load} (other work on the machine slows every phase alike)")
    print(f"versions: {versions()}")
    baseline = results[0][1]
    print(
        f"data: {int(baseline['sessions']):,} objects, {baseline['bytes'] / 2**20:,.0f} MiB gzip JSON, "
        "one object per session (warm page cache)"
    )
    header = f"{'phase':<32} {'sessions':>10} {'seconds':>8} {'sessions/s':>11} {'vs read':>8} {'peak RSS':>10}"
    print(header)
    print("-" * len(header))
    for label, r in results:
        rate = r["sessions"] / r["seconds"]
        ratio = r["seconds"] / baseline["seconds"]
        print(
            f"{label:<32} {int(r['sessions']):>10,} {r['seconds']:>8.1f} {rate:>11,.0f} {ratio:>7.2f}x "
            f"{r['rss_mib']:>7,.0f} MiB"
        )
    failed = False
    for label, r in results[2:]:
        rate = r["sessions"] / r["seconds"]
        ok = rate >= TARGET_RATE and r["rss_mib"] <= TARGET_RSS_MIB
        failed |= not ok
        verdict = "meets" if ok else "MISSES"
        print(f"{label}: {verdict} the targets (>= {TARGET_RATE:,} sessions/s, <= {TARGET_RSS_MIB:,} MiB peak RSS)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
