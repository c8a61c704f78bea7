"""The upload process: started detached by ``_spawn.start`` at a run's exit; sends what waits, then ends.

Its only output is ``<data dir>/upload.log`` (the last attempt's lines, for
``python -m tallystick.client show``), the shared ``upload-state`` and the drop
counts the next session reports. It never outlives ``LIFETIME`` seconds of requests.
"""

# ruff: noqa: BLE001, S110, SIM105  (a failed upload only keeps the files for a later run)

from __future__ import annotations

import os
import sys
import time

LIFETIME = 60.0
LOG_FILE = "upload.log"


def main() -> None:
    try:
        run(sys.argv[2])
    except BaseException:
        pass
    os._exit(0)  # no atexit handlers: this process only uploaded


def run(arguments: str) -> str:
    """Upload as ``arguments`` (the JSON ``_spawn.start`` wrote) says; the outcome."""
    import json

    from tallystick.client import _consent, _queue
    from tallystick.client._config import Config
    from tallystick.client._queue import Queue
    from tallystick.client._uploader import Uploader

    params = json.loads(arguments)
    data_dir = str(params["dataDir"])
    try:
        os.chdir(data_dir)  # hold no directory of the tool's busy
    except OSError:
        pass
    handed: tuple[str, bytes] | None = None
    if params.get("handed"):
        handed = (str(params["handed"]), sys.stdin.buffer.read(64 * 1024 + 1))
    config = Config(
        str(params["app"]),
        str(params["version"]),
        str(params["url"]),
        data_dir=data_dir,
        request_timeout=float(params["requestTimeout"]),
        upload_interval=float(params["interval"]),
        max_age_days=float(params["maxAgeDays"]),
    )
    lines: list[str] = []
    counts: dict[str, int] = {}

    def count(reason: str, n: int = 1) -> None:
        counts[reason] = counts.get(reason, 0) + n

    def log(message: str) -> None:
        lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}")

    consent_path = os.path.join(data_dir, "consent")
    queue = Queue(
        data_dir,
        max_files=1 << 30,
        max_bytes=1 << 62,
        max_age_seconds=config.max_age_days * 86400.0,
        clock=config.clock,
        count=count,
    )
    uploader = Uploader(
        config,
        queue,
        count=count,
        log=log,
        ci=bool(params.get("ci")),
        extra=handed,
        allowed=lambda: (
            _consent.decide(
                _consent.read_state(consent_path), os.environ, config.env_prefix, stderr_tty=False, ci=False
            ).record
        ),
        deadline=time.monotonic() + LIFETIME,
    )
    # On CI wait for another run's attempt to end, so this run's session gets its turn.
    outcome = uploader.run(lock_wait=2 * config.request_timeout + 1 if params.get("ci") else 0.0)
    log(f"outcome: {outcome}")
    try:
        queue.add_drops(counts)
    except OSError:
        pass
    if outcome != "skipped":
        try:
            _queue.atomic_write(os.path.join(data_dir, LOG_FILE), ("\n".join(lines) + "\n").encode(), sync=False)
        except OSError:
            pass
    return outcome
