"""Realistic demo sessions of a fictional CLI tool, ``demo``, deterministic for a seed.

A population of users runs the tool over a few months. Releases come every few
weeks; an outdated user sees an update nudge on each run and upgrades with some
probability per nudge. Shells, operating systems, CI share and errors follow
plausible mixes. Benchmarks, tests and ``tallystick demo`` reuse it.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

APP = "demo"
RELEASES = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0", "2.1.0", "2.2.0")
SHELLS = (("fish", 0.34), ("zsh", 0.31), ("bash", 0.25), ("pwsh", 0.06), ("sh", 0.04))
SYSTEMS = (("Linux", 0.55, "x86_64"), ("Darwin", 0.35, "arm64"), ("Windows", 0.10, "AMD64"))
CI_SYSTEMS = ("GitHub Actions", "GitLab CI", "CircleCI", "Jenkins")
COMMANDS = ("build", "test", "lint", "run", "deploy", "shell")
UPGRADE_PROBABILITY_PER_NUDGE = 0.08


@dataclass
class _User:
    user_id: str
    shell: str
    os_name: str
    arch: str
    on_ci: bool
    ci_system: str | None
    runs_per_day: float
    version: int  # index into RELEASES
    python: str


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def release_dates(start: datetime, days: int) -> list[datetime]:
    """When each release of RELEASES came out: evenly spread over the period."""
    step = days / len(RELEASES)
    return [start + timedelta(days=step * i) for i in range(len(RELEASES))]


def generate(
    sessions: int = 2000,
    *,
    users: int | None = None,
    days: int = 120,
    seed: int = 7,
    end: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield about ``sessions`` wire-format sessions (dicts) in time order."""
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(days=days)
    releases = release_dates(start, days)
    n_users = users or max(5, sessions // 40)
    population = []
    for _ in range(n_users):
        os_name, _, arch = rng.choices(SYSTEMS, weights=[s[1] for s in SYSTEMS])[0]
        on_ci = rng.random() < 0.2
        population.append(
            _User(
                user_id=_uuid4(rng),
                shell=_pick(rng, SHELLS),
                os_name=os_name,
                arch=arch,
                on_ci=on_ci,
                ci_system=rng.choice(CI_SYSTEMS) if on_ci else None,
                runs_per_day=rng.lognormvariate(0, 1),
                version=0,
                python=rng.choice(("3.11.9", "3.12.7", "3.13.1")),
            )
        )
    total_rate = sum(u.runs_per_day for u in population)
    mean_gap = days * 86400 / max(sessions, 1)
    t = start
    for _ in range(sessions):
        t += timedelta(seconds=rng.expovariate(1 / mean_gap))
        if t >= end:
            t = end - timedelta(seconds=rng.uniform(1, 3600))
        user = rng.choices(population, weights=[u.runs_per_day / total_rate for u in population])[0]
        yield _session(rng, user, t, releases)


def _session(rng: random.Random, user: _User, t: datetime, releases: list[datetime]) -> dict[str, Any]:
    latest = max(i for i, d in enumerate(releases) if d <= t)
    user.version = max(user.version, 0)
    events: list[dict[str, Any]] = []
    if user.version < latest:
        events.append(
            {
                "type": "UpdateNudgeShown",
                "time": _iso(t + timedelta(milliseconds=5)),
                "attributes": {"latestVersion": RELEASES[latest], "currentVersion": RELEASES[user.version]},
            }
        )
    version = RELEASES[user.version]
    if user.version < latest and rng.random() < UPGRADE_PROBABILITY_PER_NUDGE:
        user.version = latest  # upgrades after this run
    command = rng.choice(COMMANDS)
    config_ms = rng.lognormvariate(3.0, 0.4)
    task_ms = rng.lognormvariate(7.0, 1.0)
    spans = [
        {
            "type": "LoadConfig",
            "startTime": _iso(t + timedelta(milliseconds=10)),
            "endTime": _iso(t + timedelta(milliseconds=10 + config_ms)),
        },
        {
            "type": "RunTask",
            "startTime": _iso(t + timedelta(milliseconds=20 + config_ms)),
            "endTime": _iso(t + timedelta(milliseconds=20 + config_ms + task_ms)),
            "attributes": {"command": command},
        },
    ]
    exit_code = 0
    if rng.random() < 0.026:
        exit_code = 1
        events.append({"type": "UnknownCommand", "time": _iso(t + timedelta(milliseconds=15)), "attributes": {}})
    elif rng.random() < 0.03:
        exit_code = 2
        events.append(
            {
                "type": "Error",
                "time": _iso(t + timedelta(milliseconds=30 + config_ms)),
                "attributes": {"exceptionType": rng.choice(("ConfigError", "TimeoutError", "PermissionError"))},
            }
        )
    duration = timedelta(milliseconds=40 + config_ms + task_ms)
    return {
        "sessionId": _uuid4(rng),
        "userId": user.user_id,
        "sessionStartTime": _iso(t),
        "sessionEndTime": _iso(t + duration),
        "applicationId": APP,
        "applicationVersion": version,
        "attributes": {
            "operatingSystem": user.os_name,
            "architecture": user.arch,
            "pythonVersion": user.python,
            "shell": user.shell,
            "isCI": user.on_ci,
            "ciSystem": user.ci_system,
            "isInteractive": not user.on_ci,
            "command": command,
            "exitCode": exit_code,
        },
        "events": events,
        "spans": spans,
    }


class SendError(Exception):
    """Sessions could not be sent; the message says why and what to do."""


def _post(url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - user's URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL given by the user
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for(url: str, seconds: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):  # noqa: S310 - URL given by the user
                return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                raise SendError(f"no ingest service answers at {url} ({exc}): start one with `tallystick up`") from None
            time.sleep(0.1)


def send(url: str, sessions: Iterable[dict[str, Any]], *, batch: int = 100, wait_seconds: float = 0) -> Counter[int]:
    """POST sessions to ``url``'s batch endpoint; counts of the per-session statuses."""
    url = url.rstrip("/")
    _wait_for(url, wait_seconds)
    counts: Counter[int] = Counter()
    items = iter(sessions)
    while chunk := list(itertools.islice(items, batch)):
        status, body = _post(f"{url}/v1/batches", json.dumps({"sessions": chunk}).encode(), timeout=30)
        if status != 200:
            raise SendError(f"the ingest service at {url} answered {status}: {body[:300].decode(errors='replace')}")
        for result in json.loads(body)["results"]:
            counts[result["status"]] += 1
            for error in result.get("validationErrors") or []:
                if error["type"] == "registered":
                    raise SendError(
                        f"the ingest service at {url} does not accept application {error['invalidValue']!r}: "
                        f"start it with --app {error['invalidValue']}"
                    )
    return counts


def describe(counts: Counter[int]) -> str:
    names = {201: "stored", 304: "already stored", 400: "rejected"}
    return ", ".join(f"{n:,} {names.get(s, str(s))}" for s, n in sorted(counts.items())) or "nothing"
