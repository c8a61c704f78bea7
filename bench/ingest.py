"""How fast does ingest store sessions durably, against a plain Starlette no-op app on one uvicorn worker?

    .venv/bin/python bench/ingest.py            # about two minutes
    .venv/bin/python bench/ingest.py --rounds 3 --seconds 10

Requires ``wrk`` (Debian package ``wrk``; installed here with apt-get when missing and run as
root). The load generator is wrk with a Lua script (one thread): Python would be the bottleneck.

Two servers run side by side, each one uvicorn worker with uvloop and httptools:

* **baseline**: a plain Starlette app whose ``PUT /v1/sessions`` reads the body and answers 201:
  no middleware, no validation, no storage. It is what one worker's HTTP layer can do here;
* **tallystick serve**: the real service, durable local storage through its write-ahead log.

Phases, each ``--seconds`` long, ``--connections`` connections, the same demo sessions with a
fresh sessionId per request:

1. ``--rounds`` times: the baseline, then ``PUT /v1/sessions`` on tallystick (the pair gives one
   ratio; rounds show the spread on a shared machine);
2. ``PUT /v1/noop`` on tallystick (reads the body, answers 201: the service's own HTTP layer,
   middleware and routing included), for reading where the time goes;
3. ``PUT /v1/sessions`` at about 80 % of the best tallystick peak, for the latency under load: the
   same connections, each pausing between requests;
4. ``POST /v1/batches`` with ``--batch`` sessions per request.

It prints wrk's and the servers' CPU use per phase (wrk well below one core while the server
uses its own shows the server is what limits the rate), the CPU time per session of the server
process and of tallystick's writer process (``us/session``: the work each one costs, which
other load changes far less than the rates), the largest resident memory of the service
(server and writer process) while under load, and the machine's 1-minute load average at the
end of each phase: other processes take CPU from every phase, so compare runs at similar load
and read the ratio, measured in the same run, rather than the absolute rates. A durable phase
whose server CPU stays well below one core is limited by the writer's disk work (its log syncs,
which other processes' syncs share), not by the server.

The writer makes no file per session: it answers once the log is synced, and each
checkpoint writes one pack per partition (``storage/_pack.py``). The count of objects stored at
the end is read through the store (packs and the log), not by counting files. On ext4 without a
journal (this machine's root filesystem), creating a file just after many were deleted costs
several times its usual CPU (an earlier writer, with a file per session, measured 560 and 770
against 110-140 us per session right after a run's deletions): leave a few minutes between runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import starlette
import uvicorn

from tallystick import demo
from tallystick.storage.local import LocalStore

PLACEHOLDER = "00000000-0000-4000-8000-000000000000"

LUA_COMMON = r"""
local parts = {}
for line in io.lines("%(bodies)s") do
  local a, b = line:find("%(placeholder)s", 1, true)
  parts[#parts + 1] = {line:sub(1, a - 1), line:sub(b + 1)}
end
local n = 0
local run = %(run)d
local function body()
  n = n + 1
  local p = parts[(n %% #parts) + 1]
  return p[1] .. string.format("%%08x-0000-4000-8000-%%012x", run, n) .. p[2]
end
local headers = {["Content-Type"] = "application/json"}
"""

LUA_SINGLE = r"""
local delay_ms = %(delay)f
request = function()
  return wrk.format("PUT", "%(path)s", headers, body())
end
if delay_ms > 0 then
  delay = function()
    local whole = math.floor(delay_ms)
    if math.random() < delay_ms - whole then return whole + 1 end
    return whole
  end
end
"""

LUA_BATCH = r"""
request = function()
  local items = {}
  for i = 1, %(size)d do items[i] = body() end
  return wrk.format("POST", "/v1/batches", headers, '{"sessions": [' .. table.concat(items, ",") .. "]}")
end
"""

LUA_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %f %f %f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000))
end
"""


@dataclass
class Phase:
    name: str
    requests: int
    bad_status: int
    socket_errors: int
    timeouts: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    wrk_cpu: float  # cores used by wrk
    server_cpu: float  # cores used by the server process
    writer_cpu: float  # cores used by its children (tallystick's writer process)
    load: float = 0.0  # 1-minute load average of the machine at the end
    machine_cpu: float = 0.0  # cores busy on the whole machine (every process and the kernel)
    sessions_per_request: int = 1

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def sessions_rate(self) -> float:
        return self.rate * self.sessions_per_request


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("bench/ingest.py needs wrk: install it with `apt-get install wrk` (Debian package)")
    print("installing wrk (apt-get install -y wrk)", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is still missing after apt-get install wrk")
    return found


def machine_ticks() -> tuple[int, int]:
    """All and idle (idle + iowait) CPU ticks of the machine so far (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


PLAIN_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def noop(request):
    await request.body()
    return Response(status_code=201)


app = Starlette(routes=[Route("/v1/sessions", noop, methods=["PUT"])])
"""


def start_plain(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """The baseline: a plain Starlette no-op app on one uvicorn worker (uvloop, httptools), on a socket bound here."""
    (workdir / "plain_noop.py").write_text(PLAIN_APP)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(workdir), "plain_noop:app", "--fd", str(sock.fileno())]
    argv += ["--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    process = subprocess.Popen(argv, pass_fds=[sock.fileno()], stderr=(workdir / "plain.log").open("ab"), text=True)
    sock.close()
    return process, f"http://127.0.0.1:{port}"


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (the writer process)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_server(workdir: Path, config: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "tallystick.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--app", "demo"]
    argv += ["--data-dir", str(workdir), "--storage", str(workdir / "sessions"), "--config", str(config)]
    log = (workdir / "server.log").open("ab")
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on " not in line:
        process.kill()
        sys.exit(f"server did not start: {line}{(workdir / 'server.log').read_text()}")
    return process, line.split("listening on ", 1)[1].split()[0]


def run_wrk(
    wrk: str,
    url: str,
    script: str,
    *,
    workdir: Path,
    name: str,
    connections: int,
    seconds: int,
    server_pid: int,
    peak_rss: list[int],
) -> Phase:
    path = workdir / f"{name}.lua"
    path.write_text(script + LUA_DONE)
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(path), url]
    server_before = cpu_seconds(server_pid)
    children = _children(server_pid)
    writer_before = sum(map(cpu_seconds, children))
    ticks_before = machine_ticks()
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    wrk_cpu = 0.0
    # Sample wrk's CPU time just before it exits (afterwards /proc has nothing to read).
    while process.poll() is None:
        try:
            wrk_cpu = cpu_seconds(process.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        peak_rss[0] = max(peak_rss[0], rss_bytes(server_pid))
        time.sleep(0.2)
    out, _ = process.communicate()
    elapsed = time.monotonic() - started
    ticks_after = machine_ticks()
    total, idle = ticks_after[0] - ticks_before[0], ticks_after[1] - ticks_before[1]
    machine_cpu = (1 - idle / total) * (os.cpu_count() or 1) if total else 0.0
    server_cpu = cpu_seconds(server_pid) - server_before
    writer_cpu = sum(map(cpu_seconds, children)) - writer_before
    match = re.search(r"^RESULT (.*)$", out, re.MULTILINE)
    if process.returncode != 0 or match is None:
        sys.exit(f"wrk failed ({process.returncode}):\n{out}")
    req, bad, sock, tmo, micros, p50, p99, mean = match.group(1).split()
    return Phase(
        name,
        int(req),
        int(bad),
        int(sock),
        int(tmo),
        int(micros) / 1e6,
        float(p50),
        float(p99),
        float(mean),
        wrk_cpu / elapsed,
        server_cpu / elapsed,
        writer_cpu / elapsed,
        os.getloadavg()[0],
        machine_cpu,
    )


def write_bodies(workdir: Path, count: int, seed: int) -> tuple[Path, float]:
    sessions = list(itertools.islice(demo.generate(count, seed=seed), count))
    lines = []
    for session in sessions:
        session["sessionId"] = PLACEHOLDER
        lines.append(json.dumps(session, separators=(", ", ": ")))
    path = workdir / "bodies.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, sum(map(len, lines)) / len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each phase (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="baseline + durable pairs (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default: %(default)s)")
    parser.add_argument(
        "--load-connections", type=int, help="connections of the 80 %% phase (default: as --connections)"
    )
    parser.add_argument("--sessions", type=int, default=2000, help="distinct demo bodies (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=100, help="sessions per batch (default: %(default)s)")
    parser.add_argument("--dir", help="working directory on the disk to test (default: a temp dir)")
    args = parser.parse_args()
    args.load_connections = args.load_connections or args.connections

    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="tallystick-bench-", dir=args.dir))
    config = workdir / "server.toml"
    config.write_text('noop_endpoint = true\nmax_in_flight = 4096\nlog_level = "warning"\n')
    bodies, mean_size = write_bodies(workdir, args.sessions, seed=7)
    runs = itertools.count(int.from_bytes(os.urandom(3), "big") << 8)

    def common() -> str:
        # Each wrk run counts its requests from 0: a run number of its own keeps its sessionIds new,
        # so no phase re-sends (and gets cheap 304s for) what an earlier phase stored.
        return LUA_COMMON % {"bodies": bodies, "placeholder": PLACEHOLDER, "run": next(runs)}

    plain, plain_url = start_plain(workdir)
    server, url = start_server(workdir, config)
    peak_rss = [0]
    try:
        time.sleep(0.5)
        seconds, conns = args.seconds, args.connections
        session_phases: list[Phase] = []  # every run that stores sessions, warm-ups included

        def wrkrun(
            name: str, lua: str, c: int = conns, s: int = seconds, per_request: int = 1, *, baseline: bool = False
        ) -> Phase:
            pid, target, rss = (plain.pid, plain_url, [0]) if baseline else (server.pid, url, peak_rss)
            phase = run_wrk(
                wrk, target, lua, workdir=workdir, name=name, connections=c, seconds=s, server_pid=pid, peak_rss=rss
            )
            phase.sessions_per_request = per_request
            if not baseline and "/v1/noop" not in lua:
                session_phases.append(phase)
            return phase

        single = lambda path, delay=0.0: common() + LUA_SINGLE % {"path": path, "delay": delay}  # noqa: E731
        wrkrun("warmup", single("/v1/sessions"), s=2, baseline=True)
        wrkrun("warmup", single("/v1/sessions"), s=2)
        pairs = []
        for n in range(1, args.rounds + 1):
            base = wrkrun(f"baseline #{n}", single("/v1/sessions"), baseline=True)
            durable = wrkrun(f"sessions #{n}", single("/v1/sessions"))
            pairs.append((base, durable))
        noop = wrkrun("our no-op", single("/v1/noop"))
        # Each connection pauses so that the total rate is about 80 % of the best peak.
        peak = max(durable.rate for _, durable in pairs)
        mean_ms = statistics.mean(durable.mean_ms for _, durable in pairs)
        load_conns = args.load_connections
        delay_ms = max(0.0, load_conns / (0.8 * peak) * 1000 - mean_ms)
        at80 = wrkrun("sessions@80%", single("/v1/sessions", delay_ms), c=load_conns)
        if at80.rate > 0:  # one correction step towards 80 %
            delay_ms = max(0.0, delay_ms * at80.rate / (0.8 * peak) + at80.mean_ms * (at80.rate / (0.8 * peak) - 1))
            at80 = wrkrun("sessions@80%", single("/v1/sessions", delay_ms), c=load_conns)
        batch = wrkrun("batches", common() + LUA_BATCH % {"size": args.batch}, per_request=args.batch)
    finally:
        for process in (server, plain):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    stored = sum(1 for _ in LocalStore(workdir / "sessions", fsync=False).list("sessions/"))  # files and packs
    sent = sum(p.requests * p.sessions_per_request for p in session_phases)
    counts = (stored, sent)
    report(args, pairs, (noop, at80, batch), peak=peak, rss=peak_rss[0], size=mean_size, counts=counts, wd=workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(
    args: argparse.Namespace,
    pairs: list[tuple[Phase, Phase]],
    phases: tuple[Phase, Phase, Phase],
    *,
    peak: float,
    rss: int,
    size: float,
    counts: tuple[int, int],
    wd: Path,
) -> None:
    noop, at80, batch = phases
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {_cpu_model()}; Linux {platform.release()}")
    print(
        f"python {platform.python_version()}, uvicorn {uvicorn.__version__}, starlette {starlette.__version__}, "
        f"msgspec {msgspec.__version__}; {wrk_version.strip()}"
    )
    print(f"storage: local directory, write-ahead log (one fdatasync per group) on {_filesystem(wd)}; one worker")
    print(f"bodies: demo sessions, mean {size:,.0f} bytes, fresh sessionId per request; wrk -t1, {args.seconds}s each")
    print()
    header = f"{'phase':<16}{'conns':>6}{'req/s':>10}{'sessions/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
    header += f"{'wrk CPU':>9}{'server CPU':>11}{'us/session':>11}{'writer us/session':>18}{'machine':>8}{'load':>6}"
    print(header)
    for base, durable in pairs:
        _row(base, args.connections)
        _row(durable, args.connections)
    _row(noop, args.connections)
    _row(at80, args.load_connections)
    _row(batch, args.connections)
    print()
    ratios = [durable.rate / base.rate for base, durable in pairs]
    spread = f"rounds: {', '.join(f'{r:.2f}' for r in ratios)}" if len(ratios) > 1 else "one round"
    print(f"durable PUT / plain Starlette no-op: {statistics.median(ratios):.2f} median ({spread})  (target >= 0.50)")
    print(f"our no-op / plain Starlette no-op: {noop.rate / pairs[-1][0].rate:.2f}  (the service's HTTP layer)")
    # The machine's CPU per request, every process and the kernel together (wrk, server, writer, the
    # kernel's writeback of new files): where it is near all cores, the rate is bounded by CPU, not waits.
    cores = os.cpu_count() or 1
    plain_rows = [(p.machine_cpu, p.machine_cpu / p.rate * 1e6) for p, _ in pairs]
    durable_rows = [(p.machine_cpu, p.machine_cpu / p.rate * 1e6) for _, p in pairs]
    print(
        f"whole machine: baseline {statistics.median(c for c, _ in plain_rows):.2f} of {cores} cores busy, "
        f"{statistics.median(u for _, u in plain_rows):,.0f} us of CPU per request; durable PUT "
        f"{statistics.median(c for c, _ in durable_rows):.2f} cores, "
        f"{statistics.median(u for _, u in durable_rows):,.0f} us per session (medians over rounds)"
    )
    share = at80.rate / peak
    print(
        f"latency at {share:.0%} of peak ({at80.rate:,.0f} req/s): p50 {at80.p50_ms:.1f} ms, "
        f"p99 {at80.p99_ms:.1f} ms  (target p99 <= 20 ms)"
    )
    print(f"service RSS under load (server + writer): {rss / 2**20:,.0f} MB  (target <= 150 MB)")
    print(f"batch endpoint: {batch.sessions_rate:,.0f} sessions/s ({args.batch} per request)")
    stored, sent = counts
    # Every session is new, so each 2xx answer is a 201 and an object: a shortfall would be 304s or lost sessions.
    print(f"objects stored: {stored:,} of {sent:,} sessions answered 2xx (all phases, warm-ups included)")


def _row(phase: Phase, conns: int) -> None:
    errors = phase.bad_status + phase.socket_errors + phase.timeouts
    print(
        f"{phase.name:<16}{conns:>6}{phase.rate:>10,.0f}{phase.sessions_rate:>12,.0f}{phase.p50_ms:>9.2f}"
        f"{phase.p99_ms:>9.2f}{errors:>9}{phase.wrk_cpu:>9.0%}{phase.server_cpu:>11.0%}"
        f"{phase.server_cpu / phase.sessions_rate * 1e6:>11.0f}"
        f"{phase.writer_cpu / phase.sessions_rate * 1e6:>18.0f}{phase.machine_cpu:>8.2f}{phase.load:>6.2f}"
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _filesystem(path: Path) -> str:
    out = subprocess.run(
        ["df", "--output=fstype", str(path)], capture_output=True, text=True, check=False
    ).stdout.split()
    return out[-1] if out else "unknown"


if __name__ == "__main__":
    sys.exit(main())
