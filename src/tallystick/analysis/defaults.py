"""Sensible parameters for every analysis, read from the data: what ``tallystick report`` (no name) runs.

- an outcome: the commonest error-like event type (``…Error``, ``…Failed``), else the commonest non-zero
  ``exitCode`` (a tool instrumented as docs/instrument-your-tool.md says records its exit status), else
  the commonest event type with fewer events than half the sessions (one that comes with every run is
  no outcome), never ``UpdateNudgeShown`` (the nudges analysis's input, not an error);
- a span and an attribute to split it by: the commonest span type whose spans carry a yes/no
  attribute, else the commonest span type and a yes/no session attribute;
- a feature: the yes/no session attribute closest to an even split (a feature some use and some don't);
- a breakdown: the commonest text attribute with 2 to 12 values; a distribution: the commonest
  numeric attribute other than the exit code.

The client's own attributes (``telemetryMs``, ``telemetryQueueDepth``, ...: what telemetry costs) are
never picked: they answer no question about the tool.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from tallystick.analysis.scope import Bound

SAMPLE = 2000
NUDGE = "UpdateNudgeShown"
CLIENT_PREFIX = "telemetry"  # the client's own attributes: telemetryMs, telemetryDrops..., telemetryUpload...
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _decoded(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        try:
            return _decode(value)
        except msgspec.DecodeError:
            return {}
    return dict(value) if isinstance(value, dict) else {}


def _kinds(rows: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str], Counter[str], dict[str, Counter[str]]]:
    """Counts of yes/no, text and numeric attributes in ``rows``, and each attribute's values as text."""
    flags: Counter[str] = Counter()
    texts: Counter[str] = Counter()
    numbers: Counter[str] = Counter()
    values: dict[str, Counter[str]] = {}
    for attrs in rows:
        for key, value in attrs.items():
            if key.startswith(CLIENT_PREFIX):
                continue
            if isinstance(value, bool):
                flags[key] += 1
            elif isinstance(value, str):
                texts[key] += 1
            elif isinstance(value, int | float):
                numbers[key] += 1
            else:
                continue
            values.setdefault(key, Counter())[str(value).lower() if isinstance(value, bool) else str(value)] += 1
    return flags, texts, numbers, values


def _commonest(b: Bound, table: str, *, error_like: bool = False, below: int | None = None) -> str | None:
    """The commonest type in ``table``: error-like only, or with fewer than ``below`` rows (an event that
    comes with every session is no outcome to compare), never the update nudge."""
    rows = b.rows(
        f'SELECT "type", count(*) FROM {table} WHERE "applicationId" = {b.dialect.literal(b.scope.app)} GROUP BY "type"'
    )
    ranked = sorted((r for r in rows if r[0] != NUDGE), key=lambda r: (-int(r[1]), str(r[0])))
    if error_like:
        ranked = [r for r in ranked if str(r[0]).endswith(("Error", "Failed", "Exception"))]
    if below is not None:
        ranked = [r for r in ranked if int(r[1]) < below]
    return str(ranked[0][0]) if ranked else None


def _failing_exit_code(values: dict[str, Counter[str]]) -> int | None:
    """The commonest non-zero ``exitCode`` among the sampled sessions, if any."""
    codes = [(n, code) for code, n in values.get("exitCode", Counter()).items() if code.lstrip("-").isdigit()]
    failing = sorted((-n, int(code)) for n, code in codes if int(code) != 0)
    return failing[0][1] if failing else None


def parameters(b: Bound) -> dict[str, dict[str, Any]]:
    """Parameters per analysis name; an analysis missing from the answer has nothing sensible to run on."""
    app = b.dialect.literal(b.scope.app)
    sessions = [
        _decoded(r[0]) for r in b.rows(f'SELECT attributes FROM sessions WHERE "applicationId" = {app} LIMIT {SAMPLE}')
    ]
    flags, texts, numbers, values = _kinds(sessions)
    out: dict[str, dict[str, Any]] = {"adoption": {}, "completeness": {}}
    if b.rows(f'SELECT count(*) FROM events WHERE "applicationId" = {app} AND "type" = \'UpdateNudgeShown\'')[0][0]:
        out["nudges"] = {}
    total = int(b.rows(f'SELECT count(*) FROM sessions WHERE "applicationId" = {app}')[0][0])
    event = _commonest(b, "events", error_like=True)
    exit_code = None if event else _failing_exit_code(values)
    if not event and exit_code is None:
        event = _commonest(b, "events", below=total // 2)
    even = [
        (abs(values[k]["true"] / (values[k]["true"] + values[k]["false"]) - 0.5), k)
        for k in flags
        if values[k]["true"] and values[k]["false"]
    ]
    if event:
        out["event-rate"] = {"event": event}
        out["common-factor"] = {"event": event}
        if even:
            out["feature-impact"] = {"feature": min(even)[1], "outcome": event}
    elif exit_code is not None:
        out["event-rate"] = {"exit_code": exit_code}
        out["common-factor"] = {"exit_code": exit_code}
        if even:
            out["feature-impact"] = {"feature": min(even)[1], "exit_code": exit_code}
    spans = b.rows(f'SELECT "type", count(*) FROM spans WHERE "applicationId" = {app} GROUP BY "type"')
    if spans:
        out["timing"] = {}
    for span, _ in sorted(spans, key=lambda r: (-int(r[1]), str(r[0]))):
        own = [
            _decoded(r[0])
            for r in b.rows(
                f'SELECT attributes FROM spans WHERE "applicationId" = {app} AND "type" = '
                f"{b.dialect.literal(str(span))} LIMIT {SAMPLE}"
            )
        ]
        span_flags, _, _, span_values = _kinds(own)
        two_sided = [k for k in span_flags if len(span_values[k]) == 2]
        if two_sided:
            out["spans"] = {"span": str(span), "attribute": sorted(two_sided)[0]}
            break
    if "spans" not in out and spans and even:
        commonest = sorted(spans, key=lambda r: (-int(r[1]), str(r[0])))[0][0]
        out["spans"] = {"span": str(commonest), "attribute": min(even)[1]}
    breakdown = [k for k, _ in sorted(texts.items(), key=lambda kv: (-kv[1], kv[0])) if 2 <= len(values[k]) <= 12]
    if breakdown:
        out["breakdown"] = {"attribute": breakdown[0]}
    numeric = [k for k, _ in sorted(numbers.items(), key=lambda kv: (-kv[1], kv[0])) if k != "exitCode"]
    if numeric:
        out["distribution"] = {"attribute": numeric[0]}
    return out
