"""The rules of wire contract v1, as plain constants and checks.

Standard library only: the client imports this module to check names and values
before they leave the host tool, and the msgspec Structs in ``session.py`` build
their constraints from the same constants, so a rule is written exactly once.

Patterns are ECMA-262 compatible (they go into the JSON Schema) and end with
``END``, because Python's ``$`` also matches before a trailing newline.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the client imports this module on every run of its host tool
if TYPE_CHECKING:
    import re

END = "$(?!\\n)"

UUID4_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}" + END
APPLICATION_ID_PATTERN = "^[a-z0-9][a-z0-9._-]{0,63}" + END
ATTRIBUTE_NAME_PATTERN = "^[a-zA-Z][a-zA-Z0-9]*" + END
# Event and span types: wide enough for every name real clients send (Batect's own tests use
# ``some-event``; dotted and namespaced names such as ``cli.run`` or ``docker:pull`` are common).
TYPE_NAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.:-]*" + END
# RFC 3339 date-time (section 5.6): 'T' and 'Z' in either case, an offset with a colon.
TIMESTAMP_PATTERN = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})" + END
)

_N = "(?:0|[1-9][0-9]*)"
_IDENT = "[0-9A-Za-z-]+"
_SEMVER = f"{_N}\\.{_N}\\.{_N}(?:-{_IDENT}(?:\\.{_IDENT})*)?(?:\\+{_IDENT}(?:\\.{_IDENT})*)?"
# PEP 440 in its usual spellings (lower case): epoch, release, pre, post, dev, local.
_PEP440 = (
    "v?(?:[0-9]+!)?[0-9]+(?:\\.[0-9]+)*"
    "(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
    "(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?"
    "(?:[-_.]?dev[-_.]?[0-9]*)?"
    "(?:\\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?"
)
# Abacus's version rule, which Batect's own Version type shares (its toString() is what Batect sends):
# SemVer's shape with looser pre-release and build parts ("1.0.0-rc..1", "1.0.0+.") and no leading-zero
# rule. Everything it takes is taken here too, so no version Batect can build is refused.
_ABACUS = "[0-9]+(?:\\.[0-9]+(?:\\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?)?)?"
VERSION_PATTERN = f"^(?:{_SEMVER}|{_ABACUS}|{_PEP440})" + END

APPLICATION_ID_MAX_LENGTH = 64
VERSION_MAX_LENGTH = 64
NAME_MAX_LENGTH = 64
TYPE_NAME_MAX_LENGTH = 128
# The default longest string attribute value, in code points (the server's --max-attribute-chars
# changes it). Batect sends an exception as one attribute holding its class and every stack frame.
# A JVM records at most 1,024 frames of a throwable by default (MaxJavaStackTraceDepth): a
# StackOverflowError in Batect's format measured 104,477 characters. 256 Ki holds 1,024 frames of
# 256 characters each, and four such values still fit the 1 MiB body. See docs/wire-contract.md.
ATTRIBUTE_VALUE_MAX_LENGTH = 262_144
# The client's own traceback capture stays compact: module:function:line frames, at most this long.
CLIENT_TRACEBACK_MAX_LENGTH = 4096
MAX_ATTRIBUTES = 200
# Events and spans per session. Batect adds an UploadTelemetrySession span to a run's session for
# every queued session that run uploads: after weeks offline, thousands. At about 125 bytes each,
# 1 MiB holds some 8,000, so at 10,000 the body limit binds before the count does.
MAX_EVENTS = 10_000
MAX_SPANS = 10_000
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH_SESSIONS = 100

# How each pattern reads in an error message.
PATTERN_DESCRIPTIONS = {
    UUID4_PATTERN: "a version-4 UUID in canonical lower-case form, e.g. 0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14",
    APPLICATION_ID_PATTERN: "1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
    ATTRIBUTE_NAME_PATTERN: "letters and digits only, starting with a letter (e.g. shellName)",
    TYPE_NAME_PATTERN: (
        "letters, digits, '_', '.', ':' or '-', starting with a letter, digit or '_' "
        "(e.g. UpdateNudgeShown, build-image)"
    ),
    VERSION_PATTERN: "a SemVer or PEP 440 version such as 1.4.0, 2.0.0-rc.1 or 1.4.post1",
}

AttributeValue = str | int | float | bool | None


_patterns: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    # Imported and compiled on first use: a host tool that never checks a name never pays for re.
    compiled = _patterns.get(pattern)
    if compiled is None:
        import re

        compiled = _patterns[pattern] = re.compile(pattern)
    return compiled


def _is_identifier(name: object) -> bool:
    # ^[A-Za-z][A-Za-z0-9]*$ with at most 64 characters, by string methods: the client checks a
    # name on every event, and an ASCII str's isalnum() is exactly [A-Za-z0-9].
    return (
        isinstance(name, str)
        and 0 < len(name) <= NAME_MAX_LENGTH
        and name.isascii()
        and name.isalnum()
        and name[0].isalpha()
    )


def is_attribute_name(name: object) -> bool:
    """Whether ``name`` may be an attribute key (ATTRIBUTE_NAME_PATTERN, at most 64 characters)."""
    return _is_identifier(name)


_TYPE_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
# Strings, not sets, for the character-class checks: ``not s.strip(chars)`` says at C speed that ``s`` holds only
# ``chars`` (strip removes them from both ends and stops at any other), where ``all(c in set for c in s)``
# runs a generator step per character; the client runs these checks on every recorded run.
_TYPE_REST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"


def is_type_name(name: object) -> bool:
    """Whether ``name`` may be the type of an event or a span (TYPE_NAME_PATTERN, at most 128 characters)."""
    if not isinstance(name, str) or not 0 < len(name) <= TYPE_NAME_MAX_LENGTH or not name.isascii():
        return False
    if name.isalnum():  # the usual CamelCase name, checked at C speed
        return True
    return name[0] in _TYPE_FIRST and not name.strip(_TYPE_REST)


def long_value(attributes: dict[str, AttributeValue] | None, limit: int) -> str | None:
    """The name of the first string value in ``attributes`` longer than ``limit`` code points, if any."""
    if attributes:
        for name, value in attributes.items():
            if isinstance(value, str) and len(value) > limit:
                return name
    return None


_APP_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_APP_REST = "abcdefghijklmnopqrstuvwxyz0123456789._-"


def is_application_id(value: object) -> bool:
    """Whether ``value`` matches APPLICATION_ID_PATTERN (checked without the regex engine)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= APPLICATION_ID_MAX_LENGTH
        and value[0] in _APP_FIRST
        and not value.strip(_APP_REST)
    )


