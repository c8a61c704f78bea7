"""Exceptions become a type name and frames: no message, no path."""

from __future__ import annotations

import json

from tallystick.client._tracebacks import describe, frames, type_name


class ToolError(Exception):
    pass


def _raise_nested() -> None:
    try:
        raise KeyError("/home/jdoe/secret.txt")
    except KeyError as error:
        raise ToolError("password=hunter2 at /home/jdoe") from error


def test_an_exception_keeps_type_and_frames_only() -> None:
    """The description has the type, the cause type and module:function:line frames, never the message."""
    try:
        _raise_nested()
    except ToolError as error:
        described = describe(error)
    assert described["exceptionType"] == f"{__name__}.ToolError"
    assert described["causeType"] == "KeyError"
    assert str(described["frames"]).endswith(f"{__name__}:_raise_nested:18")
    text = json.dumps(described)
    assert "hunter2" not in text and "/home" not in text and ".py" not in text


def test_builtin_type_names_are_short() -> None:
    """Built-in exceptions are named without 'builtins.'."""
    assert type_name(ValueError()) == "ValueError"


def test_deep_recursion_is_cut_to_the_attribute_limit() -> None:
    """A huge traceback still fits one attribute value."""

    def recurse(n: int) -> None:
        if n == 0:
            raise RecursionError
        recurse(n - 1)

    try:
        recurse(300)
    except RecursionError as error:
        text = frames(error.__traceback__)
    assert len(text) <= 4096
    assert text.count(">") <= 40
