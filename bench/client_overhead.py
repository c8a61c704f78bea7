#!/usr/bin/env python3
"""What the client costs a tool per run: one command, all figures from the same run.

    python bench/client_overhead.py [--runs 40]

Runs examples/mytool.py (``hello Ada``) as a subprocess in several set-ups,
interleaved, and prints the median wall time of each:

- bare ``python -c pass`` (the interpreter's own start-up);
- the tool with a no-op stand-in for ``tallystick.client`` (the tool's own cost);
- the tool with telemetry disabled (``DO_NOT_TRACK=1``; the client is imported);
- the tool with telemetry on: import + record + queue write (the queue is emptied
  between runs, so no upload starts);
- the tool with telemetry on and a session waiting, uploaded to a live local server
  (background thread + the bounded wait at exit);
- the tool with telemetry on and sessions waiting for a black-holed server (accepts,
  never answers): the exit delay the bound allows.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mytool.py"

STUB = """
class Config:
    def __init__(self, *args, **kwargs): pass
def configure(config): pass
def event(type_name, /, **attributes): pass
def set_attributes(**attributes): pass
def record_exception(exc): pass
def set_consent(allowed): pass
def consent(): return "unset"
class span:
    def __init__(self, type_name, /, **attributes): pass
    def __enter__(self): return self
    def __exit__(self, *exc): return None
    def __call__(self, function): return function
"""


class _Accept(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    do_PUT = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _black_hole() -> tuple[socket.socket, list[socket.socket], threading.Event]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    sock.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    threading.Thread(target=run, daemon=True).start()
    return sock, held, stop


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one run."""
    # A blocking wait4: with a timeout, subprocess polls with doubling sleeps and times snap to 1, 2, 4 ... 64 ms.
    began = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = (time.perf_counter() - began) * 1000
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv} failed with status {process.returncode}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000


def _seed(queue: Path) -> None:
    queue.mkdir(parents=True, exist_ok=True)
    name = f"{int(time.time() * 1e6):017d}-00000000-0000-4000-8000-000000000000.json"
    (queue / name).write_text(
        '{"sessionId":"00000000-0000-4000-8000-000000000000","userId":"00000000-0000-4000-8000-000000000001",'
        '"sessionStartTime":"2030-01-01T00:00:00Z","sessionEndTime":"2030-01-01T00:00:00Z",'
        '"applicationId":"mytool","applicationVersion":"1.4.0"}'
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per set-up (default 40)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tallystick-bench-"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hole, held, stop = _black_hole()
    try:
        stub = work / "stub" / "tallystick" / "client"
        stub.mkdir(parents=True)
        (stub.parent / "__init__.py").write_text("")
        (stub / "__init__.py").write_text(STUB)
        base = {k: v for k, v in os.environ.items() if k not in {"CI", "DO_NOT_TRACK", "GITHUB_ACTIONS", "GITLAB_CI"}}
        base.update(HOME=str(work / "home"), XDG_DATA_HOME=str(work / "data"), MYTOOL_TELEMETRY="1")
        queue = work / "data" / "mytool" / "telemetry" / "queue"
        tool = [sys.executable, str(EXAMPLE), "hello", "Ada"]
        live_url = f"http://127.0.0.1:{server.server_address[1]}"
        hole_url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        setups = {
            "bare python -c pass": ([sys.executable, "-c", "pass"], base, None),
            "tool, no-op stand-in client": (tool, {**base, "PYTHONPATH": str(stub.parents[1])}, None),
            "tool, telemetry disabled": (tool, {**base, "DO_NOT_TRACK": "1"}, None),
            "tool, telemetry on (record + queue write)": (tool, {**base, "MYTOOL_TELEMETRY_URL": live_url}, "empty"),
            "tool, on + upload 1 waiting (live server)": (tool, {**base, "MYTOOL_TELEMETRY_URL": live_url}, "seed"),
            "tool, on + black-holed server at exit": (tool, {**base, "MYTOOL_TELEMETRY_URL": hole_url}, "seed"),
        }
        times: dict[str, list[float]] = {name: [] for name in setups}
        cpu_times: dict[str, list[float]] = {name: [] for name in setups}
        for argv, env, _ in setups.values():  # warm-up: .pyc files, page cache
            _time(argv, env)
        for _ in range(args.runs):
            for name, (argv, env, queue_state) in setups.items():
                shutil.rmtree(queue, ignore_errors=True)
                if queue_state == "seed":
                    _seed(queue)
                wall, cpu_ms = _time(argv, env)
                times[name].append(wall)
                cpu_times[name].append(cpu_ms)
        median = {name: statistics.median(values) for name, values in times.items()}
        cpu = {name: statistics.median(values) for name, values in cpu_times.items()}
    finally:
        server.shutdown()
        stop.set()
        for connection in held:
            connection.close()
        hole.close()
        shutil.rmtree(work, ignore_errors=True)

    bare = median["bare python -c pass"]
    own = median["tool, no-op stand-in client"]
    cpu_own = cpu["tool, no-op stand-in client"]
    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} CPUs")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}; runs per set-up: {args.runs}")
    print("wall = median wall time; cpu = median user+system CPU time of the child (steadier on a busy machine)")
    print()
    print(f"{'set-up':44} {'wall ms':>8} {'vs bare':>8} {'vs no-op':>9} {'added ms':>9} {'cpu ms':>7} {'added':>6}")
    for name, value in median.items():
        extra = cpu[name] - cpu_own
        ratios = f"{value / bare:7.2f}x {value / own:8.2f}x"
        print(f"{name:44} {value:8.1f} {ratios} {value - own:+9.1f} {cpu[name]:7.1f} {extra:+6.1f}")
    on = median["tool, telemetry on (record + queue write)"]
    added, ratio = on - own, on / own
    cpu_added = cpu["tool, telemetry on (record + queue write)"] - cpu_own
    disabled = median["tool, telemetry disabled"] - own
    exit_delay = median["tool, on + black-holed server at exit"] - on
    print()
    print(f"added per run by telemetry (import + record + queue write): {added:+.1f} ms wall, {cpu_added:+.1f} ms CPU")
    print(f"  ratio to the tool alone: {ratio:.3f}; target <= 3 ms")
    print(f"added by the client when disabled (import + consent check): {disabled:+.1f} ms wall")
    print(f"exit delay with a black-holed server: {exit_delay:+.1f} ms wall; target <= 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