_HEX = "0123456789abcdef"


def is_uuid4(value: object) -> bool:
    """Whether ``value`` matches UUID4_PATTERN (checked without the regex engine: the client reads its ID every run)."""
    return (
        isinstance(value, str)
        and len(value) == 36
        and value[8] == value[13] == value[18] == value[23] == "-"
        and value[14] == "4"
        and value[19] in "89ab"
        and not (value[:8] + value[9:13] + value[14:18] + value[19:23] + value[24:]).strip(_HEX)
    )


def is_version(value: object) -> bool:
    return isinstance(value, str) and len(value) <= VERSION_MAX_LENGTH and bool(_compiled(VERSION_PATTERN).match(value))


def is_unicode_text(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (no unpaired surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def attribute_value_problem(value: object, limit: int = ATTRIBUTE_VALUE_MAX_LENGTH) -> str | None:
    """Why ``value`` cannot be an attribute value (strings at most ``limit`` code points), or None when it can."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > limit:
            return f"must be at most {limit} characters"
        if not value.isascii() and not is_unicode_text(value):
            return "must be valid Unicode text (it holds an unpaired surrogate, e.g. from a non-UTF-8 file name)"
        return None
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return "must fit a 64-bit signed integer"
        return None
    if isinstance(value, float):
        if value - value != 0.0:  # true exactly for NaN and ±infinity, without importing math
            return "must be a finite number"
        return None
    return "must be a string, a number, a boolean or null"


# Self-service erasure (docs/privacy.md, "Erasure from the user's machine"). A client keeps a
# random secret beside its user ID and sends, as this optional session attribute, a one-way
# commitment to it; ``POST /v1/erasures`` with the user ID and the secret then deletes exactly
# the sessions that carry the matching commitment. Sessions without it are valid as ever (Abacus
# and Batect clients never send it); they just cannot be erased this way.
ERASURE_COMMITMENT_ATTRIBUTE = "telemetryErasureCommitment"
ERASURE_SECRET_PATTERN = "^[0-9a-f]{64}" + END
ERASURE_COMMITMENT_PATTERN = ERASURE_SECRET_PATTERN
_ERASURE_DOMAIN = "tallystick-erasure-v1\n"


def erasure_commitment(user_id: str, secret: str) -> str:
    """The commitment a session carries for ``secret``: hex SHA-256 of a domain tag, the user ID and the secret.

    Binding the user ID means a commitment seen under one ID proves nothing about another.
    """
    import hashlib  # on first use only: the client computes this once per user ID, not per run

    return hashlib.sha256(f"{_ERASURE_DOMAIN}{user_id}\n{secret}".encode()).hexdigest()


def is_erasure_secret(value: object) -> bool:
    """Whether ``value`` is a secret the client makes: 64 lower-case hex digits (32 random bytes)."""
    return isinstance(value, str) and len(value) == 64 and not value.strip(_HEX)
