"""The free-text scrubber: seeded personal data never survives; ordinary text does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tallystick.client
from tallystick.client._scrub import Scrubber, machine_scrubber

USERS = ["jdoe42", "maria.kowalska", "svc-builder"]
HOSTS = ["build-box-17", "marias-macbook.local", "ws0231.corp.example.net"]
HOMES = ["/home/jdoe42", "/Users/maria.kowalska", "C:\\Users\\svc-builder"]

# The seeded corpus: every string here must be gone after scrubbing, wherever it sits.
SEEDED_PII = [
    "jdoe42",
    "maria.kowalska",
    "svc-builder",
    "build-box-17",
    "marias-macbook.local",
    "ws0231.corp.example.net",
    "/home/jdoe42",
    "/home/alice/projects/secret-plan/notes.txt",
    "/Users/bob.smith/Library/Preferences",
    "C:\\Users\\Charlie\\AppData\\Local\\Temp\\x.log",
    "alice@example.com",
    "first.last+tag@sub.example.co.uk",
    "192.168.1.23",
    "10.0.0.1",
    "8.8.4.4",
    "2001:db8::8a2e:370:7334",
    "fe80::1ff:fe23:4567:890a",
    "::ffff:192.0.2.128",
    "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "glpat-xxxxXXXX1234yyyyZZZZ",
    "xoxb-1234567890-abcdefghijkl",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "sk-proj-abcdefghijklmnop1234567890",
    "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "hunter2butlonger",
    "s3cr3t-Passw0rd",
    "https://deploy:t0ps3cret@git.example.com/repo.git",
    # User names this machine does not know, in the shapes that carry them (see CONTEXTS).
    "frank-in-a-url",
    "wsl-walter",
    "Ines Souza",
    "media-mia",
    "runmedia-ruth",
    "ssh-sam",
    "scp-sara",
    "url-ulla",
]
# How some of them appear in text: a key before a secret value, a name in a path or an address.
CONTEXTS = {
    "hunter2butlonger": "password={}",
    "s3cr3t-Passw0rd": 'api_key: "{}"',
    "frank-in-a-url": "file:///home/{}/notes.txt",
    "wsl-walter": "/mnt/c/Users/{}/Documents",
    "Ines Souza": "/mnt/d/Users/{}/AppData/x.log",
    "media-mia": "/media/{}/USB-STICK/backup.tar",
    "runmedia-ruth": "/run/media/{}/disk",
    "ssh-sam": "ssh {}@203.0.113.5",
    "scp-sara": "scp -P 2222 build.log {}@devbox:/tmp",
    "url-ulla": "ssh://{}@[2001:db8::1]:22/repo.git",
}
# What must still be there: the parts that are not personal.
FILLER = ["error", "while", "opening", "config", "failed", "retry", "(", ")", ":", ",", "->", "line 12", "v1.4.0"]
SEPARATORS = [" ", "\n", "\t", " | ", ", ", "; ", " '", "' "]


def scrubber() -> Scrubber:
    return Scrubber(homes=HOMES, users=USERS, hosts=HOSTS)


def _placed(item: str) -> str:
    return CONTEXTS.get(item, "{}").format(item)


def _leftovers(text: str) -> list[str]:
    return [item for item in SEEDED_PII if item in text]


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(
        st.one_of(st.sampled_from(SEEDED_PII).map(_placed), st.sampled_from(FILLER)),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.sampled_from(SEPARATORS), min_size=12, max_size=12),
)
def test_seeded_personal_data_is_always_removed(parts: list[str], separators: list[str]) -> None:
    """Property: any text mixing the seeded corpus with ordinary words comes out with 0 seeded items."""
    text = "".join(part + separator for part, separator in zip(parts, separators, strict=False))
    assert _leftovers(scrubber()(text)) == []


@pytest.mark.parametrize("item", SEEDED_PII)
def test_each_seeded_item_is_removed_alone(item: str) -> None:
    """Each seeded item, alone in a sentence, is removed (100 % of the corpus)."""
    assert _leftovers(scrubber()(f"failed at {_placed(item)} today")) == []


def test_ordinary_text_is_kept() -> None:
    """Text with nothing personal in it passes unchanged."""
    text = "error while opening config (line 12): expected ']' after 'plugins', version 1.4.0"
    assert scrubber()(text) == text


def test_home_paths_become_tilde() -> None:
    """A home directory becomes ~, keeping the rest of the path."""
    assert scrubber()("cannot read /home/jdoe42/.config/mytool.toml") == "cannot read ~/.config/mytool.toml"
    assert scrubber()("in /Users/someone/src/app.py") == "in ~/src/app.py"


def test_machine_scrubber_knows_this_machine() -> None:
    """The default scrubber removes this machine's home, user and host names."""
    environ = {"HOME": "/srv/homes/zed-the-user", "USER": "zed-the-user", "HOSTNAME": "zeds-laptop-9"}
    scrub = machine_scrubber(environ)
    out = scrub("zed-the-user@zeds-laptop-9 ran /srv/homes/zed-the-user/bin/tool on zeds-laptop-9")
    assert "zed-the-user" not in out and "zeds-laptop-9" not in out


def test_public_scrub_is_the_machine_scrubber() -> None:
    """tallystick.client.scrub removes e-mails and IPs."""
    assert tallystick.client.scrub("mail a@b.example.org from 10.1.2.3") == "mail <email> from <ip>"
