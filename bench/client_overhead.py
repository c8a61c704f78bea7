#!/usr/bin/env python3
"""What the client costs a tool per run: one command, all figures from the same run.

    python bench/client_overhead.py [--runs 40] [--raise-priority] [--baseline REF]

Builds a wheel of this checkout and installs it, without dependencies, into a fresh
virtual environment: the regular install users get (not the editable one of
development, whose import hooks cost milliseconds more). Then runs
examples/mytool.py (``hello Ada``) with that environment's Python as a subprocess in
several set-ups, interleaved, and prints the median wall and CPU time of each:

- bare ``python -c pass`` (the interpreter's own start-up);
- the tool with a no-op stand-in for ``tallystick.client`` (the tool's own cost);
- the tool with telemetry disabled (``DO_NOT_TRACK=1``; the client is imported);
- a minimal tool (it imports only the client, no ``json`` or ``argparse`` of its own),
  telemetry disabled and on with no upload due: what the client itself imports shows;
- telemetry on, no upload due: import + record + queue write (turned on for the run by
  ``MYTOOL_TELEMETRY=1``), and the same turned on by a stored "allowed" (``mytool telemetry
  allow``: how most users run it; it adds the check of what the choice covers);
- HTTPS steady state: a session from an earlier run waits at every run, the server is a
  local HTTPS server whose test CA the tool trusts through ``SSL_CERT_FILE``, and the
  schedule is the default one (an upload at most every 10 minutes: the first run's exit
  starts the upload process, the next ones find it not due);
- the same with an upload due at every run (``upload_interval`` 0): every exit starts
  the upload process (the cost of one start; CI runs pay it at every exit);
- a black-holed server (accepts, never answers) with an upload due, with and
  without ``CI=true``: the exit delay;
- a black-holed server with the shared back-off in force, 20 runs: how many
  connections the server saw (the target: one attempt per back-off period).

With ``--baseline REF`` (a commit, e.g. ``main~3``) a wheel of that commit goes into a second venv and
its recording set-ups (telemetry disabled, on with no upload due, on by a stored "allowed", the minimal
tool off and on) run in the same shuffled rounds: a closing table gives each version's cost against its
own DO_NOT_TRACK=1 run and this checkout's run minus the baseline's, round by round. On a shared machine
that difference is steadier than two benchmark runs one after the other.

The set-ups run in two phases of shuffled rounds: first those that start no upload process, then
those that do (each with a DO_NOT_TRACK=1 and a no-upload-due run of its own to be compared with), so
that no upload process still starting up after an earlier run lands on the recording rows; after a run
that uploads to the HTTPS server the next one waits until its upload process has ended (at most 3 s):
at nice 19 beside the bench's nice -20 it could outlast a fixed pause, and it weighed 2-3 ms on every
run of the upload rounds, DO_NOT_TRACK=1 included.

Every row is compared with the tool alone (the no-op stand-in); the 3 ms targets are judged, as the
issue names them, against the same tool with telemetry disabled (DO_NOT_TRACK=1), with the stricter
no-op comparison printed beside them. CPU time counts only
the tool's process, not the detached upload process it starts (which runs at nice 19
and is given ``SETTLE`` seconds before the next measured run starts).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mytool.py"
BACKOFF_RUNS = 20
# After a run that starts the upload process: the measured cost is the tool's, and on a user's machine the
# next run rarely starts within this time, so the upload process's start-up should not land on it here.
SETTLE = 0.3
UPLOAD_DONE = 3.0  # seconds, at most, to wait for an HTTPS upload process to end
# The second phase's own baselines (see main): the same set-ups as two rows of the first phase.
UPLOAD_OFF = "tool, telemetry disabled (upload rounds)"
UPLOAD_ON = "on, no upload due (upload rounds)"

# A tool that imports nothing but the client (mytool imports argparse and json, which hide what the client imports).
MINIMAL = """import os
import tallystick.client as telemetry
url = os.environ.get("MYTOOL_TELEMETRY_URL", "https://telemetry.example.org")
telemetry.configure(telemetry.Config("mytool", "1.4.0", url))
with telemetry.span("Greet"):
    telemetry.event("UpdateNudgeShown", latestVersion="2.1")
"""

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


STUB_COMMANDS = """
def add_argparse(subparsers, name="telemetry"):
    parser = subparsers.add_parser(name, help="allow or deny anonymous usage statistics")
    parser.add_argument("telemetry", choices=("allow", "deny", "status"))
    return parser
