"""An exception as attributes: its type and its frames, never its message or file paths."""

from __future__ import annotations

from tallystick.schema._rules import CLIENT_TRACEBACK_MAX_LENGTH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

MAX_FRAMES = 40


def _safe(name: object) -> str:
    text = name if isinstance(name, str) else "?"
    kept = "".join(c if c.isascii() and (c.isalnum() or c in "._<>") else "_" for c in text)
    return kept[:120] or "?"


def _module(name: object) -> str:
    """A module's name, or ``<path>`` when it is one (``spec_from_file_location(path, path)`` makes such)."""
    if isinstance(name, str) and ("/" in name or "\\" in name or name.endswith((".py", ".pyw", ".pyc"))):
        return "<path>"
    return _safe(name)


def type_name(exc: BaseException) -> str:
    """``ValueError`` for built-ins, ``package.module.Error`` otherwise."""
    cls = type(exc)
    module = cls.__module__
    name = _safe(cls.__qualname__)
    return name if module in {"builtins", "__builtin__"} else f"{_module(module)}.{name}"


def frames(tb: TracebackType | None) -> str:
    """``module:function:line`` for each frame, outermost first, at most ``MAX_FRAMES`` innermost ones."""
    parts: list[str] = []
    while tb is not None:
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__", "?")
        parts.append(f"{_module(module)}:{_safe(frame.f_code.co_name)}:{tb.tb_lineno}")
        tb = tb.tb_next
    parts = parts[-MAX_FRAMES:]
    text = " > ".join(parts)
    while len(text) > CLIENT_TRACEBACK_MAX_LENGTH and len(parts) > 1:
        parts = parts[1:]
        text = "... > " + " > ".join(parts)
    return text[:CLIENT_TRACEBACK_MAX_LENGTH]


def describe(exc: BaseException) -> dict[str, object]:
    """The attributes of an error event for ``exc``."""
    attributes: dict[str, object] = {"exceptionType": type_name(exc), "frames": frames(exc.__traceback__)}
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        attributes["causeType"] = type_name(cause)
    return attributes
