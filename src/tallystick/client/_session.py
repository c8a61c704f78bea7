"""One run of the host tool as a session of the wire contract: its IDs and times, where it runs, what it records.

Names and values are checked against ``tallystick.schema._rules`` when recorded:
in strict mode a bad one raises ``InvalidData`` (so a tool author's tests catch
it); otherwise it is dropped and counted, and the session stays valid. ``Session``
is thread-safe.

Where the tool runs (``describe``): operating system, architecture, Python, shell,
terminal type, TTY, CI and container; no host name, user name, path, IP address,
locale or command argument. Every value is cut down to a short token (a shell's name,
never its path). Every attribute set there is listed with its type and description in
the catalog in ``_collection.py``, which ``tallystick privacy`` prints; ``tests/privacy/test_catalog.py``
checks that the two name the same attributes.

IDs and times are made without ``uuid`` or ``datetime``, and the session is written as
JSON without ``json`` (``dumps``): each of those imports costs a tool that does not use
it milliseconds on every run. One module rather than four for the same reason: every
recording run needs all of this, and each module loaded is a fixed cost too.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from tallystick.client._consent import isatty
from tallystick.schema import _rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tallystick.client._collection import Coverage
    from tallystick.schema._rules import AttributeValue

# -- IDs and times ----------------------------------------------------------------


def new_uuid4() -> str:
    """A random version-4 UUID in canonical lower-case form."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rfc3339(seconds: float) -> str:
    """``seconds`` since the epoch as an RFC 3339 UTC time with microseconds."""
    micros = round(seconds * 1_000_000)
    whole, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{fraction:06d}Z"


# -- where the tool runs ----------------------------------------------------------

# Checked in order: the first variable present names the CI system.
CI_SYSTEMS = (
    ("GITHUB_ACTIONS", "GitHub Actions"),
    ("GITLAB_CI", "GitLab CI"),
    ("CIRCLECI", "CircleCI"),
    ("TRAVIS", "Travis CI"),
    ("JENKINS_URL", "Jenkins"),
    ("BUILDKITE", "Buildkite"),
    ("TF_BUILD", "Azure Pipelines"),
    ("TEAMCITY_VERSION", "TeamCity"),
    ("APPVEYOR", "AppVeyor"),
    ("BITBUCKET_BUILD_NUMBER", "Bitbucket Pipelines"),
    ("CODEBUILD_BUILD_ID", "AWS CodeBuild"),
    ("DRONE", "Drone"),
    ("SEMAPHORE", "Semaphore"),
    ("BUDDY", "Buddy"),
    ("CIRRUS_CI", "Cirrus CI"),
    ("WOODPECKER", "Woodpecker"),
    ("HEROKU_TEST_RUN_ID", "Heroku CI"),
    ("NETLIFY", "Netlify"),
    ("VERCEL", "Vercel"),
    ("CI", "unknown"),
)

# Variables that are flags: set to false, they do not mean CI.
_FLAGS = frozenset({"CI", "TRAVIS", "CIRCLECI", "GITLAB_CI", "GITHUB_ACTIONS", "TF_BUILD", "APPVEYOR"})


_HARMLESS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+"


def _token(value: str, limit: int = 40) -> str:
    """Keep a short run of harmless characters: enough for ``xterm-256color``, never a path."""
    if not value.strip(_HARMLESS):  # harmless throughout (the usual case), checked at C speed
        return value[:limit]
    kept = "".join(c for c in value if c.isascii() and (c.isalnum() or c in "._-+"))
    return kept[:limit]


def ci_system(environ: Mapping[str, str]) -> str | None:
    """The CI system this runs on, or None outside CI."""
    for variable, name in CI_SYSTEMS:
        value = environ.get(variable)
        if value is None:
            continue
        if variable in _FLAGS and value.strip().lower() in {"", "0", "false", "no", "off"}:
            continue
        return name
    return None


def container_system(environ: Mapping[str, str]) -> str | None:
    """The container runtime this runs in, or None when none is detected."""
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if os.path.exists("/.dockerenv"):
        return "docker"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    kind = environ.get("container")
    if kind:
        return _token(kind, 20) or "unknown"
    return None


