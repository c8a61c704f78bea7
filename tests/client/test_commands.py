"""What a tool author gets ready-made: the consent command (argparse, click), consent before configure, the notice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tallystick.client._client import Client
from tallystick.client._config import Config


def test_the_tools_own_telemetry_command(tool) -> None:  # type: ignore[no-untyped-def]
    """`mytool telemetry allow|status|deny` (the argparse helper) stores the choice and says where the user stands."""
    allow = tool.run("telemetry", "allow")
    assert allow.returncode == 0 and allow.stderr == ""
    assert allow.stdout.startswith("usage statistics: allowed")
    assert "see exactly what is kept to send: mytool telemetry show" in allow.stdout
    assert (tool.data_dir / "consent").read_text() == "allowed"
    tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY": "local"})
    assert len(tool.queued()) == 2, "the run that allowed records too, then hello"
    status = tool.run("telemetry", "status", env={"MYTOOL_TELEMETRY": "0"})
    assert status.stdout.splitlines()[:2] == [
        "usage statistics: allowed: anonymous usage statistics are recorded and sent",
        "  in this shell MYTOOL_TELEMETRY=0 decides for each run",
    ]
    deny = tool.run("telemetry", "deny")
    assert deny.stdout.startswith("usage statistics: denied")
    assert tool.queued() == [] and (tool.data_dir / "consent").read_text() == "disabled"
    wrong = tool.run("telemetry", "maybe")
    assert wrong.returncode == 2 and "allow|deny|status|show|forget" in wrong.stderr
    shown = tool.run("telemetry", "show")
    assert shown.returncode == 0 and shown.stdout.startswith("Telemetry of mytool\n")
    assert "  stored choice:   disabled" in shown.stdout


def test_the_click_command(tmp_path: Path) -> None:
    """click_command() gives a click tool the same command; run in a real process with its own data directory."""
    script = textwrap.dedent(f"""
        import click
        import tallystick.client as telemetry
        from tallystick.client import commands

        @click.group()
        def cli():
            telemetry.configure(telemetry.Config("mytool", "1.0.0", "http://127.0.0.1:9",
                                data_dir={str(tmp_path)!r}, environ={{}}, install_hooks=False))

        cli.add_command(commands.click_command())
        cli()
    """)
    result = subprocess.run(
        [sys.executable, "-c", script, "telemetry", "allow"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage statistics: allowed")
    assert (tmp_path / "consent").read_text() == "allowed"
    helped = subprocess.run(
        [sys.executable, "-c", script, "telemetry", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert "allow or deny anonymous usage statistics" in helped.stdout


def test_set_consent_before_configure_is_kept(tmp_path: Path) -> None:
    """set_consent() called before configure() is stored by configure(), and this very run records."""
    script = textwrap.dedent(f"""
        import tallystick.client as telemetry
        telemetry.set_consent(True)
        print(telemetry.consent())
        telemetry.configure(telemetry.Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir={str(tmp_path)!r},
                            environ={{"MYTOOL_TELEMETRY_UPLOAD_INTERVAL": "0"}}, local_only=True))
        print(telemetry.consent())
        telemetry.event("Hello")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "allowed\nallowed\n", "")
    assert (tmp_path / "consent").read_text() == "allowed"
    (queued,) = (tmp_path / "queue").glob("*.json")
    assert [e["type"] for e in json.loads(queued.read_text())["events"]] == ["Hello"]


def test_the_notice_names_the_tools_own_command(tmp_path: Path, stream) -> None:  # type: ignore[no-untyped-def]
    """With Config(consent_command=...) the first-run notice tells users to run that command."""
    stderr = stream(True)
    config = Config(
        "my-tool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ={}, stderr=stderr, install_hooks=False
    )
    config.consent_command = "my-tool telemetry"
    client = Client(config)
    client.start()
    client.finish()
    assert "MY_TOOL_TELEMETRY=1 for one run, or `my-tool telemetry allow` for good" in stderr.text
    assert "`my-tool telemetry show` shows exactly what would be sent" in stderr.text
    assert "python -m tallystick.client" not in stderr.text, "not on PATH in a tool's own venv or pipx install"


def test_debug_alone_says_how_to_see_the_session(tmp_path: Path, stream) -> None:  # type: ignore[no-untyped-def]
    """MYTOOL_TELEMETRY_DEBUG=1 with no consent explains that MYTOOL_TELEMETRY=1 is needed to see a session."""
    stderr = stream(False)
    environ = {"MYTOOL_TELEMETRY_DEBUG": "1"}
    config = Config("mytool", "1.0.0", "http://127.0.0.1:9", data_dir=tmp_path, environ=environ, stderr=stderr)
    config.install_hooks = False
    client = Client(config)
    client.start()
    client.finish()
    assert "telemetry is off: no choice made yet" in stderr.text
    assert "set MYTOOL_TELEMETRY=1 as well to see the session it would record" in stderr.text


