"""What a tool collects, and what the user's "allowed" covers: consent that keeps up with collection.

A tool's *collection* is a set of items, ``attribute NAME``, ``event NAME`` and
``span NAME``: the client's built-ins (the catalog below: environment and telemetry
attributes, built-in events) plus what the tool declares in ``Config(attributes=...,
events=..., spans=...)``. Its *fingerprint* is the sorted items, one a line: equal
fingerprints mean the same collection, and the text says what differs.

The rule: the stored choice ``allowed`` covers exactly the collection that was in
force when the user allowed (kept in the file ``consent-covers`` beside ``consent``).
When a run collects an item the choice does not cover,

- that item is *withheld*: not recorded (attributes dropped, events and spans not
  added; counted as ``telemetryDropsNotConsented``), while everything covered is;
- the notice appears again (once per new collection, on a terminal, not on CI)
  listing only what is new and how to allow it;
- allowing again (``allow``, ``mytool telemetry allow``, ``set_consent(True)``)
  covers the collection of the run that allows; a per-run ``MYTOOL_TELEMETRY=1``
  covers everything for that run only.

An ``allowed`` stored before this file existed (an older client) is taken to
cover the collection of the first run that sees it, which writes the file then.
When the tool declares nothing, its own names are not tracked (only built-ins
are); when it declares, names it did not declare are withheld like new ones.

Every run reads ``consent-covers`` only when recording is allowed; an unchanged
collection costs one small file read and one comparison of bytes.

The catalog: what the client itself collects, by name, type and reason, the source of
``tallystick privacy``. The server's privacy listing and strict-mode check read it, and
tests check it against what ``_session.describe`` and the client's own session attributes
really hold, so the listing cannot drift from what is collected. Each entry is
``(name, type, description)``; ``type`` is ``string``, ``number`` or ``boolean`` (any of
them may be null when unknown). A name ending in ``*`` stands for every name with that
prefix. It lives here, not in a module of its own, because a run with a stored
"allowed" needs both, and each module loaded costs the host tool a fixed part of a
millisecond.
"""

# ruff: noqa: SIM105  (contextlib is an import the host tool would pay for on every run)

from __future__ import annotations

import os

from tallystick.client import _queue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

COVERS_FILE = "consent-covers"
COLLECTION_FILE = "collection"  # the collection of the latest run, for `python -m tallystick.client allow`
KINDS = ("attribute", "event", "span")

# -- the catalog: the client's own collection ------------------------------------------

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
    (
        "telemetryDrops*",
        "number",
        "Sessions, events or attributes the client dropped (or held back), by reason (e.g. expired, proxyTooLarge).",
    ),
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


# Attributes the client adds to the tool's own spans (``span.__exit__``). Not in ``builtin_items``: they
# describe how an operation the tool declared went, so they are covered by that span's consent.
SPAN_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("failed", "boolean", "True when the operation ended with an exception (a sys.exit(0) is not one)."),
)


def builtin_items() -> dict[str, str]:
    """The client's own items with their descriptions."""
    items = {f"attribute {n}": d for n, _, d in (*ENVIRONMENT_ATTRIBUTES, *CLIENT_ATTRIBUTES)}
    items.update({f"event {n}": d for n, d, _ in EVENTS})
    return items


def collection(
    attributes: Mapping[str, str] | None, events: Mapping[str, str] | None, spans: Mapping[str, str] | None
) -> dict[str, str] | None:
    """Every item the tool collects with its description; None when the tool declares nothing."""
    if attributes is None and events is None and spans is None:
        return None
    items = builtin_items()
    for kind, declared in zip(KINDS, (attributes, events, spans), strict=True):
        for name, description in (declared or {}).items():
            items[f"{kind} {name}"] = str(description)
    return items


def fingerprint(items: Iterable[str]) -> bytes:
    """The canonical text of a collection: its items sorted, one a line."""
    return "".join(f"{item}\n" for item in sorted(set(items))).encode()


def parse(text: bytes) -> frozenset[str]:
    return frozenset(line for line in text.decode("utf-8", "replace").splitlines() if line.strip())


def read(path: str) -> frozenset[str] | None:
    data = _queue.read_bytes(path, 1024 * 1024)
    return None if data is None else parse(data)


def write(path: str, items: Iterable[str]) -> None:
    _queue.atomic_write(path, fingerprint(items))