def run(choice, out=None):
    return 0
"""


class _Accept(BaseHTTPRequestHandler):
    """The ingest API's happy path: 201 for a PUT, every session stored for a batch."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):  # handshake here, not in the accept loop
            self.request.settimeout(10)
            self.request.do_handshake()
        super().setup()

    def _answer(self) -> None:
        import json

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = b""
        status = 201
        if self.path == "/v1/batches":
            sessions = json.loads(body)["sessions"]
            payload = json.dumps({"results": [{"sessionId": s["sessionId"], "status": 201} for s in sessions]}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    do_PUT = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class _BlackHole:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        for connection in self.held:
            connection.close()
        self.sock.close()


def _https_server(work: Path) -> tuple[ThreadingHTTPServer, Path]:
    """A local HTTPS server with a certificate from a test CA; the CA's file for SSL_CERT_FILE."""
    try:
        import trustme
    except ImportError:
        raise SystemExit("bench: needs trustme (python3 dev.py test installs it into .venv)") from None
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = work / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, ca_file


def _raise_priority() -> None:
    """A session of its own (so an autogroup of its own under Linux) at nice -20, for this process and its children."""
    try:
        if os.getsid(0) != os.getpid():
            os.setsid()
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write("-20")
        os.nice(-20 - os.nice(0))
    except OSError as exc:
        raise SystemExit(f"bench: --raise-priority needs root on Linux: {exc}") from None
    print("bench: running at nice -20 in an autogroup of its own", file=sys.stderr, flush=True)


def _install(work: Path, source: Path = ROOT, name: str = "venv") -> Path:
    """A fresh venv with ``source`` (this checkout) installed from a wheel, as users install it; its python."""
    wheels = work / f"wheels-{name}"
    print(f"bench: building a wheel of {source} and installing it into a fresh venv ...", file=sys.stderr, flush=True)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL)
    (wheel,) = wheels.glob("tallystick-*.whl")
    venv.create(work / name, with_pip=True)
    python = work / name / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    where = [str(python), "-c", "import tallystick.client as c; print(c.__file__)"]
    check = subprocess.run(where, check=False, capture_output=True, text=True)
    if "site-packages" not in check.stdout:
        raise SystemExit(f"bench: the client does not come from the regular install: {check.stdout or check.stderr}")
    return python


def _checkout(work: Path, ref: str) -> Path:
    """The files of ``ref`` (a commit of this checkout's repository), for a wheel of the baseline."""
    tar = work / "baseline.tar"
    try:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--prefix=baseline/", "-o", str(tar), ref], check=True)
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(f"bench: --baseline needs a commit of this git checkout, {ref!r} is not one") from None
    subprocess.run(["tar", "-xf", str(tar), "-C", str(work)], check=True)
    return work / "baseline"


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
    """One session from an earlier run, waiting."""
    queue.mkdir(parents=True, exist_ok=True)
    import uuid

    session_id = str(uuid.uuid4())
    name = f"{int(time.time() * 1e6):017d}-{session_id}.json"
    (queue / name).write_text(
        f'{{"sessionId":"{session_id}","userId":"00000000-0000-4000-8000-000000000001",'
        '"sessionStartTime":"2030-01-01T00:00:00Z","sessionEndTime":"2030-01-01T00:00:00Z",'
        '"applicationId":"mytool","applicationVersion":"1.4.0"}'
    )


def _wait_for_uploads(data: Path, limit: float) -> None:
    """Until no upload process with its data below ``data`` runs (at most ``limit`` seconds).

    An upload to the HTTPS server ends in well under a second (start, TLS, send, the state written),
    but at nice 19 beside runs at nice -20 it can outlast ``SETTLE`` and weigh on the next measured run
    (its file writes and syncs, on the same filesystem). The black-holed set-ups are not waited for:
    their upload processes sleep until their request timeout, at no cost to anyone.
    """
    needle = str(data).encode()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        running = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as file:
                    command = file.read()
            except OSError:
                continue
            if b"tallystick.client._child" in command and needle in command:
                running = True
                break
        if not running:
            return
        time.sleep(0.01)