def _shell(environ: Mapping[str, str]) -> str | None:
    if sys.platform == "win32":
        if environ.get("PSModulePath") and not environ.get("PROMPT"):
            return "powershell"
        return "cmd" if environ.get("COMSPEC") else None
    path = environ.get("SHELL")
    if not path:
        return None
    name = _token(path.replace("\\", "/").rsplit("/", 1)[-1], 20)
    return name.removesuffix(".exe") or None


def _terminal(environ: Mapping[str, str]) -> str | None:
    value = environ.get("TERM_PROGRAM") or environ.get("TERM")
    if environ.get("WT_SESSION"):
        value = "WindowsTerminal"
    return _token(value) if value else None


def _os_release() -> tuple[str | None, str | None]:
    """Linux distribution ID and version from /etc/os-release."""
    from tallystick.client._queue import read_bytes  # loaded already by the client

    found: dict[str, str] = {}
    data = read_bytes("/etc/os-release", 64 * 1024)  # bytes: a text file's decoder costs more than the read
    if data is None:
        return None, None
    for line in data.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key in {"ID", "VERSION_ID"}:
            found[key] = value.strip().strip("\"'")
    return _token(found.get("ID", "")) or None, _token(found.get("VERSION_ID", "")) or None


# One name per architecture, whatever the OS calls it: Windows says AMD64 and ARM64, macOS arm64, Linux
# x86_64 and aarch64.
_ARCHITECTURES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "i686": "x86",
    "i386": "x86",
}


def architecture(machine: str) -> str:
    """``machine`` under one name per architecture (``AMD64`` and ``x86_64`` are both ``x86_64``)."""
    token = _token(machine)
    return _ARCHITECTURES.get(token.lower(), token.lower())


# ``describe``'s default: detect the CI system itself (a caller that has done so passes what it found).
_DETECT = "detect"


def describe(
    environ: Mapping[str, str], stdin: object, stdout: object, ci: str | None = _DETECT
) -> dict[str, AttributeValue]:
    """The environment as session attributes; ``ci``: the CI system, if the caller detected it already."""
    attributes: dict[str, AttributeValue] = {}
    if hasattr(os, "uname"):
        uname = os.uname()
        attributes["osName"] = _token(uname.sysname)
        attributes["osVersion"] = _token(uname.release)
        attributes["osArchitecture"] = architecture(uname.machine)
    else:  # Windows: platform is slow to import, so only here
        import platform

        attributes["osName"] = "Windows"
        attributes["osVersion"] = _token(platform.version())
        attributes["osArchitecture"] = architecture(platform.machine())
    if sys.platform.startswith("linux"):
        distribution, distribution_version = _os_release()
        attributes["osDistribution"] = distribution
        attributes["osDistributionVersion"] = distribution_version
    attributes["pythonImplementation"] = sys.implementation.name
    attributes["pythonVersion"] = "{}.{}.{}".format(*sys.version_info[:3])
    attributes["shell"] = _shell(environ)
    attributes["terminal"] = _terminal(environ)
    attributes["interactive"] = isatty(stdin) and isatty(stdout)
    if ci is _DETECT:  # twenty environment look-ups: a recording run makes them once (Client._start)
        ci = ci_system(environ)
    attributes["ci"] = ci is not None
    attributes["ciSystem"] = ci
    container = container_system(environ)
    attributes["container"] = container is not None
    attributes["containerSystem"] = container
    return attributes


# -- the session ---------------------------------------------------------------------

# Room kept among the session's attributes for the client's own (environment, costs).
RESERVED_ATTRIBUTES = 40


def _invalid(message: str) -> Exception:
    """The InvalidData to raise in strict mode, its module imported only then (most runs never raise)."""
    from tallystick.client._errors import InvalidData

    return InvalidData(message)


def _problem(kind: str, name: object, rule: str) -> str:
    return f"{kind} {name!r} breaks the Tallystick wire contract: it must be {rule}"


