"""Populations with planted truths built apart from the analyses, each shaped to trip a different one.

``populations.py`` plants one cause per population, dragged along by heavy users. These plant what a
reviewer would try next: a cause that is an interaction of two values, two causes at once, a value
seen only with another, a value used by one heavy user alone, a feature confounded by the machine,
a slowdown only in CI, Simpson's paradox, a five-user app, an app without errors, stack traces and
time-zone offsets in attributes, sessions that arrive days late, and many attributes with no effect.

Each builder returns sessions in wire format (dicts), deterministic for its seed; ``Users`` draws a
population's users and how often each runs the tool, ``Maker`` writes one session.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

END = datetime(2025, 9, 1, tzinfo=UTC)
Session = dict[str, Any]
Choices = tuple[tuple[str, float], ...]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pick(rng: random.Random, choices: Choices) -> str:
    x = rng.random() * sum(w for _, w in choices)
    for value, w in choices:
        x -= w
        if x < 0:
            return value
    return choices[-1][0]


@dataclass
class User:
    id: str
    attrs: dict[str, Any]
    weight: float


@dataclass
class Maker:
    """Writes sessions of one app; ``versions`` come out in time order, each a third of ``days``."""

    seed: int
    days: int = 60
    versions: tuple[str, ...] = ("1.0.0", "1.1.0", "1.2.0")
    app: str = "tool"
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def start(self) -> datetime:
        return END - timedelta(days=self.days)

    def when(self) -> datetime:
        return self.start + timedelta(seconds=self.rng.random() * (self.days * 86400 - 3600))

    def version_at(self, t: datetime) -> str:
        share = (t - self.start) / (END - self.start)
        return self.versions[min(len(self.versions) - 1, int(len(self.versions) * share))]

    def users(self, n: int, attrs: Callable[[random.Random, int], dict[str, Any]], spread: float = 1.0) -> list[User]:
        """``n`` users with ``attrs(rng, i)``; how often each runs the tool is log-normal (``spread``)."""
        return [User(_uuid(self.rng), attrs(self.rng, i), self.rng.lognormvariate(0, spread)) for i in range(n)]

    def runs(self, users: list[User], sessions: int) -> list[tuple[User, datetime]]:
        """About ``sessions`` runs shared by weight (at least one each), in time order."""
        total = sum(u.weight for u in users)
        out = [(u, self.when()) for u in users for _ in range(max(1, round(sessions * u.weight / total)))]
        return sorted(out, key=lambda r: r[1])

    def session(
        self,
        user: User,
        t: datetime,
        *,
        version: str | None = None,
        attrs: dict[str, Any] | None = None,
        events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
        spans: list[tuple[str, float, dict[str, Any]]] = (),  # type: ignore[assignment]
        offset_minutes: int = 0,
        delay_hours: float = 1.0,
    ) -> Session:
        """One session at ``t`` (its times written with a UTC offset of ``offset_minutes``), ingested
        ``delay_hours`` later."""
        zone = timezone(timedelta(minutes=offset_minutes))

        def at(ms: float) -> str:
            moment = (t + timedelta(milliseconds=ms)).astimezone(zone)
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

        elapsed = 0.0
        span_out = []
        for kind, ms, span_attrs in spans:
            span_out.append(
                {"type": kind, "startTime": at(elapsed), "endTime": at(elapsed + ms), "attributes": span_attrs}
            )
            elapsed += ms
        event_out = [
            {"type": kind, "time": at(elapsed + i), "attributes": event_attrs}
            for i, (kind, event_attrs) in enumerate(events)
        ]
        return {
            "sessionId": _uuid(self.rng),
            "userId": user.id,
            "sessionStartTime": at(0),
            "sessionEndTime": at(elapsed + 50),
            "ingestionTime": _iso(t + timedelta(milliseconds=elapsed + 50) + timedelta(hours=delay_hours)),
            "applicationId": self.app,
            "applicationVersion": version or self.version_at(t),
            "attributes": {**user.attrs, **(attrs or {})},
            "events": event_out,
            "spans": span_out,
        }


OS = (("Linux", 0.5), ("Darwin", 0.35), ("Windows", 0.15))
SHELL = (("bash", 0.4), ("zsh", 0.35), ("fish", 0.2), ("sh", 0.05))
PY = (("3.11.9", 0.3), ("3.12.7", 0.45), ("3.13.1", 0.25))
DOCKER = (("24.0.7", 0.3), ("25.0.3", 0.25), ("25.0.4", 0.15), ("26.1.0", 0.3))
GIT = (("2.39.2", 0.2), ("2.43.0", 0.4), ("2.44.0", 0.4))


def _base(rng: random.Random) -> dict[str, Any]:
    return {
        "operatingSystem": pick(rng, OS),
        "shell": pick(rng, SHELL),
        "pythonVersion": pick(rng, PY),
        "dockerVersion": pick(rng, DOCKER),
        "gitVersion": pick(rng, GIT),
        "isCI": rng.random() < 0.2,
    }


def _build(m: Maker, rng: random.Random, user: User, t: datetime, error: bool, **extra: Any) -> Session:
    events = [("ContainerStartFailed", {})] if error else []
    ms = rng.lognormvariate(math.log(3000), 0.5)
    return m.session(user, t, events=events, spans=[("BuildImage", ms, {})], attrs={"exitCode": 3 if error else 0})


def error_population(
    seed: int,
    risk: Callable[[dict[str, Any]], float],
    *,
    users: int = 300,
    sessions: int = 4000,
    heavy: Callable[[User], bool] | None = None,
    attrs: Callable[[random.Random, int], dict[str, Any]] | None = None,
) -> list[Session]:
    """Sessions whose ``ContainerStartFailed`` probability is ``risk(user's attributes)``."""
    m = Maker(seed)
    people = m.users(users, attrs or (lambda rng, i: _base(rng)))
    if heavy is not None:
        for u in people:
            if heavy(u):
                u.weight *= 60
    return [_build(m, m.rng, u, t, m.rng.random() < risk(u.attrs)) for u, t in m.runs(people, sessions)]


def interaction(seed: int = 1) -> list[Session]:
    """The error needs both macOS and Docker 25.0.4; neither alone raises it."""
    return error_population(
        seed, lambda a: 0.25 if a["operatingSystem"] == "Darwin" and a["dockerVersion"] == "25.0.4" else 0.004
    )


def two_causes(seed: int = 2) -> list[Session]:
    """Docker 25.0.4 and git 2.39.2 each raise the error on their own."""
    return error_population(
        seed,
        lambda a: (
            1
            - (1 - (0.15 if a["dockerVersion"] == "25.0.4" else 0.003))
            * (1 - (0.1 if a["gitVersion"] == "2.39.2" else 0))
        ),
        users=250,
        sessions=2500,
    )


def collinear(seed: int = 3) -> list[Session]:
    """Docker 25.0.4 causes the error and is only ever seen with buildx 0.12.1 (and buildx 0.12.1 only with it)."""

    def attrs(rng: random.Random, i: int) -> dict[str, Any]:
        a = _base(rng)
        a["buildxVersion"] = "0.12.1" if a["dockerVersion"] == "25.0.4" else pick(rng, (("0.11.2", 1), ("0.13.0", 1)))
        return a

    return error_population(
        seed, lambda a: 0.2 if a["dockerVersion"] == "25.0.4" else 0.004, users=250, sessions=2500, attrs=attrs
    )


def one_heavy_user(seed: int = 4) -> list[Session]:
    """One heavy user on a plugin nobody else uses hits the error in most sessions; everyone else rarely.
    Nothing about the plugin can be known from one user."""

    def attrs(rng: random.Random, i: int) -> dict[str, Any]:
        return {**_base(rng), "plugin": "acme-0.1" if i == 0 else pick(rng, (("none", 3), ("std-1.0", 1)))}

    return error_population(
        seed,
        users=200,
        sessions=2000,
        risk=lambda a: 0.6 if a["plugin"] == "acme-0.1" else 0.01,
        attrs=attrs,
        heavy=lambda u: u.attrs["plugin"] == "acme-0.1",
    )


def null_many(seed: int, users: int = 300, sessions: int = 3000) -> list[Session]:
    """Twelve attributes, none with an effect on anything; heavy-tailed usage."""
    m = Maker(seed)

    def attrs(rng: random.Random, i: int) -> dict[str, Any]:
        a = _base(rng)
        for k in range(6):
            a[f"opt{k}"] = rng.random() < 0.3 + 0.08 * k
        a["region"] = pick(rng, (("eu", 1), ("us", 1), ("ap", 0.5)))
        return a

    people = m.users(users, attrs, spread=1.3)
    out = []
    for u, t in m.runs(people, sessions):
        error = m.rng.random() < 0.03
        ms = m.rng.lognormvariate(math.log(3000), 0.5)
        out.append(
            m.session(
                u,
                t,
                events=[("ContainerStartFailed", {})] if error else [],
                spans=[("BuildImage", ms, {"cached": u.attrs["opt2"]})],
                attrs={"exitCode": 3 if error else 0},
            )
        )
    return out


def confounded_speed(seed: int = 5) -> list[Session]:
    """BuildImage takes as long with ``buildKit`` as without, but arm64 machines are twice as fast and mostly
    use it: a naive split says BuildKit is faster."""
    m = Maker(seed)

    def attrs(rng: random.Random, i: int) -> dict[str, Any]:
        arm = rng.random() < 0.4
        return {
            **_base(rng),
            "architecture": "arm64" if arm else "x86_64",
            "buildKit": rng.random() < (0.85 if arm else 0.2),
        }

    out = []
    for u, t in m.runs(m.users(200, attrs), 2500):
        ms = m.rng.lognormvariate(math.log(3000), 0.4) * (0.5 if u.attrs["architecture"] == "arm64" else 1)
        out.append(m.session(u, t, spans=[("BuildImage", ms, {"buildKit": u.attrs["buildKit"]})]))
    return out


def simpson(seed: int = 100) -> list[Session]:
    """Within each OS, ``tabCompletion`` raises UnknownCommand by half; Windows users (who rarely use it) have it
    about seven times as often, so across all sessions tab completion looks protective."""
    m = Maker(seed)

    def attrs(rng: random.Random, i: int) -> dict[str, Any]:
        a = _base(rng)
        a["tabCompletion"] = rng.random() < (0.1 if a["operatingSystem"] == "Windows" else 0.7)
        return a

    out = []
    for u, t in m.runs(m.users(500, attrs), 6000):
        rate = (0.2 if u.attrs["operatingSystem"] == "Windows" else 0.03) * (1.5 if u.attrs["tabCompletion"] else 1)
        events = [("UnknownCommand", {})] if m.rng.random() < rate else []
        out.append(m.session(u, t, events=events))
    return out


def ci_regression(seed: int = 8) -> list[Session]:
    """From 1.2.0 on, BuildImage takes three times as long in CI sessions (about 15 %); elsewhere as before."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(300, lambda rng, i: {**_base(rng), "isCI": rng.random() < 0.15}), 4000):
        version = m.version_at(t)
        ms = m.rng.lognormvariate(math.log(3000), 0.5)
        if u.attrs["isCI"] and version == "1.2.0":
            ms *= 3
        out.append(m.session(u, t, version=version, spans=[("BuildImage", ms, {})]))
    return out


def tiny(seed: int = 8) -> list[Session]:
    """Five users, a few dozen sessions; Docker 25.0.4 (two users) fails often, BuildKit halves BuildImage."""
    m = Maker(seed)
    people = m.users(
        5, lambda rng, i: {**_base(rng), "dockerVersion": "25.0.4" if i < 2 else "26.1.0", "buildKit": i % 2 == 0}
    )
    out = []
    for u, t in m.runs(people, 60):
        error = m.rng.random() < (0.5 if u.attrs["dockerVersion"] == "25.0.4" else 0.05)
        ms = m.rng.lognormvariate(math.log(3000), 0.4) * (0.5 if u.attrs["buildKit"] else 1)
        out.append(
            m.session(
                u,
                t,
                events=[("ContainerStartFailed", {})] if error else [],
                spans=[("BuildImage", ms, {"buildKit": u.attrs["buildKit"]})],
            )
        )
    return out


def no_errors(seed: int = 9) -> list[Session]:
    """Nothing goes wrong: the only events are ``CommandRun``; one span type."""
    m = Maker(seed)
    out = []
    for u, t in m.runs(m.users(60, lambda rng, i: _base(rng)), 600):
        ms = m.rng.lognormvariate(math.log(800), 0.4)
        out.append(
            m.session(
                u,
                t,
                events=[("CommandRun", {"command": pick(m.rng, (("build", 2), ("test", 1)))})],
                spans=[("LoadConfig", ms, {})],
            )
        )
    return out


TRACE = "java.lang.IllegalStateException: {0}\n" + "".join(
    f"\tat batect.{pkg}.{cls}.run({cls}.kt:{line})\n"
    for pkg, cls, line in [
        ("execution", "TaskRunner", 88),
        ("docker", "DockerClient", 412),
        ("cli", "CommandLineRunner", 57),
    ]
    * 30
)


def messy(seed: int = 10) -> list[Session]:
    """Batect-style stack traces in event and session attributes, times written with UTC offsets (+05:30,
    −08:00), and a third of the sessions arriving two to six days late. The error is planted on
    ``dockerVersion=25.0.4``; the stack trace (three kinds) comes with the error."""
    m = Maker(seed)
    people = m.users(250, lambda rng, i: {**_base(rng), "zone": pick(rng, (("+330", 1), ("-480", 1), ("0", 1)))})
    out = []
    for u, t in m.runs(people, 3000):
        error = m.rng.random() < (0.2 if u.attrs["dockerVersion"] == "25.0.4" else 0.01)
        trace = TRACE.format(pick(m.rng, (("container exited", 1), ("network gone", 1), ("image missing", 1))))
        late = m.rng.random() < 0.33
        out.append(
            m.session(
                u,
                t,
                attrs={"lastError": trace if error else "none"},
                events=[("ContainerStartFailed", {"stackTrace": trace})] if error else [],
                spans=[("BuildImage", m.rng.lognormvariate(math.log(3000), 0.5), {})],
                offset_minutes=int(u.attrs["zone"]),
                delay_hours=m.rng.uniform(48, 144) if late else 1.0,
            )
        )
    return [s for s in out if s["ingestionTime"] <= _iso(END)]  # what has arrived by the end


def stubborn(seed: int = 11) -> list[Session]:
    """Releases every 15 days; an outdated user sees ``UpdateNudgeShown`` on every run. 40 % of users never
    update; the others update after each nudge with probability 0.2 (mean 5 nudges)."""
    m = Maker(seed, days=90, versions=("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"))
    people = m.users(250, lambda rng, i: {**_base(rng), "stubborn": rng.random() < 0.4}, spread=0.6)
    installed = {u.id: 0 for u in people}
    out = []
    for u, t in m.runs(people, 3000):
        latest = m.versions.index(m.version_at(t))
        events = []
        if installed[u.id] < latest:
            events.append(("UpdateNudgeShown", {}))
        out.append(m.session(u, t, version=m.versions[installed[u.id]], events=events))
        if events and not u.attrs["stubborn"] and m.rng.random() < 0.2:
            installed[u.id] = latest
    return out


def yanked(seed: int = 12) -> list[Session]:
    """1.2.0 is yanked two days after release (its users go back to 1.1.0) and 1.2.1 follows a week later;
    in the last days three users try 2.0.0b1, first seen after everything else."""
    m = Maker(seed, days=60, versions=("1.0.0", "1.1.0"))
    people = m.users(300, lambda rng, i: _base(rng), spread=0.6)
    release = {
        "1.1.0": m.start + timedelta(days=10),
        "1.2.0": m.start + timedelta(days=30),
        "1.2.1": m.start + timedelta(days=39),
        "2.0.0b1": END - timedelta(days=4),
    }
    lag = {u.id: m.rng.expovariate(1 / 4) for u in people}
    beta = {u.id for u in people[:3]}
    out = []
    for u, t in m.runs(people, 2000):
        version = "1.0.0"
        for v in ("1.1.0", "1.2.0", "1.2.1"):
            if t >= release[v] + timedelta(days=lag[u.id]):
                version = v
        if version == "1.2.0" and t >= release["1.2.0"] + timedelta(days=2):
            version = "1.1.0"  # yanked
        if u.id in beta and t >= release["2.0.0b1"]:
            version = "2.0.0b1"
        out.append(m.session(u, t, version=version))
    return out
