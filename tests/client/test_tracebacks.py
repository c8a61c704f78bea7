"""Exceptions become a type name and frames: no message, no path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tallystick.client._tracebacks import describe, frames, type_name
from tallystick.schema._rules import CLIENT_TRACEBACK_MAX_LENGTH


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
    raise_line = _raise_nested.__code__.co_firstlineno + 4
    assert str(described["frames"]).endswith(f"{__name__}:_raise_nested:{raise_line}")
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
    assert len(text) <= CLIENT_TRACEBACK_MAX_LENGTH
    assert text.count(">") <= 40


def test_modules_named_by_their_path_show_as_path(tmp_path: Path) -> None:
    """A module loaded with spec_from_file_location(path, path) has a path for a name: it shows as <path>."""
    home = tmp_path / "home" / "jdoe"
    home.mkdir(parents=True)
    script = home / "plugin.py"
    script.write_text("class PluginError(Exception):\n    pass\n\ndef run():\n    raise PluginError('x')\n")
    spec = importlib.util.spec_from_file_location(str(script), script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.run()
    except Exception as error:
        described = describe(error)
    assert described["exceptionType"] == "<path>.PluginError"
    assert str(described["frames"]).endswith("<path>:run:5")
    assert "jdoe" not in json.dumps(described) and "plugin" not in json.dumps(described)