def clean_attributes(
    attributes: Mapping[str, object],
    *,
    strict: bool,
    count: Callable[[str, int], None],
    limit: int = _rules.MAX_ATTRIBUTES,
) -> dict[str, AttributeValue]:
    """Attributes that keep the session valid; the rest raise (strict) or are dropped and counted."""
    clean: dict[str, AttributeValue] = {}
    for name, value in attributes.items():
        if not _rules.is_attribute_name(name):
            if strict:
                rule = _rules.PATTERN_DESCRIPTIONS[_rules.ATTRIBUTE_NAME_PATTERN]
                raise _invalid(_problem("attribute name", name, f"{rule}, at most {_rules.NAME_MAX_LENGTH} long"))
            count("invalidAttribute", 1)
            continue
        if isinstance(value, str) and len(value) > _rules.ATTRIBUTE_VALUE_MAX_LENGTH and not strict:
            value = value[: _rules.ATTRIBUTE_VALUE_MAX_LENGTH]  # noqa: PLW2901  (a long text is cut, not lost)
        problem = _rules.attribute_value_problem(value)
        if problem is not None:
            if strict:
                raise _invalid(f"attribute {name!r} has a value the wire contract does not allow: it {problem}")
            count("invalidAttribute", 1)
            continue
        if len(clean) >= limit and name not in clean:
            if strict:
                raise _invalid(f"more than {limit} attributes: the wire contract allows at most {limit}")
            count("tooManyAttributes", 1)
            continue
        clean[name] = value  # type: ignore[assignment]  # checked by attribute_value_problem
    return clean


def check_type_name(kind: str, name: object, *, strict: bool) -> bool:
    """Whether ``name`` may be an event or span type (strict: raise if not)."""
    if _rules.is_type_name(name):
        return True
    if strict:
        rule = _rules.PATTERN_DESCRIPTIONS[_rules.TYPE_NAME_PATTERN]
        raise _invalid(_problem(f"{kind} type", name, f"{rule}, at most {_rules.TYPE_NAME_MAX_LENGTH} long"))
    return False


