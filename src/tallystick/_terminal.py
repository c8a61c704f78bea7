"""Text from sessions made harmless for a terminal, and a quiet end when the reader of our output goes away.

Attribute values, versions and event types come from clients, so any of them may hold
terminal control sequences: ``ESC [31m`` recolours the screen, ``ESC ] 0;...BEL`` sets
the window title, others write the clipboard or forge hyperlinks on some terminals, and a
bidi override or a newline makes a table lie about what it holds. ``safe`` writes every
such character as a visible escape (``\\x1b``, ``\\u202e``); every command that prints
session text to a terminal goes through it (tables, reports, CSV to a terminal, error
lines quoting the engine). JSON output needs nothing more: ``json.dumps`` escapes them.
"""

from __future__ import annotations

import os
import re
import sys
from typing import IO, Any

# C0 controls, DEL and C1 controls; bidi marks, embeddings, overrides and isolates; line and
# paragraph separators. Tabs and newlines too: inside a cell they would break the table.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """``text`` with every character that could drive a terminal written as a visible escape."""
    return _UNSAFE.sub(_escape, text)


def safe_value(value: Any) -> Any:
    """``safe`` for text; other values as they are."""
    return safe(value) if isinstance(value, str) else value


def is_terminal(out: IO[str]) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def end_on_closed_pipe() -> None:
    """After ``BrokenPipeError`` on stdout (``| head`` stopped reading): point stdout at /dev/null,
    so the interpreter's final flush does not print a second error, and let the caller exit 0."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