class Setup:
    """One way of running the tool: its command, environment, data directory and what to do before each run."""

    def __init__(self, argv: list[str], env: dict[str, str], data: Path | None = None, before: str = "") -> None:
        self.argv = argv
        self.env = env
        self.data = data
        # "empty": no upload due; "allowed": and a stored "allowed"; "seed": one session waiting; "due": and no back-off
        self.before = before
        self.starts_upload = before in {"seed", "due"}  # at least sometimes
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def prepare(self) -> None:
        if self.data is None:
            return
        telemetry = self.data / "mytool" / "telemetry"
        queue = telemetry / "queue"
        queue.mkdir(parents=True, exist_ok=True)  # kept, as on a user's machine after the first run
        for name in os.listdir(queue):
            (queue / name).unlink(missing_ok=True)
        if self.before in {"seed", "due"}:
            _seed(telemetry / "queue")
        if self.before == "due":
            (telemetry / "upload-state").unlink(missing_ok=True)
        if self.before in {"empty", "allowed"}:  # no upload due: the schedule says later
            telemetry.mkdir(parents=True, exist_ok=True)
            (telemetry / "upload-state").write_text(f"{time.time() + 3600:.3f} 0 sent\n")
        if self.before == "allowed":
            (telemetry / "consent").write_text("allowed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per set-up (default 40)")
    parser.add_argument(
        "--raise-priority",
        action="store_true",
        help="(root, Linux) run in a session of its own at nice -20, autogroup included: on a machine busy with "
        "others' work this comes close to a quiet machine for the measured runs",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also install the client of this commit (e.g. main~3) and run its recording set-ups in the same "
        "rounds: an interleaved A/B of two versions of the client on the same machine at the same load",
    )
    args = parser.parse_args()
    if args.raise_priority:
        _raise_priority()
    work = Path(tempfile.mkdtemp(prefix="tallystick-bench-"))
    hole = _BlackHole()
    backoff_hole = _BlackHole()
    server = None
    try:
        python = _install(work)
        old = _install(work, _checkout(work, args.baseline), "venv-baseline") if args.baseline else None
        server, ca_file = _https_server(work)
        stub = work / "stub" / "tallystick" / "client"
        stub.mkdir(parents=True)
        (stub.parent / "__init__.py").write_text("")
        (stub / "__init__.py").write_text(STUB)
        (stub / "commands.py").write_text(STUB_COMMANDS)
        steering = {"CI", "DO_NOT_TRACK", "GITHUB_ACTIONS", "GITLAB_CI", "SSL_CERT_FILE", "SSL_CERT_DIR"}
        base = {k: v for k, v in os.environ.items() if k not in steering and not k.upper().endswith("_PROXY")}
        base.update(HOME=str(work / "home"), MYTOOL_TELEMETRY="1")
        tool = [str(python), str(EXAMPLE), "hello", "Ada"]
        (work / "minimal.py").write_text(MINIMAL)
        minimal = [str(python), str(work / "minimal.py")]
        https_url = f"https://127.0.0.1:{server.server_address[1]}"

        def data(name: str) -> tuple[dict[str, str], Path]:
            directory = work / name
            return {**base, "XDG_DATA_HOME": str(directory)}, directory

        on, on_dir = data("on")
        allowed, allowed_dir = data("allowed")
        bare_on, bare_on_dir = data("minimal")
        allowed = {k: v for k, v in allowed.items() if k != "MYTOOL_TELEMETRY"}  # the stored choice decides
        https, https_dir = data("https")
        steady, steady_dir = data("steady")
        laptop, laptop_dir = data("hole")
        ci, ci_dir = data("hole-ci")
        setups = {
            "bare python -c pass": Setup([str(python), "-c", "pass"], base),
            "tool, no-op stand-in client": Setup(tool, {**base, "PYTHONPATH": str(stub.parents[1])}),
            "tool, telemetry disabled": Setup(tool, {**base, "DO_NOT_TRACK": "1"}),
            "on, no upload due (record + queue write)": Setup(
                tool, {**on, "MYTOOL_TELEMETRY_URL": https_url}, on_dir, "empty"
            ),
            "on by a stored 'allowed', no upload due": Setup(
                tool, {**allowed, "MYTOOL_TELEMETRY_URL": https_url}, allowed_dir, "allowed"
            ),
            "minimal tool, telemetry disabled": Setup(minimal, {**base, "DO_NOT_TRACK": "1"}),
            "minimal tool, on, no upload due": Setup(
                minimal, {**bare_on, "MYTOOL_TELEMETRY_URL": https_url}, bare_on_dir, "empty"
            ),
            "on, HTTPS steady state, default schedule": Setup(
                tool, {**steady, "MYTOOL_TELEMETRY_URL": https_url, "SSL_CERT_FILE": str(ca_file)}, steady_dir, "seed"
            ),
            "on, HTTPS upload due at every run": Setup(
                tool,
                {
                    **https,
                    "MYTOOL_TELEMETRY_URL": https_url,
                    "SSL_CERT_FILE": str(ca_file),
                    "MYTOOL_TELEMETRY_UPLOAD_INTERVAL": "0",
                },
                https_dir,
                "seed",
            ),
            "on, black-holed server, upload due": Setup(
                tool, {**laptop, "MYTOOL_TELEMETRY_URL": hole.url}, laptop_dir, "due"
            ),
            "on, black-holed server, upload due, CI=true": Setup(
                tool, {**ci, "MYTOOL_TELEMETRY_URL": hole.url, "CI": "true"}, ci_dir, "due"
            ),
        }
        if old is not None:  # the same recording set-ups with the baseline's client, in the same rounds
            old_tool, old_minimal = [str(old), str(EXAMPLE), "hello", "Ada"], [str(old), str(work / "minimal.py")]
            old_on, old_on_dir = data("baseline-on")
            old_allowed, old_allowed_dir = data("baseline-allowed")
            old_allowed = {k: v for k, v in old_allowed.items() if k != "MYTOOL_TELEMETRY"}
            old_bare_on, old_bare_on_dir = data("baseline-minimal")
            setups.update(
                {
                    "baseline: tool, telemetry disabled": Setup(old_tool, {**base, "DO_NOT_TRACK": "1"}),
                    "baseline: on, no upload due": Setup(
                        old_tool, {**old_on, "MYTOOL_TELEMETRY_URL": https_url}, old_on_dir, "empty"
                    ),
                    "baseline: on by a stored 'allowed'": Setup(
                        old_tool, {**old_allowed, "MYTOOL_TELEMETRY_URL": https_url}, old_allowed_dir, "allowed"
                    ),
                    "baseline: minimal tool, telemetry disabled": Setup(old_minimal, {**base, "DO_NOT_TRACK": "1"}),
                    "baseline: minimal tool, on": Setup(
                        old_minimal, {**old_bare_on, "MYTOOL_TELEMETRY_URL": https_url}, old_bare_on_dir, "empty"
                    ),
                }
            )
        # Two phases of shuffled rounds. The set-ups that start no upload process run in rounds of their own:
        # an upload process (nice 19, python + TLS) still starting up when the next run is measured slows it,
        # and the recording rows would carry that noise for no reason. The set-ups that start one run in the
        # second phase, with their own DO_NOT_TRACK=1 and no-upload-due runs to be compared with.
        quiet = [s for s in setups.values() if not s.starts_upload]
        setups[UPLOAD_OFF] = Setup(tool, {**base, "DO_NOT_TRACK": "1"})
        setups[UPLOAD_ON] = Setup(tool, {**on, "MYTOOL_TELEMETRY_URL": https_url}, on_dir, "empty")
        uploading = [s for s in setups.values() if s not in quiet]
        for setup in setups.values():  # warm-up: .pyc files, page cache
            setup.prepare()
            _time(setup.argv, setup.env)
        shuffle = random.Random(0).shuffle
        for order in (quiet, uploading):
            for _ in range(args.runs):
                shuffle(order)  # no set-up always runs right after another's upload process or first in a round
                for setup in order:
                    setup.prepare()
                    wall, cpu_ms = _time(setup.argv, setup.env)
                    setup.wall.append(wall)
                    setup.cpu.append(cpu_ms)
                    if setup.starts_upload:  # its upload process starts up meanwhile, off the next measured run
                        time.sleep(SETTLE)
                        if setup.data is not None and setup.env.get("MYTOOL_TELEMETRY_URL") == https_url:
                            _wait_for_uploads(setup.data, UPLOAD_DONE)
        # The shared back-off: runs one after another on CI against a black hole, state never reset.
        backoff_env, backoff_dir = data("backoff")
        backoff_env = {**backoff_env, "MYTOOL_TELEMETRY_URL": backoff_hole.url, "CI": "true"}
        for _ in range(BACKOFF_RUNS):
            _time(tool, backoff_env)
        # The upload process (nice 19) claims its attempt by writing the state: on a busy machine that can take
        # more than a second, so wait for it (a bounded while), then a moment for its connection to land.
        state_file = backoff_dir / "mytool" / "telemetry" / "upload-state"
        deadline = time.monotonic() + 15.0
        while not state_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        backoff_connections = len(backoff_hole.held)
        backoff_state = state_file.read_text().split() if state_file.exists() else ["none", "written"]
        https_queue = https_dir / "mytool" / "telemetry" / "queue"
        https_left = len(list(https_queue.glob("*.json"))) if https_queue.exists() else 0
    finally:
        if server is not None:
            server.shutdown()
        hole.close()
        backoff_hole.close()
        shutil.rmtree(work, ignore_errors=True)
    failed = _report(setups, args.runs, backoff_connections, backoff_state, https_left)
    if args.baseline:
        _compare(setups, args.baseline)
    return failed


