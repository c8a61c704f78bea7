"""Common-factor analysis helpers."""

from __future__ import annotations

import pytest

from tallystick.analysis.common_factor import as_decoded


@pytest.mark.parametrize(
    ("text", "alike"),
    [
        pytest.param("fish", True, id="string"),
        pytest.param("true", True, id="boolean"),
        pytest.param("12", True, id="integer"),
        pytest.param("-3", True, id="negative"),
        pytest.param("007", True, id="leading-zero-is-no-number"),
        pytest.param("3.12.4", True, id="version"),
        pytest.param("1.5", True, id="float"),
        pytest.param("100.0", True, id="whole-float"),
        pytest.param("-0", False, id="minus-zero"),
        pytest.param("0.00001", False, id="small-float"),
        pytest.param("100000000000000000000.0", False, id="large-float"),
        pytest.param("24.10", False, id="trailing-zero"),
    ],
)
def test_typed_text_is_trusted_only_where_python_writes_the_number_alike(text: str, alike: bool) -> None:
    """A typed text is used as is unless it could be a number Python writes otherwise."""
    assert as_decoded(text) is alike
