"""Built-in analyses: the questions a maintainer asks of their telemetry, answered as plain data.

from tallystick.analysis import Scope, run
report = run(warehouse, "feature-impact", Scope("demo"), feature="tabCompletion", outcome="UnknownCommand")
report.summary["relative_difference"]     # -0.31
"""

from __future__ import annotations

from typing import Any

from tallystick.analysis.errors import (
    AnalysisError,
    BadParameter,
    EmptyRange,
    UnknownAnalysis,
    UnknownApplication,
    UnknownAttribute,
    UnknownType,
)
from tallystick.analysis.registry import ANALYSES, Analysis, Param, get
from tallystick.analysis.report import Report, Table
from tallystick.analysis.scope import Filter, Scope, bind
from tallystick.warehouse.base import Queryable


def run(warehouse: Queryable, name: str, scope: Scope, **params: Any) -> Report:
    """Run the analysis ``name`` on ``scope``; raises an AnalysisError saying what to change."""
    analysis = get(name)
    known = {p.name for p in analysis.params}
    unknown = set(params) - known
    if unknown:
        raise BadParameter(
            f"{name} takes no parameter {', '.join(sorted(unknown))}; it takes: {', '.join(sorted(known)) or 'none'}"
        )
    values = {p.name: params.get(p.name, p.default) for p in analysis.params}
    missing = [p.name for p in analysis.params if p.required and values[p.name] in (None, "")]
    if missing:
        raise BadParameter(f"{name} needs --{' --'.join(m.replace('_', '-') for m in missing)}")
    for p in analysis.params:
        if p.choices and values[p.name] is not None and values[p.name] not in p.choices:
            raise BadParameter(f"--{p.name.replace('_', '-')} must be one of {', '.join(p.choices)}")
    report: Report = analysis.runner()(bind(warehouse, scope), values)
    if not report.headline:
        report.headline = analysis.headline(report.summary)
    return report


__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalysisError",
    "BadParameter",
    "EmptyRange",
    "Filter",
    "Param",
    "Report",
    "Scope",
    "Table",
    "UnknownAnalysis",
    "UnknownApplication",
    "UnknownAttribute",
    "UnknownType",
    "bind",
    "get",
    "run",
]