def _report(
    setups: dict[str, Setup], runs: int, backoff_connections: int, backoff_state: list[str], https_left: int
) -> int:
    setups = {name: s for name, s in setups.items() if not name.startswith("baseline: ")}  # see _compare
    median = {name: statistics.median(s.wall) for name, s in setups.items()}
    cpu = {name: statistics.median(s.cpu) for name, s in setups.items()}
    bare = median["bare python -c pass"]
    own = median["tool, no-op stand-in client"]
    cpu_own = cpu["tool, no-op stand-in client"]
    print(f"machine: {platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} CPUs")
    print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at the end of the run;"
          f" nice {os.nice(0)}")  # fmt: skip
    print(f"python:  {platform.python_implementation()} {platform.python_version()}; runs per set-up: {runs}")
    print("install: a wheel of this checkout in a fresh venv (regular, non-editable)")
    print("wall = median wall time; cpu = median user+system CPU time of the tool's process")
    print()
    print(f"{'set-up':44} {'wall ms':>8} {'vs bare':>8} {'vs tool':>8} {'added ms':>9} {'cpu ms':>7} {'added':>6}")
    for name, value in median.items():
        extra = cpu[name] - cpu_own
        ratios = f"{value / bare:7.2f}x {value / own:7.2f}x"
        print(f"{name:44} {value:8.1f} {ratios} {value - own:+9.1f} {cpu[name]:7.1f} {extra:+6.1f}")

    def paired(name: str, base: str) -> float:
        """Median over rounds of (name - base) in the same round: steadier than a difference of medians."""
        return statistics.median(a - b for a, b in zip(setups[name].wall, setups[base].wall, strict=True))

    tool, on = "tool, no-op stand-in client", "on, no upload due (record + queue write)"
    steady, https, hole, hole_ci = (
        "on, HTTPS steady state, default schedule",
        "on, HTTPS upload due at every run",
        "on, black-holed server, upload due",
        "on, black-holed server, upload due, CI=true",
    )
    off = "tool, telemetry disabled"
    # The issue's baseline for the 3 ms targets is "the same tool without telemetry": DO_NOT_TRACK=1 (the
    # client is imported, nothing is recorded). The no-op stand-in is stricter (it also charges the import);
    # both are printed, the target is judged against the issue's.
    rows = [
        ("telemetry on, no upload due: added wall", paired(on, off), 3.0, median[on] / own),
        ("HTTPS steady state (default schedule): added wall", paired(steady, UPLOAD_OFF), 3.0, median[steady] / own),
        ("exit delay, black-holed server", paired(hole, UPLOAD_ON), 5.0, median[hole] / own),
        ("exit delay, black-holed server, CI=true", paired(hole_ci, UPLOAD_ON), 5.0, median[hole_ci] / own),
    ]
    print()
    print("targets: the median over rounds of the difference within a round (each round runs every set-up of its")
    print("phase once, in a shuffled order: first the set-ups that start no upload process, then those that do, with")
    print("DO_NOT_TRACK=1 and no-upload-due runs of their own); added = vs the same tool with DO_NOT_TRACK=1 (the")
    print("issue's baseline); exit delay = vs telemetry on with no upload due")
    failed = False
    for label, value, target, ratio in rows:
        met = value <= target
        failed |= not met
        print(f"{label:52} {value:+6.1f} ms  target <= {target:.0f} ms  {'met' if met else 'NOT MET'}"
              f"  (ratio to the tool alone {ratio:.3f})")  # fmt: skip
    stored = paired("on by a stored 'allowed', no upload due", off)
    print(f"{'  the same, on by a stored allowed (most users)':52} {stored:+6.1f} ms  (vs DO_NOT_TRACK=1)")
    alone = paired("minimal tool, on, no upload due", "minimal tool, telemetry disabled")
    print(f"{'  the same, a tool importing only the client':52} {alone:+6.1f} ms  (vs its DO_NOT_TRACK=1 run)")
    for label, name in (
        ("  telemetry disabled vs a no-op stand-in", off),
        ("  stricter: no upload due vs a no-op stand-in", on),
    ):
        print(f"{label:52} {paired(name, tool):+6.1f} ms  (no target: includes importing the client)")
    # CPU is steadier than wall on a shared machine: the same comparison in CPU time of the tool's process.
    cpu_off = statistics.median(a - b for a, b in zip(setups[off].cpu, setups[tool].cpu, strict=True))
    print(f"{'  telemetry disabled vs a no-op stand-in, CPU':52} {cpu_off:+6.1f} ms")
    cpu_on = statistics.median(a - b for a, b in zip(setups[on].cpu, setups[off].cpu, strict=True))
    print(f"{'  telemetry on, no upload due vs DO_NOT_TRACK=1, CPU':52} {cpu_on:+6.1f} ms")
    met = backoff_connections <= 1
    failed |= not met
    print(f"{'black-holed network, ' + str(BACKOFF_RUNS) + ' runs on CI: connections':52} {backoff_connections:6d}"
          f"     target <= 1  {'met' if met else 'NOT MET'}  (state: {' '.join(backoff_state)})")  # fmt: skip
    every = paired(https, UPLOAD_OFF)
    print(
        f"{'HTTPS, an upload at every run: added wall':52} {every:+6.1f} ms  (vs DO_NOT_TRACK=1; no target: the default"
    )
    print(f"{'':52}            schedule uploads at most every 10 minutes; ratio {median[https] / own:.3f})")
    print(f"HTTPS sessions left unsent after the runs: {https_left} (each run's upload process sends its predecessors)")
    return 1 if failed else 0


