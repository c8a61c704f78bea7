"""``tallystick privacy``: the listing is generated from the declaration and the client's catalog."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from privacy.conftest import tallystick
from tallystick.privacy import catalog
from tallystick.privacy.gate import read_applications
from tallystick.privacy.listing import render

GOLDEN = Path(__file__).parent / "golden"
UPDATE = "TALLYSTICK_UPDATE_GOLDEN"  # set to 1 to regenerate golden/*.md from golden/*.toml


def _generated() -> str:
    _, declarations = read_applications(str(GOLDEN / "mytool.toml"))
    return render("mytool", declarations["mytool"])


def test_privacy_output_matches_the_golden_file() -> None:
    """`tallystick privacy mytool` prints golden/mytool.md, generated from mytool.toml (see UPDATE)."""
    golden = GOLDEN / "mytool.md"
    if os.environ.get(UPDATE) == "1":
        golden.write_text(_generated())
    result = tallystick("privacy", "mytool", "--config", str(GOLDEN / "mytool.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == golden.read_text()


def test_every_declared_item_and_builtin_is_listed() -> None:
    """Each name, description and reason of the declaration file, and every built-in, appears in the listing."""
    text = _generated()
    table = tomllib.loads((GOLDEN / "mytool.toml").read_text())["applications"]["mytool"]
    items = [*table["attributes"], *table["events"], *table["spans"]]
    items += [a for e in table["events"] for a in e.get("attributes", [])]
    for item in items:
        assert f"`{item['name']}`" in text
        assert item["description"] in text
        assert item.get("why", "") in text
    for builtin in (*catalog.SESSION_FIELDS, *catalog.ENVIRONMENT, *catalog.CLIENT, *catalog.EVENTS):
        assert f"`{builtin.name}`" in text and builtin.description in text
    assert "rejects any session carrying a name not listed here (strict mode)" in text
    assert "IP addresses" in text.split("## Never collected", 1)[1]


def test_an_application_without_a_declaration_says_so() -> None:
    """A registered application with nothing declared gets the built-ins and a sentence saying nothing is checked."""
    text = render("plain", None)
    assert "plain declares no data of its own on this server" in text
    assert "`osName`" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["privacy", "Bad App"], "'Bad App' is not an application ID", id="bad-id"),
        pytest.param(
            ["privacy", "other", "--config", str(GOLDEN / "mytool.toml")], "other is not registered", id="unknown"
        ),
    ],
)
def test_privacy_errors_are_one_line(args: list[str], message: str) -> None:
    """A bad application ID or one the config does not register is one line saying what to do."""
    result = tallystick(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("tallystick: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_listing_names_the_erasure_endpoint_what_it_removes_and_how_long_tombstones_stay() -> None:
    """The deletion section tells the user how to erase, what goes, and the tombstones' lifetime."""
    from tallystick.privacy.tombstones import KEEP_DAYS

    text = _generated()
    assert "`mytool telemetry forget`" in text and "POST /v1/erasures" in text
    assert "every table of its database and from the tables derived from them" in text
    assert f"for {KEEP_DAYS} days" in text
