"""Starting the upload process: detached, so the host tool never waits on the network.

The host pays for one ``posix_spawn`` of ``python -I -S`` (no site, no user paths: it
starts fast and sees only the standard library and this package). The child runs
``_child.main``: it inherits no terminal (stdin, stdout and stderr are ``/dev/null``,
or a pipe holding the session on CI) and no other descriptor of the tool (each
inheritable one from 3 up is closed by the spawn: see ``_posix_spawn``), has its own process group (so the terminal's
Ctrl-C and the shell's job control leave it alone), runs at nice 19 (set by the host
right after the spawn, so even the interpreter's start-up yields to the tool's own
exit on a busy machine) and outlives the tool. It stays in the tool's session on
purpose: a new session would be a new scheduling group under Linux's autogroups,
competing with the tool as an equal whatever its nice value.

``posix_spawn`` is a vfork: the host waits until the child has called ``exec`` (0.4-4
ms median, measured on this project's busy machine). ``fork`` returns at once, but
forking a tool with other threads can deadlock the child, every at-fork handler of the
tool runs in it, and until its ``exec`` each page the exiting tool touches is copied;
measured with bench/client_overhead.py, it saved nothing at the median.

Where ``posix_spawn`` is missing (Windows) or the interpreter is frozen into the tool
(``sys.executable`` would start the tool again), there is no upload process: the
client falls back to a thread (see DESIGN.md; ``Client._spawns`` decides, so that a
run starting no upload process never imports this module).
"""

# ruff: noqa: SIM105  (contextlib would cost import time on the host's exit path)

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tallystick.client._config import Config

# A session handed over on CI goes through a pipe without blocking the host: only what fits its buffer.
MAX_HANDED_BYTES = 60 * 1024
NICE = 19
_CODE = "import sys;sys.path.insert(0,sys.argv[1]);from tallystick.client._child import main;main()"


def start(config: Config, data_dir: str, *, ci: bool, handed: tuple[str, bytes] | None = None) -> int | None:
    """Start the upload process; its PID, or None if it could not start (then nothing is sent this run)."""
    from tallystick.client._session import dumps  # not json: its import costs the exit 2-5 ms

    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    params = {
        "app": config.app_id,
        "version": config.version,
        "url": config.server_url,
        "dataDir": data_dir,
        "requestTimeout": config.request_timeout,
        "interval": config.upload_interval,
        "maxAgeDays": config.max_age_days,
        "ci": ci,
        "handed": handed[0] if handed is not None and len(handed[1]) <= MAX_HANDED_BYTES else None,
    }
    argv = [sys.executable, "-I", "-S", "-c", _CODE, package_root, dumps(params)]
    environ = {str(k): str(v) for k, v in config.environ.items()}
    read_end = write_end = -1
    if params["handed"] is not None:
        read_end, write_end = os.pipe()
    try:
        pid: int | None = _posix_spawn(argv, environ, read_end)
    except OSError:
        pid = None
    finally:
        if read_end >= 0:
            os.close(read_end)
    if write_end >= 0:
        try:
            if pid is not None and handed is not None:
                os.set_blocking(write_end, False)
                os.write(write_end, handed[1])  # fits the pipe's buffer; a short write leaves invalid JSON, ignored
        except OSError:
            pass
        finally:
            os.close(write_end)
    return pid


def inherited_descriptors() -> list[int]:
    """The host's open descriptors from 3 up that a child would inherit (no close-on-exec flag).

    Python opens its own files close-on-exec (PEP 446); these came from the tool's parent: a pipe
    passed as fd 3+ by a test harness or CI runner, a make jobserver, a shell's ``3>file``. Listed
    from ``/proc/self/fd`` (Linux) or ``/dev/fd`` (macOS, BSD); none where neither exists.
    """
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
        except OSError:
            continue
        found = []
        for name in names:
            fd = int(name) if name.isdigit() else -1
            if fd < 3:
                continue
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:  # the listing's own descriptor, closed by now
                continue
        return found
    return []


def _posix_spawn(argv: list[str], environ: dict[str, str], stdin: int) -> int:
    """Spawn with 0, 1 and 2 on /dev/null (0 on the handed pipe) and every inherited descriptor closed.

    A copy of a pipe's write end held by the upload process would keep the tool's reader from
    seeing EOF until the upload ends (up to its request timeout on a silent server). Should a
    listed descriptor be closed by another thread before the spawn (the child's close then
    fails and so does the spawn), the spawn is tried once more with a fresh listing.
    """
    standard: list[tuple[object, ...]] = [
        (os.POSIX_SPAWN_DUP2, stdin, 0) if stdin >= 0 else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    for attempt in (1, 2):
        actions = standard + [(os.POSIX_SPAWN_CLOSE, fd) for fd in inherited_descriptors()]
        try:
            pid = os.posix_spawn(argv[0], argv, environ, file_actions=actions, setpgroup=0)
            break
        except OSError:
            if attempt == 2:
                raise
    try:  # from its first instructions on, the tool and the user's work go first
        os.setpriority(os.PRIO_PROCESS, pid, NICE)
    except OSError:
        pass
    return pid


def wait(pid: int, timeout: float) -> bool:
    """Wait at most ``timeout`` s for the upload process to end (tests and opt-in); whether it did."""
    import time

    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (a SIGCHLD handler of the tool)
            return True
        if done:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.02)
