"""The standard-library rules the client shares with the server."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallystick.schema import _rules


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("café", True, id="unicode"),
        pytest.param(os.fsdecode(b"caf\xe9.txt"), False, id="non-utf8-file-name"),
        pytest.param("x" * _rules.ATTRIBUTE_VALUE_MAX_LENGTH, True, id="at-limit"),
        pytest.param("x" * (_rules.ATTRIBUTE_VALUE_MAX_LENGTH + 1), False, id="over-limit"),
        pytest.param(float("nan"), False, id="nan"),
        pytest.param(float("inf"), False, id="inf"),
        pytest.param(2**63, False, id="int-over-64-bit"),
        pytest.param(-(2**63), True, id="int-min"),
        pytest.param(None, True, id="null"),
        pytest.param(True, True, id="bool"),
        pytest.param([1], False, id="list"),
    ],
)
def test_attribute_values(value: object, ok: bool) -> None:
    """attribute_value_problem accepts exactly what the wire contract accepts."""
    assert (_rules.attribute_value_problem(value) is None) is ok


def test_importing_rules_imports_no_regex_engine() -> None:
    """The client imports _rules on every run; re is imported only once a check needs it."""
    import subprocess
    import sys

    code = "import sys, tallystick.schema._rules; print('re' in sys.modules, 'math' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "value",
    [
        "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14",
        "0b8f6a6e-3c1d-4e7a-ca51-2f0c5d8e9b14",
        "0b8f6a6e-3c1d-3e7a-9a51-2f0c5d8e9b14",
        "0B8F6A6E-3C1D-4E7A-9A51-2F0C5D8E9B14",
        "0b8f6a6e3c1d4e7a9a512f0c5d8e9b14",
        "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14\n",
        "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b1",
        "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b1g",
        "0b8f6a6e_3c1d-4e7a-9a51-2f0c5d8e9b14",
        "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b1٣",
        "",
    ],
)
def test_uuid_check_agrees_with_the_pattern(value: str) -> None:
    """is_uuid4, which the client runs on every recorded run, says what UUID4_PATTERN says."""
    import re

    assert _rules.is_uuid4(value) is bool(re.match(_rules.UUID4_PATTERN, value))


@given(
    st.one_of(
        st.uuids().map(str),
        st.tuples(st.uuids(version=4).map(str), st.integers(0, 35), st.sampled_from("0489abfgA-_")).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
        ),
    )
)
def test_uuid_check_agrees_with_the_pattern_on_near_misses(value: str) -> None:
    """One character changed anywhere in a version-4 UUID: is_uuid4 and the pattern still agree."""
    import re

    assert _rules.is_uuid4(value) is bool(re.match(_rules.UUID4_PATTERN, value))


@pytest.mark.parametrize(
    "name",
    [
        *("a", "shellName", "A1", "x" * 64, "x" * 65, "x" * 128, "x" * 129, "", "1a", "a-b", "a b", "é", "a\n"),
        *("ａ", "a_b", "٣", "Ab9", "some-event", "cli.run", "docker:pull", "_x", "-a", ".a", ":a", "a/b", "a-"),
    ],
)
def test_name_checks_agree_with_the_patterns(name: str) -> None:
    """The string-method checks the client uses say exactly what the contract's patterns say."""
    import re

    def by_pattern(pattern: str, value: str, limit: int) -> bool:
        return len(value) <= limit and re.search(pattern, value) is not None

    assert _rules.is_attribute_name(name) == by_pattern(_rules.ATTRIBUTE_NAME_PATTERN, name, _rules.NAME_MAX_LENGTH)
    assert _rules.is_type_name(name) == by_pattern(_rules.TYPE_NAME_PATTERN, name, _rules.TYPE_NAME_MAX_LENGTH)
    app = name.lower()
    app_limit = _rules.APPLICATION_ID_MAX_LENGTH
    assert _rules.is_application_id(app) == by_pattern(_rules.APPLICATION_ID_PATTERN, app, app_limit)


@pytest.mark.parametrize("app", ["demo", "my-tool", "a.b_c", "0x", "a" * 64, "a" * 65, "-a", ".a", "My", "a/b", ""])
def test_application_id_check_agrees_with_the_pattern(app: str) -> None:
    """is_application_id matches APPLICATION_ID_PATTERN."""
    import re

    assert _rules.is_application_id(app) == (re.search(_rules.APPLICATION_ID_PATTERN, app) is not None)


def test_erasure_commitment_is_bound_to_the_user_and_the_secret() -> None:
    """The commitment is hex SHA-256 over a domain tag, the user ID and the secret: any change changes it."""
    import hashlib
    import re

    user, other_user = "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14", "1b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14"
    secret, other_secret = "ab" * 32, "cd" * 32
    commitment = _rules.erasure_commitment(user, secret)
    assert re.match(_rules.ERASURE_COMMITMENT_PATTERN, commitment)
    assert commitment == hashlib.sha256(f"tallystick-erasure-v1\n{user}\n{secret}".encode()).hexdigest()
    assert commitment != _rules.erasure_commitment(other_user, secret)
    assert commitment != _rules.erasure_commitment(user, other_secret)
    assert _rules.is_erasure_secret(secret)
    for bad in ("AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, None, 12):
        assert not _rules.is_erasure_secret(bad)


@given(st.text(alphabet=st.sampled_from("az09AZ_.:-+ /é\n٣ａ"), max_size=70))
def test_character_class_checks_agree_with_the_patterns_on_any_text(value: str) -> None:
    """The strip-based checks (type names, application IDs, erasure secrets) say what the patterns say."""
    import re

    def by_pattern(pattern: str, limit: int) -> bool:
        return len(value) <= limit and re.search(pattern, value) is not None

    assert _rules.is_type_name(value) == by_pattern(_rules.TYPE_NAME_PATTERN, _rules.TYPE_NAME_MAX_LENGTH)
    assert _rules.is_application_id(value) == by_pattern(_rules.APPLICATION_ID_PATTERN, 64)
    hexish = (value.encode().hex() * 64)[:64]
    assert _rules.is_erasure_secret(hexish) == (re.search(_rules.ERASURE_SECRET_PATTERN, hexish) is not None)
    secret = (value * 64)[:64]
    assert _rules.is_erasure_secret(secret) == (re.search(_rules.ERASURE_SECRET_PATTERN, secret) is not None)