class Session:
    """The session being recorded: attributes, events and spans, each call thread-safe."""

    def __init__(
        self,
        app_id: str,
        version: str,
        user_id: str,
        *,
        clock: Callable[[], float],
        strict: bool,
        count: Callable[[str, int], None],
    ) -> None:
        self.session_id = new_uuid4()
        self.user_id = user_id
        self.app_id = app_id
        self.version = version
        self.clock = clock
        self.start_time = clock()
        self.strict = strict
        self._count = count
        self._lock = _thread.RLock()  # re-entrant: a signal handler may finish the session mid-call
        self._attributes: dict[str, AttributeValue] = {}
        self._events: list[dict[str, object]] = []
        self._spans: list[dict[str, object]] = []
        # What the user's consent covers (``_collection``); None: everything. Set by the client.
        self.coverage: Coverage | None = None

    def _withhold(self, attributes: Mapping[str, object]) -> Mapping[str, object]:
        coverage = self.coverage
        if coverage is None or all(coverage.attribute(n) for n in attributes if isinstance(n, str)):
            return attributes
        kept = {n: v for n, v in attributes.items() if not isinstance(n, str) or coverage.attribute(n)}
        self._count("notConsented", len(attributes) - len(kept))
        return kept

    def _withheld_type(self, kind: str, type_name: str) -> bool:
        if self.coverage is None or not isinstance(type_name, str) or self.coverage.type(kind, type_name):
            return False
        self._count("notConsented", 1)
        return True

    def set_attributes(self, attributes: Mapping[str, object], *, internal: bool = False) -> None:
        limit = _rules.MAX_ATTRIBUTES if internal else _rules.MAX_ATTRIBUTES - RESERVED_ATTRIBUTES
        attributes = self._withhold(attributes)
        with self._lock:
            room = max(0, limit - len(self._attributes))
            clean = clean_attributes(attributes, strict=self.strict and not internal, count=self._count, limit=room)
            self._attributes.update(clean)

    def set_environment(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Set ``describe``'s attributes: short tokens, booleans and None, valid by construction.

        So not checked again one by one (a recording run's largest set of attributes, on every
        run), but withheld like any other where the user's consent does not cover them.
        """
        kept = self._withhold(attributes)
        with self._lock:
            if len(self._attributes) + len(kept) > _rules.MAX_ATTRIBUTES:
                self.set_attributes(kept, internal=True)  # no room for all: the checked path counts
                return
            self._attributes.update(kept)  # type: ignore[arg-type]  # a part of ``attributes``

    def add_event(self, type_name: str, attributes: Mapping[str, object], when: float | None = None) -> None:
        if not check_type_name("event", type_name, strict=self.strict):
            self._count("invalidName", 1)
            return
        if self._withheld_type("event", type_name):
            return
        clean = clean_attributes(attributes, strict=self.strict, count=self._count)
        event: dict[str, object] = {"type": type_name, "time": rfc3339(self.clock() if when is None else when)}
        if clean:
            event["attributes"] = clean
        with self._lock:
            if len(self._events) >= _rules.MAX_EVENTS:
                if self.strict:
                    raise _invalid(f"more than {_rules.MAX_EVENTS} events in one session")
                self._count("tooManyEvents", 1)
                return
            self._events.append(event)

    def add_span(self, type_name: str, start: float, end: float, attributes: Mapping[str, object]) -> None:
        if not check_type_name("span", type_name, strict=self.strict):
            self._count("invalidName", 1)
            return
        if self._withheld_type("span", type_name):
            return
        clean = clean_attributes(attributes, strict=self.strict, count=self._count)
        span: dict[str, object] = {"type": type_name, "startTime": rfc3339(start), "endTime": rfc3339(max(end, start))}
        if clean:
            span["attributes"] = clean
        with self._lock:
            if len(self._spans) >= _rules.MAX_SPANS:
                if self.strict:
                    raise _invalid(f"more than {_rules.MAX_SPANS} spans in one session")
                self._count("tooManySpans", 1)
                return
            self._spans.append(span)

    def to_dict(self, end_time: float | None = None) -> dict[str, object]:
        """The session as the wire contract's JSON object, ending now (or at ``end_time``)."""
        end = self.clock() if end_time is None else end_time
        with self._lock:
            tree: dict[str, object] = {
                "sessionId": self.session_id,
                "userId": self.user_id,
                "sessionStartTime": rfc3339(self.start_time),
                "sessionEndTime": rfc3339(max(end, self.start_time)),
                "applicationId": self.app_id,
                "applicationVersion": self.version,
                "attributes": dict(self._attributes),
                "events": list(self._events),
                "spans": list(self._spans),
            }
        return tree


# -- the session as JSON ---------------------------------------------------------------

# What JSON must escape in a string (json.dumps with ensure_ascii=False escapes exactly these).
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def dumps(tree: object) -> str:
    """``tree`` as compact JSON, exactly as ``json.dumps(tree, ensure_ascii=False, separators=(",", ":"),
    allow_nan=False)`` writes it, for the plain values a session holds (str, int, float, bool, None, dict, list).

    ``json`` costs a tool that does not import it 2-5 ms (it compiles six regular expressions);
    this costs nothing to import. Raises ValueError for NaN or infinities, TypeError for
    anything else, as ``json`` does.
    """
    out: list[str] = []
    _write(tree, out)
    return "".join(out)


def _write(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        if value.isprintable() and '"' not in value and "\\" not in value:  # nothing to escape, the usual case
            out.append(f'"{value}"')
        else:
            out.append(f'"{value.translate(_ESCAPES)}"')
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value - value != 0.0:  # NaN or an infinity
            raise ValueError(f"{value!r} is not a JSON number")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"a JSON key must be a string, not {type(key).__name__}")
            if i:
                out.append(",")
            _write(key, out)
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encodable(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def drop_unencodable(tree: dict[str, object]) -> int:
    """Remove the string values UTF-8 cannot encode from every attributes object of ``tree``; how many."""
    dropped = 0

    def clean(holder: dict[str, object]) -> dict[str, object]:
        nonlocal dropped
        attributes = holder.get("attributes")
        if not isinstance(attributes, dict) or all(_encodable(v) for v in attributes.values()):
            return holder
        kept = {k: v for k, v in attributes.items() if _encodable(v)}
        dropped += len(attributes) - len(kept)
        return {**holder, "attributes": kept}

    tree.update(clean(tree))
    for key in ("events", "spans"):
        items = tree.get(key)
        if isinstance(items, list):
            tree[key] = [clean(item) if isinstance(item, dict) else item for item in items]
    return dropped
