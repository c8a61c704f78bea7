"""Server settings: defaults, then the TOML file, then flags; bad settings are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallystick.server.config import ConfigError, load_config


def test_file_then_flags(tmp_path: Path) -> None:
    """A file overrides defaults, flags override the file, and applications are combined."""
    path = tmp_path / "t.toml"
    path.write_text('storage_url = "memory://"\napplications = ["one"]\nmax_body_bytes = 4096\n')
    config = load_config(str(path), defaults={"storage_url": "/x"}, applications=["two"], max_body_bytes=None)
    assert config.storage_url == "memory://"
    assert config.applications == frozenset({"one", "two"})
    assert config.max_body_bytes == 4096
    assert load_config(str(path), max_body_bytes=8192).max_body_bytes == 8192


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("colour = 1\n", "unknown setting 'colour'", id="unknown-key"),
        pytest.param("max_body_bytes = 'big'\n", "setting max_body_bytes must be a whole number", id="wrong-type"),
        pytest.param("applications = 'one'\n", "applications in", id="apps-not-list"),
        pytest.param("applications = ['Bad App']\n", "invalid application ID 'Bad App'", id="bad-app"),
        pytest.param("= broken\n", "is not valid TOML", id="not-toml"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, message: str) -> None:
    """Each bad setting raises ConfigError with a message naming it."""
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path), defaults={"storage_url": "memory://"})


def test_missing_file() -> None:
    """A config path that does not exist says to check it."""
    with pytest.raises(ConfigError, match="does not exist: check the --config path"):
        load_config("/nonexistent/t.toml", defaults={"storage_url": "memory://"})


def test_attribute_value_limit_is_a_setting_inside_the_body_limit(tmp_path: Path) -> None:
    """max_attribute_chars comes from the file or the flag; it must stay below max_body_bytes (one clear line)."""
    path = tmp_path / "t.toml"
    path.write_text("max_attribute_chars = 200000\n")
    defaults = {"storage_url": "memory://"}
    assert load_config(str(path), defaults=defaults).attribute_chars == 200_000
    assert load_config(None, defaults=defaults, max_attribute_chars=500).attribute_chars == 500
    assert load_config(None, defaults=defaults).attribute_chars == 262_144
    assert load_config(None, defaults=defaults, max_body_bytes=4096).attribute_chars == 4095
    with pytest.raises(ConfigError, match="max_attribute_chars 4096 must be at least 1 and below max_body_bytes 4096"):
        load_config(None, defaults=defaults, max_body_bytes=4096, max_attribute_chars=4096)
    path.write_text("max_attribute_chars = 'long'\n")
    with pytest.raises(ConfigError, match="max_attribute_chars"):
        load_config(str(path), defaults=defaults)
