"""The analysis package's errors: each message says what was wrong and what to ask instead."""

from __future__ import annotations


class AnalysisError(Exception):
    """Base of the analysis package's errors."""


class UnknownAnalysis(AnalysisError):
    """No built-in analysis has this name."""


class UnknownApplication(AnalysisError):
    """The warehouse holds no session of this application."""


class UnknownAttribute(AnalysisError):
    """No session (or span, or event) in scope carries this attribute."""


class UnknownType(AnalysisError):
    """No event or span of this type is in scope."""


class EmptyRange(AnalysisError):
    """The time range and filters leave no session to analyse."""


class BadParameter(AnalysisError):
    """A parameter is missing or malformed."""
