"""CSV cells that a spreadsheet shows as text and never runs as a formula.

Values in the warehouse come from clients, so any of them may be a payload such as
``=HYPERLINK(...)``. Text starting with ``= + - @``, a tab or a carriage return gets
a leading ``'`` (OWASP's advice against CSV injection); numbers, negative ones
included, stay numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [spreadsheet_safe(v) for v in values]
