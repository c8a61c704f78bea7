"""Scrubbing free text a tool chooses to send: personal data out, the gist kept.

Replaced, in this order: private-key blocks, credentials in URLs, e-mail
addresses, well-known token formats (GitHub, GitLab, Slack, AWS, Google, npm,
OpenAI-style ``sk-``, JWTs), values after ``password=``/``token:``-like keys and
``Bearer``, home directories by ``~`` (this user's, and the usual ``/home/<name>``,
``/Users/<name>``, ``C:\\Users\\<name>``, WSL ``/mnt/c/Users/<name>`` shapes, also
after ``file://``), the user of ``/media/<name>`` and ``/run/media/<name>``, IPv4
addresses, the user of ``ssh bob@host``, ``ssh://bob@host`` and ``bob@<ip>``, IPv6
addresses, long mixed letter-and-digit strings (keys, hashes), and finally this
machine's user and host names. Regexes compile on first use.
"""

from __future__ import annotations

import functools
import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_KEY_NAMES = (
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|"
    r"private[_-]?key|client[_-]?secret|auth(?:orization)?|credentials?|session[_-]?id|cookie"
)

_PATH_START = r"(?:(?<![\w/])|(?<=://)|(?<=://localhost))"

# A Windows user name may hold spaces ("Bob Smith"): taken whole when a separator follows.
_WINDOWS_NAME = r"[^\\/\s\"':;]+(?:(?: [^\\/\s\"':;]+)+(?=[\\/]))?"

_RULES: tuple[tuple[str, str], ...] = (
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", "<private key>"),
    (r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]*:[^\s/@]*@", r"\1<redacted>@"),
    (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "<email>"),
    (r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", "<token>"),
    (
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}|"
        r"xox[abposr]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}|"
        r"npm_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{16,}|pypi-[A-Za-z0-9_-]{16,})",
        "<token>",
    ),
    (rf"(?i)\b((?:{_KEY_NAMES})s?[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)", r"\1<redacted>"),
    (r"(?i)\b((?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1<redacted>"),
    (rf"(?i)\b[a-z]:[\\/]+(?:users|documents and settings)[\\/]+{_WINDOWS_NAME}", "~"),
    # A path's start: not inside a word or another path, but right after ``file://`` (``file:///home/...``).
    (rf"(?i){_PATH_START}/mnt/[a-z]/(?:users|documents and settings)/{_WINDOWS_NAME}", "~"),
    (rf"{_PATH_START}(?:/home|/Users|/export/home|/var/home)/[^/\s\"':;]+", "~"),
    (rf"{_PATH_START}(/run/media|/media)/[^/\s\"':;]+", r"\1/<user>"),
    (rf"{_PATH_START}/root(?=/|\b)", "~"),
    (r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]?\d)", "<ip>"),
    # The user in ``ssh bob@host``, ``ssh://bob@host`` and ``bob@<ip>`` (what is left after the IP went).
    (r"(?i)\b((?:ssh|scp|sftp|rsync|mosh)\s+(?:[^\s@]+\s+){0,6}?)[^\s@/:'\"]+@", r"\1<user>@"),
    (r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:<>]+@", r"\1<user>@"),
    (r"(?<![\w.+-])[A-Za-z0-9._+-]+@(?=<ip>|\[)", "<user>@"),
)

_IPV6_CANDIDATE = r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|<ip>)?(?:%[A-Za-z0-9]+)?(?![\w:])"
_LONG_TOKEN = r"(?<![A-Za-z0-9_+=-])[A-Za-z0-9_+=-]{24,}(?![A-Za-z0-9_+=-])"  # noqa: S105  (a pattern)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL)


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.count(":") < 2 or not any(c.isalnum() for c in text):
        return text
    import ipaddress

    candidate = text.split("%", 1)[0].replace("<ip>", "0.0.0.0")
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return text
    return "<ip>"


def _long_token(match: re.Match[str]) -> str:
    text = match.group(0)
    has_digit = any(c.isdigit() for c in text)
    has_letter = any(c.isalpha() for c in text)
    return "<token>" if has_digit and has_letter else text


def _name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    usable = sorted({n for n in names if len(n) >= 3}, key=len, reverse=True)
    if not usable:
        return None
    alternatives = "|".join(re.escape(n) for n in usable)
    return re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


class Scrubber:
    """Scrubs text against generic patterns and this machine's home, user and host names."""

    def __init__(self, *, homes: Iterable[str] = (), users: Iterable[str] = (), hosts: Iterable[str] = ()) -> None:
        self.homes = sorted({h.rstrip("/\\") for h in homes if len(h.rstrip("/\\")) > 1}, key=len, reverse=True)
        self._users = _name_pattern(users)
        self._hosts = _name_pattern(hosts)

    def __call__(self, text: str) -> str:
        for home in self.homes:
            text = text.replace(home, "~")
        for pattern, replacement in _RULES:
            text = _compiled(pattern).sub(replacement, text)
        text = _compiled(_IPV6_CANDIDATE).sub(_ipv6, text)
        text = _compiled(_LONG_TOKEN).sub(_long_token, text)
        if self._users is not None:
            text = self._users.sub("<user>", text)
        if self._hosts is not None:
            text = self._hosts.sub("<host>", text)
        return text


def machine_scrubber(environ: Mapping[str, str]) -> Scrubber:
    """A scrubber that knows this machine's home directory, user name and host name."""
    homes = [environ.get("HOME", ""), environ.get("USERPROFILE", ""), os.path.expanduser("~")]
    users = [environ.get(k, "") for k in ("USER", "LOGNAME", "USERNAME")]
    homes += [os.path.realpath(h) for h in homes if h]
    users += [os.path.basename(h.rstrip("/\\")) for h in homes if h]
    hosts = [environ.get("HOSTNAME", ""), environ.get("COMPUTERNAME", "")]
    if hasattr(os, "uname"):
        node = os.uname().nodename
        hosts += [node, node.split(".", 1)[0]]
    return Scrubber(homes=homes, users=users, hosts=hosts)


_default: list[Scrubber] = []


def default_scrubber() -> Scrubber:
    """The scrubber of this machine as ``os.environ`` describes it, for use before ``configure``.

    Once the tool has called ``configure``, its client's scrubber is used instead,
    built from ``Config.environ`` (see ``Client.scrubber``).
    """
    if not _default:
        _default.append(machine_scrubber(os.environ))
    return _default[0]
