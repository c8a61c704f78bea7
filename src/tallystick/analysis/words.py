"""Numbers for people: the headlines' and the terminal's units and formats (never scientific notation)."""

from __future__ import annotations

import math


def count(n: float) -> str:
    """``12,345``."""
    return f"{n:,.0f}"


def percent(share: float) -> str:
    """A share as a percentage with as many digits as it needs: ``31 %``, ``2.6 %``, ``0.42 %``."""
    value = share * 100
    if value == 0:
        return "0 %"
    if abs(value) >= 10:
        return f"{value:,.0f} %"
    if abs(value) >= 1:
        return f"{value:.1f}".removesuffix(".0") + " %"
    return f"{value:.2g} %"


def duration(ms: float) -> str:
    """``850 ms``, ``4.2 s``, ``20 s``, ``3.5 min``, ``2.1 h``."""
    if not math.isfinite(ms):
        return "—"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 10_000:
        return f"{ms / 1000:.1f} s"
    if ms < 60_000:
        return f"{ms / 1000:.0f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:,.1f} h"


def times(ratio: float) -> str:
    """A ratio as ``2.0×``."""
    return f"{ratio:.2g}×" if ratio < 10 else f"{ratio:,.0f}×"


def change(relative: float) -> str:
    """A relative change in words: ``31 % lower``, ``12 % higher``."""
    return f"{percent(abs(relative))} {'lower' if relative < 0 else 'higher'}"


def number(value: float) -> str:
    """A plain number for a table: thousands separators, a few significant digits, no exponent."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.4g}"
    digits = max(0, -math.floor(math.log10(abs(value)))) + 3
    return f"{value:.{min(digits, 12)}f}".rstrip("0").rstrip(".")


def often(relative: float) -> str:
    """A relative change of a rate in words: ``31 % less often``, ``12 % more often``."""
    return f"{percent(abs(relative))} {'less' if relative < 0 else 'more'} often"


def often_range(lo: float, hi: float) -> str:
    """An interval of relative changes in words: ``10 % to 44 % less often``, ``5 % less to 8 % more often``."""
    if lo >= 0 or hi <= 0:
        near, far = sorted((lo, hi), key=abs)
        return f"{percent(abs(near))} to {often(far)}"
    return f"{percent(abs(lo))} less to {often(hi)}"


def still_arriving(days: int) -> str:
    """``The last day is still arriving.``, ``The last 3 days are still arriving.``"""
    return "The last day is still arriving." if days == 1 else f"The last {days} days are still arriving."


def value(text: str, limit: int = 40) -> str:
    """An attribute value for a sentence: its first line, at most ``limit`` characters (a stack trace as a
    value would fill the screen)."""
    line = text.split("\n", 1)[0].strip()
    if len(line) > limit or line != text.strip():
        return line[: limit - 1].rstrip() + "…"
    return line


def label(key: str, text: str, limit: int = 40) -> str:
    """``attribute=value`` with the value as ``value`` gives it."""
    return f"{key}={value(text, limit)}"


def clock_skewed(sessions: int) -> str:
    """What is left out of the range because the client's clock was wrong (``scope.bind``); empty for none."""
    if not sessions:
        return ""
    return (
        f"Not counted: {count(sessions)} session{'s' if sessions != 1 else ''} dated by a clock set wrong "
        "(starting over 31 days before they arrived, or over a day after)."
    )
