"""What the client says about where the host tool runs: nothing that identifies anyone.

Operating system, architecture, Python, shell, terminal type, TTY, CI and container:
no host name, user name, path, IP address, locale or command argument. Every value
is cut down to a short token (a shell's name, never its path).

Every attribute set here is listed with its type and description in ``_catalog.py``,
which ``tallystick privacy`` prints; ``tests/privacy/test_catalog.py`` checks that the
two name the same attributes.
"""

from __future__ import annotations

import os
import sys

from tallystick.client._consent import isatty

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from tallystick.schema._rules import AttributeValue

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


def _token(value: str, limit: int = 40) -> str:
    """Keep a short run of harmless characters: enough for ``xterm-256color``, never a path."""
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
    found: dict[str, str] = {}
    try:
        with open("/etc/os-release", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition("=")
                if key in {"ID", "VERSION_ID"}:
                    found[key] = value.strip().strip("\"'")
    except OSError:
        return None, None
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


def describe(environ: Mapping[str, str], stdin: object, stdout: object) -> dict[str, AttributeValue]:
    """The environment as session attributes."""
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
    ci = ci_system(environ)
    attributes["ci"] = ci is not None
    attributes["ciSystem"] = ci
    container = container_system(environ)
    attributes["container"] = container is not None
    attributes["containerSystem"] = container
    return attributes
