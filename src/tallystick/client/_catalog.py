"""What the client itself collects, by name, type and reason: the source of ``tallystick privacy``.

Plain constants, imported by nothing on the client's start-up path: the server's
privacy listing and strict-mode check read it, and tests check it against what
``_session.describe`` and the client's own session attributes really hold,
so the listing cannot drift from what is collected.

Each entry is ``(name, type, description)``; ``type`` is ``string``, ``number`` or
``boolean`` (any of them may be null when unknown). A name ending in ``*`` stands
for every name with that prefix.
"""

from __future__ import annotations

ENVIRONMENT_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("osName", "string", "Operating system kernel name, e.g. Linux, Darwin or Windows."),
    ("osVersion", "string", "Operating system release, e.g. 6.8.0-45-generic."),
    ("osArchitecture", "string", "Processor architecture, e.g. x86_64 or arm64."),
    ("osDistribution", "string", "Linux distribution ID from /etc/os-release, e.g. debian (Linux only)."),
    ("osDistributionVersion", "string", "Linux distribution version from /etc/os-release, e.g. 12 (Linux only)."),
    ("pythonImplementation", "string", "Python implementation, e.g. cpython or pypy."),
    ("pythonVersion", "string", "Python version, e.g. 3.12.4."),
    ("shell", "string", "Name of the user's shell (never its path), e.g. bash or zsh."),
    ("terminal", "string", "Terminal program or type, e.g. xterm-256color or iTerm.app."),
    ("interactive", "boolean", "Whether standard input and output are both terminals."),
    ("ci", "boolean", "Whether the tool runs on a CI system."),
    ("ciSystem", "string", "Name of the CI system, e.g. GitHub Actions (null outside CI)."),
    ("container", "boolean", "Whether the tool runs in a container."),
    ("containerSystem", "string", "Container runtime, e.g. docker or kubernetes (null outside one)."),
)

CLIENT_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("telemetryMs", "number", "Milliseconds the telemetry client cost the tool in this run."),
    ("telemetryQueueDepth", "number", "Sessions waiting in the local upload queue."),
    ("telemetryQueuedBytes", "number", "Bytes of the sessions waiting in the local upload queue."),
    ("telemetryUploadFailures", "number", "Upload attempts that failed in a row before this run (absent when none)."),
    (
        "telemetryUploadError",
        "string",
        "Why the last upload failed, e.g. timeout, certificate, proxy or http503 (absent when none).",
    ),
    ("telemetryDrops*", "number", "Sessions, events or attributes the client dropped, by reason (e.g. expired)."),
    (
        "telemetryErasureCommitment",
        "string",
        "One-way hash (SHA-256) of a random secret kept on this machine: lets this installation, and only it, "
        "have its data erased (`forget`).",
    ),
)

_EXCEPTION = (
    ("exceptionType", "string", "Class of the exception, e.g. ValueError (never its message)."),
    ("frames", "string", "module:function:line of each frame (never file paths or local values)."),
    ("causeType", "string", "Class of the exception that caused it, if any."),
)

# (type, description, attributes)
EVENTS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("UnhandledException", "The tool ended with an exception it did not handle.", _EXCEPTION),
    ("Error", "The tool reported an exception it handled (``record_exception``).", _EXCEPTION),
    ("Terminated", "The tool was stopped by a signal.", (("signal", "string", "Name of the signal, e.g. SIGTERM."),)),
)
