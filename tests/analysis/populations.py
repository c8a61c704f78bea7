"""Seeded populations with one planted cause, feature effect and span effect each, for planted-truth tests.

Unlike the demo, each is built to mislead a naive analysis: a handful of very heavy users all
have the planted cause, so every other attribute those users share is over-represented among
the errors' sessions too. Effects are multiplicative on a per-session probability (the error,
the outcome) or on a span's duration.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

END = datetime(2025, 3, 1, tzinfo=UTC)
SHELLS = ("fish", "zsh", "bash", "pwsh", "sh")
SYSTEMS = (("Linux", "x86_64"), ("Darwin", "arm64"), ("Windows", "x86_64"))
PYTHONS = ("3.11.9", "3.12.7", "3.13.1")
VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


@dataclass(frozen=True)
class Population:
    """What is planted; ``None`` for no effect of that kind."""

    name: str
    seed: int
    users: int
    sessions: int
    cause: tuple[str, tuple[str, ...], str] | None  # attribute, its values, the value that causes ``error``
    error: str
    error_rate: float  # per session with the cause
    base_error_rate: float  # per session otherwise
    feature: str
    feature_effect: float  # relative change of ``outcome``'s rate with the feature on (0: none)
    outcome: str
    outcome_rate: float  # per session without the feature
    span: str
    span_attribute: str
    span_ratio: float  # duration with the span attribute on / off (1: none)
    heavy_users: int = 4  # users with the cause who run the tool 40 times as often as a typical user
    slower_version: str | None = None  # from this version on, ``span`` takes 1.6 times as long
    days: int = 60

    @property
    def cause_label(self) -> str | None:
        return f"{self.cause[0]}={self.cause[2]}" if self.cause else None


POPULATIONS = (
    Population(
        "plugin-crash",
        seed=101,
        users=600,
        sessions=14_000,
        cause=("pluginVersion", ("1.2.1", "1.2.2", "1.2.3", "1.3.0"), "1.2.3"),
        error="PluginCrashed",
        error_rate=0.30,
        base_error_rate=0.004,
        feature="parallel",
        feature_effect=-0.50,
        outcome="Timeout",
        outcome_rate=0.06,
        span="Compile",
        span_attribute="incremental",
        span_ratio=0.3,
    ),
    Population(
        "region-upload",
        seed=202,
        users=900,
        sessions=16_000,
        cause=("region", ("us-east-1", "us-west-2", "eu-west-1", "eu-west-2", "ap-south-1"), "eu-west-2"),
        error="UploadFailed",
        error_rate=0.12,
        base_error_rate=0.006,
        feature="cache",
        feature_effect=1.0,
        outcome="StaleResult",
        outcome_rate=0.03,
        span="Fetch",
        span_attribute="mirror",
        span_ratio=0.7,
        heavy_users=6,
        slower_version="1.2.0",
    ),
    Population(
        "git-clone",
        seed=303,
        users=400,
        sessions=9_000,
        cause=("gitVersion", ("2.39.2", "2.43.0", "2.44.0"), "2.39.2"),
        error="CloneFailed",
        error_rate=0.06,
        base_error_rate=0.01,
        feature="sparseCheckout",
        feature_effect=-0.35,
        outcome="DiskFull",
        outcome_rate=0.08,
        span="Checkout",
        span_attribute="shallow",
        span_ratio=0.55,
        heavy_users=3,
    ),
    Population(
        "no-effect",
        seed=404,
        users=700,
        sessions=12_000,
        cause=None,
        error="ConnectionReset",
        error_rate=0.02,
        base_error_rate=0.02,
        feature="telemetryPreview",
        feature_effect=0.0,
        outcome="Warning",
        outcome_rate=0.05,
        span="Resolve",
        span_attribute="lockfile",
        span_ratio=1.0,
        heavy_users=5,
    ),
)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate(p: Population, app: str = "tool") -> list[dict[str, Any]]:
    """The population's sessions in wire format (dicts), deterministic for its seed."""
    rng = random.Random(p.seed)
    start = END - timedelta(days=p.days)
    users = []
    for i in range(p.users):
        heavy = p.cause is not None and i < p.heavy_users
        os_name, arch = rng.choice(SYSTEMS)
        attrs: dict[str, Any] = {
            "shell": rng.choice(SHELLS),
            "operatingSystem": os_name,
            "architecture": arch,
            "pythonVersion": rng.choice(PYTHONS),
            "projectSize": max(1, round(rng.lognormvariate(math.log(10), 0.7))),
            p.feature: rng.random() < 0.4,
            p.span_attribute: rng.random() < 0.5,
        }
        if p.cause is not None:
            attribute, values, bad = p.cause
            attrs[attribute] = bad if heavy else rng.choice(values)
        weight = rng.lognormvariate(0, 1.0) * (40 if heavy else 1)
        users.append((_uuid(rng), attrs, weight))
    total = sum(w for _, _, w in users)
    out = []
    for user_id, attrs, weight in users:
        for _ in range(max(1, round(p.sessions * weight / total))):
            t = start + timedelta(seconds=rng.random() * p.days * 86400)
            version = VERSIONS[min(len(VERSIONS) - 1, int(3 * (t - start) / (END - start)))]
            caused = p.cause is not None and attrs[p.cause[0]] == p.cause[2]
            events = []
            exit_code = 0
            if rng.random() < (p.error_rate if caused else p.base_error_rate):
                events.append({"type": p.error, "time": _iso(t + timedelta(seconds=1)), "attributes": {}})
                exit_code = 3
            rate = p.outcome_rate * (1 + p.feature_effect if attrs[p.feature] else 1)
            if rng.random() < rate:
                events.append({"type": p.outcome, "time": _iso(t + timedelta(seconds=2)), "attributes": {}})
            ms = rng.lognormvariate(math.log(2000), 0.6) * (p.span_ratio if attrs[p.span_attribute] else 1)
            if p.slower_version is not None and VERSIONS.index(version) >= VERSIONS.index(p.slower_version):
                ms *= 1.6
            spans = [
                {
                    "type": p.span,
                    "startTime": _iso(t),
                    "endTime": _iso(t + timedelta(milliseconds=ms)),
                    "attributes": {p.span_attribute: attrs[p.span_attribute]},
                }
            ]
            out.append(
                {
                    "sessionId": _uuid(rng),
                    "userId": user_id,
                    "sessionStartTime": _iso(t),
                    "sessionEndTime": _iso(t + timedelta(milliseconds=ms + 5)),
                    "ingestionTime": _iso(t + timedelta(hours=1)),
                    "applicationId": app,
                    "applicationVersion": version,
                    "attributes": {**attrs, "exitCode": exit_code},
                    "events": events,
                    "spans": spans,
                }
            )
    return out
