"""Realistic demo sessions of a fictional CLI tool, ``demo``, deterministic for a seed.

A population of users runs the tool over about six months. Users join over time
and install the latest release; releases come every couple of weeks. Known effects
are planted so the built-in analyses can be checked against the truth (``TRUTHS``):

- shells: Fish and Zsh lead, Bash third (``SHELLS``);
- one Docker version (``dockerVersion`` attribute) makes ``ContainerStartFailed``
  happen in a large share of its sessions;
- tab completion (``tabCompletion``) lowers the ``UnknownCommand`` rate by 30 %;
- BuildKit (``buildKit``) halves the ``BuildImage`` span;
- the newest release makes ``LoadConfig`` 1.5 times as slow (a regression to find);
- an outdated user sees ``UpdateNudgeShown`` on every run and upgrades after it with a
  fixed probability, except stubborn users, who never do;
- after ``auto_update_day`` half of the users get automatic update pull requests and
  move to each new release within a few days;
- with ``arrivals=True`` each session gets the ``ingestionTime`` of the user's next
  run (sessions are uploaded by the next run) and sessions not uploaded by ``end``,
  or whose next run came more than 30 days later (the client discards them), are left
  out, as in a real warehouse.

Benchmarks, tests and ``tallystick demo`` reuse it.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

APP = "demo"
RELEASES = (
    "1.0.0",
    "1.1.0",
    "1.2.0",
    "1.3.0",
    "1.4.0",
    "1.5.0",
    "2.0.0",
    "2.1.0",
    "2.2.0",
    "2.3.0",
    "2.4.0",
    "2.5.0",
)
SHELLS = (("fish", 0.34), ("zsh", 0.31), ("bash", 0.25), ("pwsh", 0.06), ("sh", 0.04))
SYSTEMS = (("Linux", 0.55, "x86_64"), ("Darwin", 0.35, "arm64"), ("Windows", 0.10, "x86_64"))
DOCKER_VERSIONS = (("24.0.7", 0.30), ("25.0.3", 0.24), ("25.0.4", 0.07), ("26.1.0", 0.25), ("27.0.1", 0.14))
CI_SYSTEMS = ("GitHub Actions", "GitLab CI", "CircleCI", "Jenkins")
COMMANDS = ("build", "test", "lint", "run", "deploy", "shell")
UPGRADE_PROBABILITY_PER_NUDGE = 0.08


@dataclass(frozen=True)
class Truths:
    """The effects planted in the demo data, for tests and docs to compare against."""

    unknown_command_rate: float = 0.032  # per session, without tab completion
    tab_completion_effect: float = -0.30  # relative change of the UnknownCommand rate
    tab_completion_share: float = 0.4  # of users
    bad_docker_version: str = "25.0.4"
    bad_docker_error: str = "ContainerStartFailed"
    bad_docker_error_rate: float = 0.40  # of that version's sessions
    other_docker_error_rate: float = 0.003
    buildkit_ratio: float = 0.5  # BuildImage duration with BuildKit / without
    buildkit_share: float = 0.5
    build_image_median_ms: float = 20_000.0
    nudge_upgrade_probability: float = UPGRADE_PROBABILITY_PER_NUDGE
    stubborn_share: float = 0.3  # of users: never upgrade after a nudge
    auto_update_share: float = 0.5  # of users, from auto_update_day on
    auto_update_day: float = 0.65  # fraction of the period after which automatic update PRs exist
    auto_update_max_days: float = 4.0  # an automatic update lands within this many days of a release
    error_rate: float = 0.015  # generic Error events, unrelated to anything
    slow_release: str = RELEASES[-1]  # this release makes slow_span take slowdown times as long
    slow_span: str = "LoadConfig"
    slowdown: float = 1.5


TRUTHS = Truths()


@dataclass
class _User:
    user_id: str
    joined: datetime
    shell: str
    os_name: str
    arch: str
    on_ci: bool
    ci_system: str | None
    runs_per_day: float
    version: int  # index into RELEASES
    python: str
    docker: str
    tab_completion: bool
    buildkit: bool
    stubborn: bool
    auto_update: bool
    auto_delay: timedelta
    project_tasks: int


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


def auto_update_date(start: datetime, days: int) -> datetime:
    """From this moment on, users with automatic update PRs upgrade within days of each release."""
    return start + timedelta(days=days * TRUTHS.auto_update_day)


def _population(rng: random.Random, n_users: int, start: datetime, days: int) -> list[_User]:
    users = []
    for _ in range(n_users):
        os_name, _, arch = rng.choices(SYSTEMS, weights=[s[1] for s in SYSTEMS])[0]
        on_ci = rng.random() < 0.2
        joined = start if rng.random() < 0.3 else start + timedelta(days=rng.uniform(0, days * 0.95))
        users.append(
            _User(
                user_id=_uuid4(rng),
                joined=joined,
                shell=_pick(rng, SHELLS),
                os_name=os_name,
                arch=arch,
                on_ci=on_ci,
                ci_system=rng.choice(CI_SYSTEMS) if on_ci else None,
                runs_per_day=rng.lognormvariate(0, 1),
                version=0,
                python=rng.choice(("3.11.9", "3.12.7", "3.13.1")),
                docker=_pick(rng, DOCKER_VERSIONS),
                tab_completion=rng.random() < TRUTHS.tab_completion_share,
                buildkit=rng.random() < TRUTHS.buildkit_share,
                stubborn=rng.random() < TRUTHS.stubborn_share,
                auto_update=rng.random() < TRUTHS.auto_update_share,
                auto_delay=timedelta(days=rng.uniform(0.2, TRUTHS.auto_update_max_days)),
                project_tasks=max(1, round(rng.lognormvariate(math.log(12), 0.8))),
            )
        )
    return users


def generate(
    sessions: int = 2000,
    *,
    users: int | None = None,
    days: int = 180,
    seed: int = 7,
    end: datetime | None = None,
    arrivals: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield ``sessions`` wire-format sessions (dicts) in start-time order.

    With ``arrivals``, sessions carry the ``ingestionTime`` of the user's next run and
    those not uploaded by ``end`` are left out (so fewer than ``sessions`` come out).
    """
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(days=days)
    releases = release_dates(start, days)
    auto_from = auto_update_date(start, days)
    population = _population(rng, users or max(5, sessions // 40), start, days)
    for u in population:
        u.version = max(i for i, d in enumerate(releases) if d <= u.joined)
    span = [(end - u.joined).total_seconds() for u in population]
    cum = list(itertools.accumulate(u.runs_per_day * s for u, s in zip(population, span, strict=True)))
    picks = [bisect_right(cum, rng.random() * cum[-1]) for _ in range(sessions)]
    draws = sorted(
        (population[i].joined + timedelta(seconds=rng.random() * span[i]), i) for i in picks if i < len(population)
    )
    following: list[datetime | None] = [None] * len(draws)
    last: dict[int, datetime] = {}
    for k in range(len(draws) - 1, -1, -1):
        t, i = draws[k]
        following[k] = last.get(i)
        last[i] = t
    for (t, i), next_run in zip(draws, following, strict=True):
        session = _session(rng, population[i], t, releases, auto_from)
        if arrivals:
            # Not uploaded yet, or never: the client discards a session still queued after 30 days.
            if next_run is None or next_run >= end or next_run - t > _QUEUE_DAYS:
                continue
            session["ingestionTime"] = _iso(next_run + timedelta(seconds=rng.uniform(0.5, 5)))
        yield session


_QUEUE_DAYS = timedelta(days=30)  # the client's default max_age_days (client/_config.py)


def _latest(releases: list[datetime], t: datetime) -> int:
    return bisect_right(releases, t) - 1


def _session(
    rng: random.Random, user: _User, t: datetime, releases: list[datetime], auto_from: datetime
) -> dict[str, Any]:
    latest = _latest(releases, t)
    if user.auto_update:
        merged = _latest(releases, t - user.auto_delay)
        if merged > user.version and releases[merged] >= auto_from:
            user.version = merged  # the update PR was merged before this run
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
    if user.version < latest and not user.stubborn and rng.random() < TRUTHS.nudge_upgrade_probability:
        user.version = latest  # upgrades after this run
    command = rng.choice(COMMANDS)
    config_ms = rng.lognormvariate(3.0, 0.4) * (TRUTHS.slowdown if version == TRUTHS.slow_release else 1.0)
    task_ms = rng.lognormvariate(7.0, 1.0)
    spans: list[dict[str, Any]] = [
        {
            "type": "LoadConfig",
            "startTime": _iso(t + timedelta(milliseconds=10)),
            "endTime": _iso(t + timedelta(milliseconds=10 + config_ms)),
        },
    ]
    offset = 20 + config_ms
    if command == "build":
        build_ms = rng.lognormvariate(math.log(TRUTHS.build_image_median_ms), 0.5)
        build_ms *= TRUTHS.buildkit_ratio if user.buildkit else 1.0
        spans.append(
            {
                "type": "BuildImage",
                "startTime": _iso(t + timedelta(milliseconds=offset)),
                "endTime": _iso(t + timedelta(milliseconds=offset + build_ms)),
                "attributes": {"buildKit": user.buildkit},
            }
        )
        offset += build_ms
    spans.append(
        {
            "type": "RunTask",
            "startTime": _iso(t + timedelta(milliseconds=offset)),
            "endTime": _iso(t + timedelta(milliseconds=offset + task_ms)),
            "attributes": {"command": command},
        }
    )
    exit_code = 0
    unknown_rate = TRUTHS.unknown_command_rate * ((1 + TRUTHS.tab_completion_effect) if user.tab_completion else 1)
    docker_rate = (
        TRUTHS.bad_docker_error_rate if user.docker == TRUTHS.bad_docker_version else TRUTHS.other_docker_error_rate
    )
    if rng.random() < unknown_rate:
        exit_code = 1
        events.append({"type": "UnknownCommand", "time": _iso(t + timedelta(milliseconds=15)), "attributes": {}})
    elif rng.random() < docker_rate:
        exit_code = 3
        events.append(
            {
                "type": TRUTHS.bad_docker_error,
                "time": _iso(t + timedelta(milliseconds=offset)),
                "attributes": {"dockerVersion": user.docker},
            }
        )
    elif rng.random() < TRUTHS.error_rate:
        exit_code = 2
        events.append(
            {
                "type": "Error",
                "time": _iso(t + timedelta(milliseconds=offset)),
                "attributes": {"exceptionType": rng.choice(("ConfigError", "TimeoutError", "PermissionError"))},
            }
        )
    duration = timedelta(milliseconds=offset + task_ms + 20)
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
            "dockerVersion": user.docker,
            "tabCompletion": user.tab_completion,
            "buildKit": user.buildkit,
            "projectTasks": user.project_tasks,
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


def arrived(
    sessions: int, *, seed: int = 7, now: datetime | None = None, recent: timedelta = timedelta(hours=1)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The demo as a warehouse would hold it at ``now`` under upload-on-next-run: (history, recent).

    ``history``: sessions uploaded before ``now − recent``, each with the ``ingestionTime`` of its user's
    next run; ``recent``: those uploaded since, to send over HTTP now (the server stamps them). Sessions
    whose user has not run the tool again by ``now`` are not there yet, as in a real warehouse, so the
    last days look incomplete and the arrival delays are those of real users.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cutoff = _iso(now - recent)
    history: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    for session in generate(sessions, seed=seed, end=now, arrivals=True):
        (history if session["ingestionTime"] < cutoff else fresh).append(session)
    return history, fresh


def store_history(store: Any, sessions: Iterable[dict[str, Any]]) -> int:
    """Write sessions straight into ``store`` (a ``tallystick.storage`` Store) with their own ``ingestionTime``,
    as the ingest service would have written them when they arrived; how many were new."""
    from tallystick.schema import session_from_tree
    from tallystick.storage.layout import encode_session, session_key

    written = 0
    for tree in sessions:
        session = session_from_tree(tree)
        written += bool(store.put_if_absent(session_key(session), encode_session(session)))
    return written


def wait_for(url: str, seconds: float) -> None:
    """Return once an ingest service answers at ``url``; SendError after ``seconds``."""
    _wait_for(url.rstrip("/"), seconds)


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


def send(
    url: str,
    sessions: Iterable[dict[str, Any]],
    *,
    batch: int = 100,
    wait_seconds: float = 0,
    progress: Callable[[Counter[int]], None] | None = None,
) -> Counter[int]:
    """POST sessions to ``url``'s batch endpoint; counts of the per-session statuses (also given to
    ``progress`` after each batch)."""
    import urllib.error

    url = url.rstrip("/")
    _wait_for(url, wait_seconds)
    counts: Counter[int] = Counter()
    items = iter(sessions)
    while chunk := list(itertools.islice(items, batch)):
        try:
            status, body = _post(f"{url}/v1/batches", json.dumps({"sessions": chunk}).encode(), timeout=30)
        except (urllib.error.URLError, OSError) as exc:  # the service went away (a restart) part-way
            reason = getattr(exc, "reason", exc)
            raise SendError(
                f"the ingest service at {url} stopped answering after {sum(counts.values()):,} sessions ({reason}): "
                "run the same command again once it is back (what was stored is answered 'already stored')"
            ) from None
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
        if progress is not None:
            progress(counts)
    return counts


def describe(counts: Counter[int]) -> str:
    names = {201: "stored", 304: "already stored", 400: "rejected"}
    return ", ".join(f"{n:,} {names.get(s, str(s))}" for s, n in sorted(counts.items())) or "nothing"
