"""The built-in analyses by name, with their parameters, so the CLI and the dashboard can list them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tallystick.analysis.errors import UnknownAnalysis


@dataclass(frozen=True)
class Param:
    """One parameter of an analysis (besides the scope: app, range, versions, filters)."""

    name: str
    help: str
    kind: str = "str"  # str | int | float | list
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str
    question: str
    module: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    doc: str = ""

    def runner(self) -> Callable[..., Any]:
        """The module's ``run(bound, params)``, imported on first use."""
        return importlib.import_module(f"tallystick.analysis.{self.module}").run  # type: ignore[no-any-return]

    def headline(self, summary: dict[str, Any]) -> str:
        """The answer in one or two sentences, from a report's summary (the module's ``headline``)."""
        module = importlib.import_module(f"tallystick.analysis.{self.module}")
        return str(module.headline(summary))


_EVENT = Param("event", "event type that marks the outcome, e.g. UnknownCommand")
_EXIT = Param("exit_code", "exit code that marks the outcome (instead of an event)", "int")

ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "adoption",
        "Version adoption",
        "How long does it take for new versions to be adopted?",
        "adoption",
        doc="docs/analyses/adoption.md",
    ),
    Analysis(
        "nudges",
        "Update-nudge response",
        "How many times does a user see an update nudge before they update?",
        "nudges",
        (Param("event", "the nudge event type", default="UpdateNudgeShown"),),
        doc="docs/analyses/nudges.md",
    ),
    Analysis(
        "spans",
        "Span comparison by attribute",
        "Does an attribute (e.g. BuildKit) change how long an operation takes?",
        "spans",
        (
            Param("span", "span type, e.g. BuildImage", required=True),
            Param("attribute", "attribute to split by, e.g. buildKit", required=True),
            Param("baseline", "value the others are compared with (default: false, else the commonest)"),
            Param("confidence", "interval confidence", "float", default=0.95),
        ),
        doc="docs/analyses/spans.md",
    ),
    Analysis(
        "event-rate",
        "Event rate",
        "What share of sessions have an event (or exit code), over time and by version?",
        "event_rate",
        (_EVENT, _EXIT),
        doc="docs/analyses/event-rate.md",
    ),
    Analysis(
        "breakdown",
        "Breakdown",
        "What share of users and sessions has each value of an attribute (e.g. shell)?",
        "breakdown",
        (
            Param("attribute", "attribute to break down by, e.g. shell", required=True),
            Param("every", "period of the time series", default="day", choices=("day", "week", "month")),
        ),
        doc="docs/analyses/breakdown.md",
    ),
    Analysis(
        "feature-impact",
        "Feature impact",
        "Do sessions using a feature have an outcome less (or more) often?",
        "feature_impact",
        (
            Param("feature", "feature attribute, e.g. tabCompletion", required=True),
            Param("value", "the feature attribute's value meaning 'in use'", default="true"),
            Param("outcome", "event type of the outcome, e.g. UnknownCommand"),
            _EXIT,
            Param("confidence", "interval confidence", "float", default=0.95),
        ),
        doc="docs/analyses/feature-impact.md",
    ),
    Analysis(
        "common-factor",
        "Common factor of an error",
        "Which attribute values are over-represented among sessions with an error?",
        "common_factor",
        (
            _EVENT,
            _EXIT,
            Param("alpha", "false discovery rate for 'significant'", "float", default=0.05),
            Param("exclude", "attribute to leave out (repeatable)", "list"),
        ),
        doc="docs/analyses/common-factor.md",
    ),
    Analysis(
        "distribution",
        "Distribution",
        "How is a numeric attribute (e.g. project size) distributed?",
        "distribution",
        (
            Param("attribute", "numeric attribute, e.g. projectTasks", required=True),
            Param("per", "count each session or each user once", default="session", choices=("session", "user")),
        ),
        doc="docs/analyses/distribution.md",
    ),
    Analysis(
        "timing",
        "Timing per version",
        "How long do operations take per version, and did a version get slower?",
        "timing",
        (
            Param("span", "only this span type"),
            Param("threshold", "slowdown that counts as a regression", "float", default=0.10),
        ),
        doc="docs/analyses/timing.md",
    ),
    Analysis(
        "completeness",
        "Completeness",
        "How complete are the most recent days?",
        "completeness",
        doc="docs/analyses/completeness.md",
    ),
)

BY_NAME = {a.name: a for a in ANALYSES}


def get(name: str) -> Analysis:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownAnalysis(f"no analysis called {name!r}; there are: {', '.join(BY_NAME)}") from None
