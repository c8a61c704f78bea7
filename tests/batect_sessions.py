"""Sessions shaped like the ones Batect's Kotlin client sends (libs/telemetry), for compatibility tests.

The shape follows Batect's serialiser: camelCase fields, UTC timestamps with nine fractional
digits (``ZonedDateTime`` prints nanoseconds), attributes that are strings, integers, booleans
or null, and an exception recorded as one string attribute holding its class and every stack
frame (``\\tat frame`` lines, ``Caused by:`` blocks ending ``\\t... n more``), never its message.
The names, frames and values are this project's own test data.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

APPLICATION = "batect"

# Packages and methods a Kotlin CLI's stack passes through: the tool, its libraries, the JDK.
_FRAMES = [
    "batect.cli.BatectCommandLineApplication.run(BatectCommandLineApplication.kt:{n})",
    "batect.cli.commands.RunTaskCommand.run(RunTaskCommand.kt:{n})",
    "batect.execution.TaskRunner.run(TaskRunner.kt:{n})",
    "batect.execution.ParallelExecutionManager.startWork(ParallelExecutionManager.kt:{n})",
    "batect.execution.model.steps.runners.BuildImageStepRunner.run(BuildImageStepRunner.kt:{n})",
    "batect.docker.client.ImagesClient.build(ImagesClient.kt:{n})",
    "batect.docker.api.ImagesAPI.build(ImagesAPI.kt:{n})",
    "batect.config.io.ConfigurationLoader.loadConfig(ConfigurationLoader.kt:{n})",
    "com.charleskorn.kaml.YamlInput.decodeSerializableValue(YamlInput.kt:{n})",
    "kotlinx.serialization.json.internal.StreamingJsonDecoder.decodeSerializableValue(StreamingJsonDecoder.kt:{n})",
    "okhttp3.internal.connection.RealCall.execute(RealCall.kt:{n})",
    "okhttp3.internal.http.RetryAndFollowUpInterceptor.intercept(RetryAndFollowUpInterceptor.kt:{n})",
    "okhttp3.internal.http.RealInterceptorChain.proceed(RealInterceptorChain.kt:{n})",
    "okhttp3.internal.connection.ConnectInterceptor.intercept(ConnectInterceptor.kt:{n})",
    "kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:{n})",
    "kotlinx.coroutines.scheduling.CoroutineScheduler$Worker.runWorker(CoroutineScheduler.kt:{n})",
    "org.kodein.di.bindings.Singleton.getFactory(standardBindings.kt:{n})",
    "java.base/java.net.Socket.connect(Socket.java:{n})",
    "java.base/sun.nio.ch.NioSocketImpl.connect(NioSocketImpl.java:{n})",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:{n})",
    "java.base/java.util.concurrent.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:{n})",
    "java.base/java.lang.Thread.run(Thread.java:{n})",
]
_EXCEPTIONS = [
    "batect.docker.DockerException",
    "batect.config.io.ConfigurationException",
    "java.net.ConnectException",
    "java.io.IOException",
    "kotlinx.serialization.SerializationException",
    "java.lang.IllegalStateException",
]


def stack_trace(rng: random.Random, frames: int, causes: int) -> str:
    """A JVM exception in Batect's attribute format: class, frames, then each cause's own frames."""

    def block(count: int) -> list[str]:
        return ["\tat " + rng.choice(_FRAMES).format(n=rng.randint(12, 900)) for _ in range(count)]

    lines = [rng.choice(_EXCEPTIONS), *block(frames)]
    for _ in range(causes):
        own = rng.randint(5, max(6, frames // 2))
        lines += [f"Caused by: {rng.choice(_EXCEPTIONS)}", *block(own), f"\t... {frames - own // 2} more"]
    return "\n".join(lines) + "\n"


def _time(at: datetime, offset: timedelta | None = None) -> str:
    """RFC 3339 with nine fractional digits, as java.time prints a ZonedDateTime; Z unless an offset is given."""
    nanos = at.microsecond * 1000 + (at.second * 7 + 678) % 1000
    local = at if offset is None else at.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}"
    if offset is None:
        return text + "Z"
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


SPAN_TYPES = ["LoadConfiguration", "BuildImage", "PullImage", "RunTask", "CreateContainer", "some-span"]
EVENT_TYPES = ["UpdateAvailableNotificationShown", "CommandLineOptionsParsed", "some-event", "docker:pull.retry"]


def batect_session(seed: int, *, errors: int = 1, frames: int = 120, offset: timedelta | None = None) -> dict[str, Any]:
    """One Batect-shaped session; ``errors`` UnhandledException events each carry a stack trace."""
    rng = random.Random(seed)
    start = datetime(2020, 8, 7, 3, 49, 10, tzinfo=UTC) + timedelta(days=seed % 20, seconds=seed)
    t = start
    events: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    for kind in SPAN_TYPES:
        begin = t
        t += timedelta(milliseconds=rng.randint(5, 4000), microseconds=rng.randint(0, 999))
        spans.append({"type": kind, "startTime": _time(begin, offset), "endTime": _time(t, offset), "attributes": {}})
    spans[3]["attributes"] = {"taskName": "build", "isMainTask": True, "containerCount": rng.randint(1, 6)}
    for kind in EVENT_TYPES:
        if kind != EVENT_TYPES[0] and rng.random() < 0.4:  # each other event in some sessions only
            continue
        t += timedelta(milliseconds=rng.randint(1, 50))
        events.append({"type": kind, "time": _time(t, offset), "attributes": {"latestVersion": "0.80.1"}})
    for i in range(errors):
        t += timedelta(milliseconds=3)
        events.append(
            {
                "type": "UnhandledException",
                "time": _time(t, offset),
                "attributes": {
                    "exception": stack_trace(rng, frames, causes=1 + i % 2),
                    "exceptionCaughtAt": "batect.cli.BatectCommandLineApplication.run",
                    "isUserFacingException": i % 2 == 0,
                },
            }
        )
    return {
        "sessionId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "userId": str(uuid.UUID(int=seed + 1, version=4)),
        "sessionStartTime": _time(start, offset),
        "sessionEndTime": _time(t + timedelta(milliseconds=20), offset),
        "applicationId": APPLICATION,
        "applicationVersion": rng.choice(["0.79.1", "0.80.0", "0.80.1-rc.1", "1.0.0+build.5"]),
        "attributes": {
            "operatingSystem": rng.choice(["Mac", "Linux", "Windows"]),
            "operatingSystemVersion": "10.15.7",
            "architecture": "x86_64",
            "jvmVersion": "17.0.15",
            "dockerVersion": "27.3.1",
            "terminalType": None,
            "isCI": rng.random() < 0.3,
            "consoleWidth": 120,
            "commandType": "runTask",
            "wrapperCacheHit": False,
        },
        "events": events,
        "spans": spans,
    }


# Batect's own test session (TelemetrySessionSpec), in its shape, under Batect's application ID.
SPEC_SHAPED = {
    "sessionId": "8a1058f8-e41e-4c78-aa42-663b78d15122",
    "userId": "07ab839b-ac26-475a-966a-77d18d00ac61",
    "sessionStartTime": "2020-08-07T03:49:10.000000678Z",
    "sessionEndTime": "2020-08-07T03:51:11.000000678Z",
    "applicationId": APPLICATION,
    "applicationVersion": "1.0.0",
    "attributes": {"someString": "string", "someNumber": 123, "someBoolean": False, "someNull": None},
    "events": [
        {
            "type": "some-event",
            "time": "2020-08-07T03:49:20.000000678Z",
            "attributes": {"someString": "string", "someNumber": 123, "someBoolean": False, "someNull": None},
        }
    ],
    "spans": [
        {
            "type": "some-span",
            "startTime": "2020-08-07T03:49:30.000000678Z",
            "endTime": "2020-08-07T03:49:40.000000678Z",
            "attributes": {"someString": "string", "someNumber": 123, "someBoolean": False, "someNull": None},
        }
    ],
}


def corpus() -> list[dict[str, Any]]:
    """The Batect-shaped corpus: the spec's session plus generated ones, small to deep traces, Z and offsets."""
    sessions = [json.loads(json.dumps(SPEC_SHAPED))]
    shapes = [
        (0, 40, None),
        (1, 60, None),
        (1, 150, None),
        (2, 120, timedelta(hours=10)),
        (1, 220, timedelta(hours=-5, minutes=-30)),
        (3, 90, None),
        (0, 10, timedelta(0)),
        (1, 400, None),
    ]
    for seed, (errors, frames, offset) in enumerate(shapes):
        sessions.append(batect_session(seed, errors=errors, frames=frames, offset=offset))
    return sessions