def _compare(setups: dict[str, Setup], ref: str) -> None:
    """The baseline's client against this checkout's, each against its own DO_NOT_TRACK=1 run, same rounds."""

    def paired(name: str, base: str, kind: str = "wall") -> float:
        a: list[float] = getattr(setups[name], kind)
        b: list[float] = getattr(setups[base], kind)
        return statistics.median(x - y for x, y in zip(a, b, strict=True))

    rows = (
        ("on, no upload due", "on, no upload due (record + queue write)", "tool, telemetry disabled"),
        ("on by a stored 'allowed'", "on by a stored 'allowed', no upload due", "tool, telemetry disabled"),
        ("minimal tool, on", "minimal tool, on, no upload due", "minimal tool, telemetry disabled"),
    )
    print()
    print(f"baseline {ref} (a wheel of it, the same rounds): added vs its own DO_NOT_TRACK=1 run, wall (CPU) ms")
    print(f"{'':32} {'baseline':>15} {'this checkout':>15} {'difference':>15}")
    for label, name, off in rows:
        old_name = "baseline: " + label
        old_off = "baseline: " + off if off.startswith("tool") else "baseline: minimal tool, telemetry disabled"
        old, new = paired(old_name, old_off), paired(name, off)
        old_cpu, new_cpu = paired(old_name, old_off, "cpu"), paired(name, off, "cpu")
        change = paired(name, old_name)  # this checkout's run against the baseline's, in each round
        change_cpu = paired(name, old_name, "cpu")
        cells = [f"{wall:+6.1f} ({cpu:+5.1f})" for wall, cpu in ((old, old_cpu), (new, new_cpu), (change, change_cpu))]
        print(f"{label:32} " + " ".join(f"{cell:>15}" for cell in cells))
    off_change = paired("tool, telemetry disabled", "baseline: tool, telemetry disabled")
    off_cpu = paired("tool, telemetry disabled", "baseline: tool, telemetry disabled", "cpu")
    print(f"{'telemetry disabled':32} {'':15} {'':15} {off_change:+6.1f} ({off_cpu:+5.1f})")
    print("difference = this checkout's run minus the baseline's in the same round (negative: this one is cheaper)")


if __name__ == "__main__":
    sys.exit(main())