def test_show_gives_the_servers_reason_for_a_refused_session(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A session the server refused is kept with the server's answer, and `show` prints that answer."""
    server = fake_ingest(status=400)
    tool.allow()
    tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    show = subprocess.run(
        [sys.executable, "-m", "tallystick.client", "show", "--app", "mytool"],
        env=tool.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "rejected:        1 session(s) the server refused" in show.stdout
    assert 'the server answered {"message": "scripted answer"}' in show.stdout
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tallystick.client", "show", "--app", "mytool", "--json"],
            env=tool.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    assert report["rejected"][0]["serverAnswer"] == {"message": "scripted answer"}
    assert report["lastUpload"] == "sent"


def test_a_choice_that_cannot_be_stored_says_so(tool) -> None:  # type: ignore[no-untyped-def]
    """A data directory that cannot be made (read-only home): `allow` says where and what to do, exit status 1."""
    blocker = tool.home / "not-a-directory"
    blocker.write_text("")  # XDG_DATA_HOME under a regular file: unwritable even for root
    result = tool.run("telemetry", "allow", env={"XDG_DATA_HOME": str(blocker / "data")})
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "usage statistics: no choice made: nothing is recorded or sent until you allow it"
    assert lines[1].startswith(f"  your choice could not be stored in {blocker / 'data' / 'mytool' / 'telemetry'}:")
    assert lines[1].endswith("or set MYTOOL_TELEMETRY=1 for each run")


FLAT_TOOL = """
import argparse, sys
import tallystick.client as telemetry
from tallystick.client import commands

def main():
    telemetry.configure(telemetry.Config("flat", "1.0.0", "http://127.0.0.1:9", data_dir=sys.argv.pop(1),
                        consent_command="flat telemetry", install_hooks=False))
    status = commands.handle(sys.argv[1:], prog="flat")
    if status is not None:
        return status
    parser = argparse.ArgumentParser(prog="flat")
    parser.add_argument("-t", "--text", required=True)
    print(parser.parse_args().text)
    return 0

sys.exit(main())
"""


def test_handle_gives_a_tool_without_subcommands_the_command(tmp_path: Path) -> None:
    """commands.handle: `flat telemetry allow|--help` for a parser with no subcommands; other arguments untouched."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", FLAT_TOOL, str(tmp_path), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env={})

    assert (run("-t", "hi").stdout, run("-t", "hi").returncode) == ("hi\n", 0)
    allowed = run("telemetry", "allow")
    assert (allowed.returncode, allowed.stderr) == (0, "")
    assert allowed.stdout.startswith("usage statistics: allowed")
    assert "flat telemetry show" in allowed.stdout
    assert (tmp_path / "consent").read_text() == "allowed"
    helped = run("telemetry", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith(
        "usage: flat telemetry [-h] allow|deny|status|show|forget"
    )
    wrong = run("telemetry", "sometimes")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_status_and_show_say_why_uploads_fail(tool, fake_ingest) -> None:  # type: ignore[no-untyped-def]
    """A redirect to another host is not followed: `status` says uploads fail, `show` says why and what to set."""
    server = fake_ingest(status=301, headers={"Location": "http://telemetry.example.net/v1/sessions"})
    tool.allow()
    tool.run("hello", "Ada", env={"MYTOOL_TELEMETRY_URL": server.url, "MYTOOL_TELEMETRY_EXIT_TIMEOUT": "30"})
    assert len(tool.queued()) == 1 and len(server.requests) == 1, "sent once, to the configured server only"
    status = tool.run("telemetry", "status", env={"MYTOOL_TELEMETRY_URL": server.url})
    assert "  uploads are failing: http301 (1 in a row); sessions wait on this machine" in status.stdout
    shown = tool.run("telemetry", "show", env={"MYTOOL_TELEMETRY_URL": server.url}).stdout
    assert "last upload:     http301, 1 failed in a row" in shown
    assert "not followed, it leads to another host (telemetry.example.net) than server_url names" in shown
    assert "set server_url to the URL that answers" in shown


@pytest.mark.parametrize(
    ("folder", "encoding", "shown"),
    [(b"jos\xc3\xa9", "ascii", "jos\\xe9"), (b"caf\xe9", "utf-8", "caf\\udce9")],
    ids=["accent-ascii-stdout", "undecodable-bytes"],
)
def test_show_prints_a_path_stdout_cannot_encode(tool, folder: bytes, encoding: str, shown: str) -> None:  # type: ignore[no-untyped-def]
    """`telemetry show` and `python -m tallystick.client show` print such a data directory escaped, not a traceback."""
    data_home = os.fsdecode(os.fsencode(tool.home) + b"/" + folder)
    env = {"XDG_DATA_HOME": data_home, "PYTHONIOENCODING": encoding, "MYTOOL_TELEMETRY": "local"}
    assert tool.run("hello", "Ada", env=env).returncode == 0
    module = [sys.executable, "-m", "tallystick.client", "show", "--app", "mytool"]
    for result in (
        tool.run("telemetry", "show", env=env),
        subprocess.run(module, env={**tool.env, **env}, capture_output=True, text=True, check=False),
    ):
        assert (result.returncode, result.stderr) == (0, "")
        assert f"  data directory:  {tool.home}/{shown}/mytool/telemetry\n" in result.stdout
        assert "  queued:          " in result.stdout
