"""Declared data: strict mode rejects undeclared names with their path, open mode accepts and reports them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from privacy.conftest import Server, declared, eventually, tallystick, tool_session
from tallystick.privacy.declarations import parse_applications
from tallystick.privacy.errors import DeclarationError
from tallystick.server.config import ConfigError, load_config


def test_strict_mode_rejects_an_undeclared_attribute_with_its_path(privacy_server: Callable[..., Server]) -> None:
    """A session of a strict application carrying an undeclared attribute gets 400 naming attributes.<name>."""
    server = privacy_server(declared("strict"))
    assert server.put(tool_session())[0] == 201
    status, answer = server.put(tool_session(attributes={"projectSize": 3, "homeDirectory": "/home/x"}))
    assert status == 400
    [error] = answer["validationErrors"]
    assert (error["key"], error["type"], error["invalidValue"]) == (
        "attributes.homeDirectory",
        "undeclared",
        "homeDirectory",
    )
    assert error["message"].startswith("attributes.homeDirectory is not declared for mytool: declare it")


def test_strict_mode_checks_events_spans_and_types(privacy_server: Callable[..., Server]) -> None:
    """Undeclared event types, event attributes and span types, and values of the wrong type, are each named."""
    server = privacy_server(declared("strict"))
    bad = tool_session(
        attributes={"projectSize": "big"},
        events=[
            {"type": "UpdateNudgeShown", "time": "2026-05-01T10:00:00Z", "attributes": {"command": "rm -rf"}},
            {"type": "Secret", "time": "2026-05-01T10:00:00Z"},
            {"type": "UnhandledException", "time": "2026-05-01T10:00:00Z", "attributes": {"exceptionType": "E"}},
        ],
        spans=[{"type": "Mystery", "startTime": "2026-05-01T10:00:00Z", "endTime": "2026-05-01T10:00:01Z"}],
    )
    status, answer = server.put(bad)
    assert status == 400
    assert [(e["key"], e["type"]) for e in answer["validationErrors"]] == [
        ("attributes.projectSize", "declaredType"),
        ("events[0].attributes.command", "undeclared"),
        ("events[1].type", "undeclared"),
        ("spans[0].type", "undeclared"),
    ]
    assert answer["validationErrors"][0]["message"] == "attributes.projectSize is declared as a number, not a string"


def test_strict_mode_accepts_the_clients_failed_flag_on_a_declared_span(privacy_server: Callable[..., Server]) -> None:
    """A declared span the client marked failed (it ended in an exception) is stored; other span attributes are not."""
    server = privacy_server(declared("strict"))
    span = {"type": "LoadConfig", "startTime": "2026-05-01T10:00:00Z", "endTime": "2026-05-01T10:00:01Z"}
    assert server.put(tool_session(spans=[{**span, "attributes": {"failed": True}}]))[0] == 201
    status, answer = server.put(tool_session(spans=[{**span, "attributes": {"failed": True, "path": "/home/x"}}]))
    assert status == 400
    assert [(e["key"], e["type"]) for e in answer["validationErrors"]] == [("spans[0].attributes.path", "undeclared")]


def test_open_mode_accepts_and_lists_undeclared_names(privacy_server: Callable[..., Server]) -> None:
    """An open application's session with undeclared names is stored, and `tallystick rejects` lists the names."""
    server = privacy_server(declared("open"))
    session = tool_session(attributes={"projectSize": 3, "colourScheme": "dark"})
    session["events"].append({"type": "PluginLoaded", "time": "2026-05-01T10:00:00Z"})
    assert server.put(session)[0] == 201
    args = ["rejects", "--storage", server.storage]
    eventually(lambda: "colourScheme" in tallystick(*args).stdout, "undeclared names in the quarantine counts")
    out = tallystick(*args).stdout
    assert "undeclared names (accepted, open mode):" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["mytool", "attributes.colourScheme", "1"] in lines
    assert ["mytool", "events.PluginLoaded", "1"] in lines