class Coverage:
    """Which names a run may record: none of the ``withheld`` items, and (when the tool declares) only declared ones."""

    __slots__ = ("_declared", "_withheld")

    def __init__(self, withheld: Iterable[str] = (), declared: Iterable[str] | None = None) -> None:
        self._withheld = _Names(withheld)
        self._declared = None if declared is None else _Names(declared)

    def attribute(self, name: str) -> bool:
        if self._withheld.has("attribute", name):
            return False
        return self._declared is None or self._declared.has("attribute", name)

    def type(self, kind: str, name: str) -> bool:
        if self._withheld.has(kind, name):
            return False
        return self._declared is None or self._declared.has(kind, name)


class _Names:
    __slots__ = ("exact", "prefixes")

    def __init__(self, items: Iterable[str]) -> None:
        self.exact = frozenset(items)
        self.prefixes = tuple(i[:-1] for i in self.exact if i.endswith("*"))

    def has(self, kind: str, name: str) -> bool:
        item = f"{kind} {name}"
        return item in self.exact or any(item.startswith(p) and len(item) > len(p) for p in self.prefixes)


def resolve(data_dir: str, declared: Mapping[str, str] | None) -> tuple[Coverage, dict[str, str]]:
    """What a run with an ``allowed`` choice may record, and the items it collects that the choice does not cover.

    ``declared``: ``collection(...)`` of the tool's config. Writes ``consent-covers`` when an
    older client's ``allowed`` has none yet, and ``collection`` when the collection changed.
    """
    tracked = declared if declared is not None else builtin_items()
    current = fingerprint(tracked)
    remember(data_dir, current)
    path = os.path.join(data_dir, COVERS_FILE)
    stored = _queue.read_bytes(path, 1024 * 1024)
    names = None if declared is None else declared.keys()
    if stored == current:
        return Coverage((), names), {}
    if stored is None:  # allowed before consent kept up with collection: it covers this collection
        try:
            _queue.atomic_write(path, current)
        except OSError:
            pass
        return Coverage((), names), {}
    new = {item: tracked[item] for item in sorted(set(tracked) - parse(stored))}
    return Coverage(new, names), new


def remember(data_dir: str, current: bytes) -> None:
    """Keep the latest run's collection, so ``python -m tallystick.client allow`` can cover exactly it."""
    path = os.path.join(data_dir, COLLECTION_FILE)
    if _queue.read_bytes(path, 1024 * 1024) != current:
        try:
            _queue.atomic_write(path, current, sync=False)
        except OSError:
            pass


def cover(data_dir: str, declared: Mapping[str, str] | None) -> None:
    """Record that the user's "allowed" covers ``declared`` (None: the latest run's collection, if known)."""
    path = os.path.join(data_dir, COVERS_FILE)
    if declared is not None:
        _queue.atomic_write(path, fingerprint(declared))
        return
    latest = _queue.read_bytes(os.path.join(data_dir, COLLECTION_FILE), 1024 * 1024)
    if latest is not None:
        _queue.atomic_write(path, latest)
    else:
        _queue.remove(path)  # no run seen yet: the next run's collection is covered (see resolve)


def notice(app_id: str, env_prefix: str, new: Mapping[str, str], command: str | None = None) -> str:
    """The notice shown when a version collects what the user's "allowed" does not cover.

    ``command``: the tool's own consent command (``Config.consent_command``), named first.
    """
    generic = f"python -m tallystick.client allow --app {app_id}"
    how = f"`{command} allow` (or `{generic}`)" if command else f"`{generic}`"
    lines = [f"{app_id} now collects more than when you allowed its usage statistics:"]
    lines += [f"  {item}: {description}" for item, description in sorted(new.items())]
    lines += [
        "These are not recorded until you allow them; everything else is recorded as before.",
        f"  {how} allows them;",
        f"  {env_prefix}_TELEMETRY=0 or DO_NOT_TRACK=1 turns telemetry off.",
        "This notice is shown once for each change.",
    ]
    return "\n".join(lines) + "\n"


def notice_marker(data_dir: str, current: bytes) -> str:
    """A file whose existence says the notice for this collection was shown (named by a checksum)."""
    import binascii  # a C module: no cost worth counting, and only when something is new

    return os.path.join(data_dir, f"notice-shown-{binascii.crc32(current):08x}")
