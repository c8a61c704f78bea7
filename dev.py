#!/usr/bin/env python3
"""Set up and run Tallystick from a fresh clone, with nothing but Python and pip.

    python3 dev.py demo      # set up, then run the whole pipeline on demo data
    python3 dev.py test      # set up, then run lint, type checks and the full test suite
    python3 dev.py lock      # re-lock the dependencies after editing pyproject.toml

Each command creates ``.venv`` (once), installs the locked dependencies with uv
(again only when a lock file changed), and runs the command inside it. ``test``
also installs what the tests run for real: ClickHouse and Chromium (Debian
packages, when run as root) and Azurite (npm).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PY = BIN / "python"
UV_VERSION = "0.13.9"
APT_PACKAGES = {
    "clickhouse-server": "clickhouse-server",
    "clickhouse-client": "clickhouse-client",
    "chromium": "chromium",
    "tinyproxy": "tinyproxy",
    "nginx": "nginx-light",
    "openssl": "openssl",
}
TOOLS = ROOT / ".cache" / "tools"


def say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def run(*args: str | Path, **kwargs: object) -> None:
    subprocess.run([str(a) for a in args], check=True, **kwargs)  # type: ignore[call-overload]


def ensure_venv(lock: str) -> None:
    """Create .venv and sync it to ``requirements/<lock>`` plus this package (editable)."""
    if sys.version_info < (3, 11):
        sys.exit(f"dev.py: Tallystick needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        say("creating .venv")
        venv.create(VENV, with_pip=True)
    if not (BIN / "uv").exists():
        say(f"installing uv {UV_VERSION} into .venv")
        run(PY, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"uv=={UV_VERSION}")
    # dev.lock is a superset of server.lock: a venv synced to it serves both.
    for candidate in (lock, "dev.lock"):
        if _stamp(candidate).exists() and _stamp(candidate).read_text() == _digest(candidate):
            return
    lock_file = ROOT / "requirements" / lock
    say(f"installing locked dependencies from requirements/{lock}")
    env = {**os.environ, "VIRTUAL_ENV": str(VENV)}
    run(BIN / "uv", "pip", "sync", "-q", "--python", PY, lock_file, env=env)
    run(BIN / "uv", "pip", "install", "-q", "--python", PY, "--no-deps", "-e", ROOT, env=env)
    for old in VENV.glob(".synced-*"):
        old.unlink()
    _stamp(lock).write_text(_digest(lock))


def _stamp(lock: str) -> Path:
    return VENV / f".synced-{lock}"


def _digest(lock: str) -> str:
    data = (ROOT / "requirements" / lock).read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()


def ensure_system_packages() -> None:
    """Install the real servers the tests use; in CI a failure here fails the run."""
    in_ci = os.environ.get("CI") == "true"
    missing = [pkg for tool, pkg in APT_PACKAGES.items() if not shutil.which(tool)]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            say(f"installing Debian packages: {' '.join(missing)}")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            try:
                run("apt-get", "update", "-qq", env=env, stdout=subprocess.DEVNULL)
                run(
                    "apt-get",
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    *missing,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            except subprocess.CalledProcessError:
                if in_ci:
                    raise
                say("apt-get failed; tests that need these servers will be skipped")
        else:
            say(
                f"not root: tests that need {', '.join(missing)} will be skipped "
                f"(install with: sudo apt-get install {' '.join(missing)})"
            )
    azurite = TOOLS / "node_modules" / ".bin" / "azurite-blob"
    if not azurite.exists() and shutil.which("npm"):
        say("installing Azurite (npm) into .cache/tools")
        TOOLS.mkdir(parents=True, exist_ok=True)
        try:
            run(
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                TOOLS,
                "azurite@3",
                stdout=subprocess.DEVNULL,
            )
        except subprocess.CalledProcessError:
            if in_ci:
                raise
            say("npm install azurite failed; Azure storage tests will be skipped")


def cmd_demo(args: list[str]) -> int:
    ensure_venv("server.lock")
    os.execv(BIN / "tallystick", [str(BIN / "tallystick"), "up", "--demo", *args])


def in_background(step: Callable[[], None]) -> Callable[[], None]:
    """Start ``step`` in a thread; the returned function waits for it and re-raises what it raised."""
    failure: list[BaseException] = []

    def body() -> None:
        try:
            step()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=body, name=step.__name__)
    thread.start()

    def finish() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return finish


def test_workers() -> int:
    """pytest-xdist workers: one per core this process may use, at most four (1 means no xdist)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 4))


def cmd_test(args: list[str]) -> int:
    # The Debian packages and Azurite (network and disk bound) install while the venv does and
    # ruff and mypy run: only pytest needs them.
    system_packages = in_background(ensure_system_packages)
    ensure_venv("dev.lock")
    paths = [p for p in ("src", "tests", "bench", "examples", "scripts", "dev.py") if (ROOT / p).exists()]
    steps = [
        ("ruff", [BIN / "ruff", "check", *paths]),
        ("ruff format", [BIN / "ruff", "format", "--check", *paths]),
        ("mypy --strict", [BIN / "mypy"]),
    ]
    for name, argv in steps:
        say(f"running {name}")
        if subprocess.run([str(a) for a in argv], cwd=ROOT).returncode != 0:
            say(f"{name} failed")
            return 1
    system_packages()
    os.environ["PATH"] = f"{TOOLS / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    # One worker per core, each test file on one worker (its module fixtures start once), unless
    # the caller chose (-n, -p no:xdist) or asked for one test run in the foreground (--pdb).
    workers = test_workers()
    chosen = any(a in ("--pdb", "no:xdist") or a.startswith(("-n", "--numprocesses", "--dist")) for a in args)
    parallel = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 and not chosen else []
    say(f"running pytest{f' on {workers} workers' if parallel else ''}")
    return subprocess.run([str(PY), "-m", "pytest", *parallel, *args], cwd=ROOT).returncode


def cmd_lock(args: list[str]) -> int:
    ensure_venv("dev.lock")
    for name, extras in (("server.lock", ["--extra", "server"]), ("dev.lock", ["--extra", "server", "--extra", "dev"])):
        run(
            BIN / "uv",
            "pip",
            "compile",
            "-q",
            "--python-version",
            "3.11",
            *extras,
            *args,
            ROOT / "pyproject.toml",
            "-o",
            ROOT / "requirements" / name,
        )
    return 0


COMMANDS = {"demo": cmd_demo, "test": cmd_test, "lock": cmd_lock}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    os.chdir(ROOT)
    try:
        return COMMANDS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        say(f"step failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