def test_declarations_reload_when_the_file_changes(privacy_server: Callable[..., Server]) -> None:
    """Declaring an attribute in the config file takes effect without a restart (the file's mtime is watched)."""
    server = privacy_server(declared("strict"))
    session = tool_session(attributes={"projectSize": 3, "theme": "dark"})
    assert server.put(session)[0] == 400
    text = server.config.read_text() + (
        '\n[[applications.mytool.attributes]]\nname = "theme"\ntype = "string"\n'
        'description = "Colour theme."\nwhy = "To pick the default."\n'
    )
    server.config.write_text(text)
    eventually(lambda: server.put(tool_session(attributes={"theme": "x"}))[0] == 201, "the reloaded declaration")


def test_sighup_reloads_and_a_broken_file_keeps_the_old_declarations(privacy_server: Callable[..., Server]) -> None:
    """SIGHUP re-reads the file; a file that no longer parses is logged and the previous declarations stay."""
    server = privacy_server(declared("strict").replace("reload_check_seconds = 0.1", "reload_check_seconds = 3600"))
    before = os.stat(server.config)
    server.config.write_text(server.config.read_text().replace('mode = "strict"', 'mode = "open"'))
    os.utime(server.config, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime check alone would miss it
    loose = tool_session(attributes={"undeclaredThing": 1})
    assert server.put(loose)[0] == 400
    server.hup()
    eventually(lambda: server.put(tool_session(attributes={"undeclaredThing": 1}))[0] == 201, "SIGHUP reload")
    server.config.write_text("applications = [")
    server.hup()

    def warned() -> bool:
        assert server.put(tool_session(attributes={"undeclaredThing": 1}))[0] == 201  # still open mode
        return "kept the previous declarations" in server.log.read_text()

    eventually(warned, "the warning about the broken file")
    assert server.put(tool_session())[0] == 201


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('[applications.mytool]\nmode = "lax"\n', "mode 'lax'", id="mode"),
        pytest.param("[applications.mytool]\ncolour = 1\n", "unknown key 'colour'", id="unknown-key"),
        pytest.param(
            '[[applications.mytool.attributes]]\nname = "x"\ntype = "number"\nwhy = "w"\n',
            "needs a description: say what the value is",
            id="no-description",
        ),
        pytest.param(
            '[[applications.mytool.attributes]]\nname = "x"\ntype = "int"\ndescription = "d"\nwhy = "w"\n',
            "needs a type: string, number or boolean, not 'int'",
            id="bad-type",
        ),
        pytest.param(
            '[[applications.mytool.events]]\nname = "bad name"\ndescription = "d"\nwhy = "w"\n',
            "needs a name of letters, digits, '_', '.', ':' or '-'",
            id="bad-name",
        ),
        pytest.param(
            '[[applications.mytool.spans]]\nname = "A"\ndescription = "d"\nwhy = "w"\n'
            '[[applications.mytool.spans]]\nname = "A"\ndescription = "d"\nwhy = "w"\n',
            "'A' is declared twice in applications.mytool.spans",
            id="twice",
        ),
        pytest.param("[applications.My_Tool]\n", "invalid application ID 'My_Tool'", id="bad-app"),
    ],
)
def test_bad_declarations_give_one_line_saying_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake in a declaration is one ConfigError line naming the place and the fix."""
    path = tmp_path / "server.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), defaults={"storage_url": "memory://"})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_list_form_still_registers_without_declaring() -> None:
    """``applications = ["a", "b"]`` registers both and declares nothing."""
    assert parse_applications(["a", "b"], "f") == ({"a", "b"}, {})
    with pytest.raises(DeclarationError):
        parse_applications("a", "f")


def test_declared_apps_are_registered_alongside_flags(tmp_path: Path) -> None:
    """Applications with a declaration table are registered, together with those given as flags."""
    path = tmp_path / "server.toml"
    path.write_text(declared())
    config = load_config(str(path), defaults={"storage_url": "memory://"}, applications=["other"])
    assert config.applications == frozenset({"mytool", "other"})
    assert config.declarations["mytool"].strict
    assert [a.name for a in config.declarations["mytool"].events[0].attributes] == ["latestVersion"]
