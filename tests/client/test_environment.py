"""Environment attributes: useful, and nothing that identifies a person or a machine."""

from __future__ import annotations

import getpass
import io
import json
import os
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallystick.client._session import architecture, ci_system, describe


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"GITHUB_ACTIONS": "true", "CI": "true"}, "GitHub Actions"),
        ({"GITLAB_CI": "true"}, "GitLab CI"),
        ({"CIRCLECI": "true"}, "CircleCI"),
        ({"JENKINS_URL": "http://j"}, "Jenkins"),
        ({"TF_BUILD": "True"}, "Azure Pipelines"),
        ({"BUILDKITE": "true"}, "Buildkite"),
        ({"TEAMCITY_VERSION": "2024.1"}, "TeamCity"),
        ({"BITBUCKET_BUILD_NUMBER": "7"}, "Bitbucket Pipelines"),
        ({"CODEBUILD_BUILD_ID": "x"}, "AWS CodeBuild"),
        ({"CI": "true"}, "unknown"),
        ({"CI": "false"}, None),
        ({"CI": "0", "GITHUB_ACTIONS": ""}, None),
    ],
    ids=[
        "none",
        "github",
        "gitlab",
        "circle",
        "jenkins",
        "azure",
        "buildkite",
        "teamcity",
        "bitbucket",
        "codebuild",
        "generic",
        "ci-false",
        "ci-zero",
    ],
)
def test_ci_systems_are_recognised(environ: dict[str, str], expected: str | None) -> None:
    """Each common CI system is named by its own variables; CI=false is not CI."""
    assert ci_system(environ) == expected


def test_attributes_carry_nothing_identifying() -> None:
    """No host name, user name, home or working directory appears in any value."""
    home = os.path.expanduser("~")
    environ = {
        "SHELL": "/home/jdoe42/.local/bin/zsh",
        "TERM": "xterm-256color",
        "HOME": "/home/jdoe42",
        "USER": "jdoe42",
    }
    attributes = describe(environ, io.StringIO(), io.StringIO())
    text = json.dumps(attributes)
    for secret in {socket.gethostname(), getpass.getuser(), "jdoe42", "/home", home, os.getcwd()}:
        if len(secret) > 2:
            assert secret not in text, secret
    assert attributes["shell"] == "zsh"
    assert attributes["terminal"] == "xterm-256color"
    assert attributes["interactive"] is False
    assert attributes["ci"] is False and attributes["ciSystem"] is None
    assert attributes["pythonImplementation"] == "cpython"


def test_container_from_kubernetes_variable() -> None:
    """A Kubernetes pod counts as a container."""
    attributes = describe({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, io.StringIO(), io.StringIO())
    assert attributes["container"] is True and attributes["containerSystem"] == "kubernetes"


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        pytest.param("AMD64", "x86_64", id="windows-amd64"),
        pytest.param("x86_64", "x86_64", id="linux-x86_64"),
        pytest.param("aarch64", "arm64", id="linux-aarch64"),
        pytest.param("ARM64", "arm64", id="windows-arm64"),
        pytest.param("arm64", "arm64", id="macos-arm64"),
        pytest.param("riscv64", "riscv64", id="other-kept"),
    ],
)
def test_architectures_have_one_name_each(machine: str, expected: str) -> None:
    """What each OS calls an architecture becomes one name, so a breakdown lists x86_64 once, not beside AMD64."""
    assert architecture(machine) == expected
    assert describe(os.environ, io.StringIO(), io.StringIO())["osArchitecture"] == architecture(os.uname().machine)


_ENVIRONMENT_KEYS = ("SHELL", "TERM", "TERM_PROGRAM", "WT_SESSION", "container", "CI", "GITHUB_ACTIONS", "JENKINS_URL")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(_ENVIRONMENT_KEYS), st.text(max_size=300)))
def test_environment_attributes_are_valid_by_construction(environ: dict[str, str]) -> None:
    """Whatever the variables hold, describe's attributes pass the contract's checks unchanged.

    The session takes them without checking each again (Session.set_environment), so this is what keeps
    a recording run's session valid.
    """
    from tallystick.client._session import clean_attributes
    from tallystick.schema import _rules

    attributes = describe(environ, io.StringIO(), io.StringIO())
    counts: list[str] = []
    assert clean_attributes(attributes, strict=False, count=lambda reason, n: counts.append(reason)) == attributes
    assert counts == []
    assert all(_rules.attribute_value_problem(value, 256) is None for value in attributes.values())


@given(st.text(alphabet=st.sampled_from("az09AZ._-+/ é\\:\n~$"), max_size=60), st.integers(0, 50))
def test_tokens_keep_exactly_the_harmless_characters(value: str, limit: int) -> None:
    """_token keeps ASCII letters, digits and ._-+ in order, cut to the limit (its fast path included)."""
    from tallystick.client._session import _token

    assert _token(value, limit) == "".join(c for c in value if c.isascii() and (c.isalnum() or c in "._-+"))[:limit]
