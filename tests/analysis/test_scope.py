"""Analyses refuse clearly when asked about something that does not exist."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tallystick.analysis import (
    ANALYSES,
    BadParameter,
    EmptyRange,
    Filter,
    Scope,
    UnknownAnalysis,
    UnknownApplication,
    UnknownAttribute,
    UnknownType,
    run,
)
from tallystick.warehouse.base import Warehouse


@pytest.mark.parametrize(
    ("name", "scope", "params", "error", "message"),
    [
        pytest.param("adoption", Scope("nope"), {}, UnknownApplication, "applications there: demo", id="unknown-app"),
        pytest.param(
            "breakdown", Scope("demo"), {"attribute": "shel"}, UnknownAttribute, "attribute 'shel'", id="attribute"
        ),
        pytest.param(
            "adoption", Scope("demo", where=(Filter("colour", "red"),)), {}, UnknownAttribute, "'colour'", id="filter"
        ),
        pytest.param(
            "adoption", Scope("demo", since=date(2030, 1, 1)), {}, EmptyRange, "data runs from", id="future-range"
        ),
        pytest.param(
            "adoption",
            Scope("demo", since=date(2025, 3, 1), until=date(2025, 2, 1)),
            {},
            EmptyRange,
            "must not be before",
            id="reversed-range",
        ),
        pytest.param(
            "event-rate",
            Scope("demo", where=(Filter("shell", "tcsh"),)),
            {"event": "Error"},
            EmptyRange,
            "shell=tcsh",
            id="filter-matches-nothing",
        ),
        pytest.param("event-rate", Scope("demo"), {"event": "Typo"}, UnknownType, "UnknownCommand", id="event-type"),
        pytest.param(
            "event-rate",
            Scope("demo", where=(Filter("exitCode", "0"),)),
            {"event": "UnknownCommand"},
            UnknownType,
            "event types there: UpdateNudgeShown$",
            id="event-type-only-outside-the-filter",
        ),
        pytest.param(
            "timing",
            Scope("demo", where=(Filter("command", "test"),)),
            {"span": "BuildImage"},
            UnknownType,
            "span types there: LoadConfig, RunTask$",
            id="span-type-only-outside-the-filter",
        ),
        pytest.param("event-rate", Scope("demo"), {}, BadParameter, "--exit-code", id="no-outcome"),
        pytest.param("adoption", Scope("demo", versions=("9.9",)), {}, BadParameter, "versions there", id="version"),
        pytest.param("spans", Scope("demo"), {"span": "BuildImage"}, BadParameter, "--attribute", id="missing-param"),
        pytest.param(
            "spans",
            Scope("demo"),
            {"span": "BuildImage", "attribute": "0"},
            BadParameter,
            "not an attribute name",
            id="bad-attribute-name",
        ),
        pytest.param(
            "spans",
            Scope("demo"),
            {"span": "BuildImage", "attribute": "os", "confidence": 1},
            BadParameter,
            "between 0 and 1",
            id="confidence-1",
        ),
        pytest.param("timing", Scope("demo"), {"colour": 1}, BadParameter, "takes no parameter", id="extra-param"),
        pytest.param("nope", Scope("demo"), {}, UnknownAnalysis, "there are: adoption", id="analysis"),
    ],
)
def test_refuses_clearly(  # noqa: PLR0917 - the columns of one parametrized case
    duckdb_warehouse: Warehouse, name: str, scope: Scope, params: dict[str, Any], error: type, message: str
) -> None:
    """Each mistake raises its own error whose message says what there is instead."""
    with pytest.raises(error, match=message):
        run(duckdb_warehouse, name, scope, **params)


def test_filter_parse_rejects_malformed() -> None:
    """A filter must be ATTRIBUTE=VALUE."""
    assert Filter.parse("shell = fish") == Filter("shell", "fish")
    with pytest.raises(BadParameter, match="ATTRIBUTE=VALUE"):
        Filter.parse("shell")


def test_registry_lists_every_analysis_with_a_question_and_a_doc() -> None:
    """The registry names ten analyses, each with a question and an existing docs page."""
    from pathlib import Path

    root = Path(__file__).parents[2]
    assert len(ANALYSES) == 10
    for a in ANALYSES:
        assert a.question.endswith("?")
        assert (root / a.doc).is_file(), a.doc
