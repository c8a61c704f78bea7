"""Common factor of an error: which attribute values are over-represented among sessions with it?

A case–control comparison: sessions with the outcome (cases) against sessions
without (controls), each side sampled to at most ``SAMPLE`` sessions by the last
hex digits of the session ID (the same sessions on every engine). For every
attribute value: its **support** (share of cases that have it), its **lift**
(P(outcome | value) / P(outcome), the sampling undone), and a 2×2 test of
association (chi-square with Yates' correction, Fisher's exact test for small
counts) with Benjamini–Hochberg q-values over every value tested. Ranked by lift
among values significant at ``--alpha`` and over-represented.

Values that are (almost) the outcome itself — in ≥ 95 % of cases and with the
outcome ≥ 95 % of the time, like the exit code an error sets — are listed apart as
symptoms, not causes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import msgspec

from tallystick.analysis.outcome import Outcome, outcome
from tallystick.analysis.report import Report, Table, bar_chart
from tallystick.analysis.scope import Bound
from tallystick.analysis.stats import association, benjamini_hochberg

SAMPLE = 10_000
MAX_VALUES_PER_ATTRIBUTE = 50
MIN_CASES = 5
SYMPTOM = 0.95


_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _totals(b: Bound, what: Outcome, hit: str, where: str) -> tuple[int, int]:
    """Sessions in scope, and those with the outcome."""
    if what.count_sql is not None:
        total, cases = b.rows(f"SELECT (SELECT count(*) FROM sessions WHERE {where}), ({what.count_sql})")[0]
    else:
        total, cases = b.rows(f"SELECT count(*), sum({hit}) FROM sessions WHERE {where}")[0]
    return int(total), int(cases or 0)


def run(b: Bound, params: dict[str, Any]) -> Report:
    what = outcome(b, params)
    alpha = float(params.get("alpha") or 0.05)
    exclude = set(params.get("exclude") or ())
    hit = f"CASE WHEN {what.condition} THEN 1 ELSE 0 END"
    where = b.sessions_where()
    total, cases = _totals(b, what, hit, where)
    if not total:
        raise b.empty()
    if not cases or cases == total:
        raise b.empty(f"sessions {'with' if not cases else 'without'} {what.label} to compare")
    d = b.dialect
    sample_cases = d.sample("id", SAMPLE / cases)
    sample_controls = d.sample("id", SAMPLE / (total - cases))
    rows = b.rows(
        f'SELECT a, h FROM (SELECT attributes AS a, "sessionId" AS id, {hit} AS h FROM sessions WHERE {where}) t '
        f"WHERE (h = 1 AND {sample_cases}) OR (h = 0 AND {sample_controls})"
    )
    flat: Counter[tuple[str, str | None, int]] = Counter()
    n_cases = n_controls = 0
    for attrs, hit_ in rows:
        h = int(hit_)
        n_cases += h
        n_controls += 1 - h
        decoded = _decode(attrs) if isinstance(attrs, str | bytes) else attrs or {}
        flat.update((str(key), v if isinstance(v, str) else _text(v), h) for key, v in decoded.items())
    counts: dict[str, Counter[tuple[str, int]]] = {}
    for (key, text, h), n in flat.items():
        if text is not None and key not in exclude:
            counts.setdefault(key, Counter())[(text, h)] = n
    rate = cases / total
    case_weight = cases / n_cases if n_cases else 0.0
    control_weight = (total - cases) / n_controls if n_controls else 0.0
    tested: list[list[Any]] = []
    for key, c in sorted(counts.items()):
        values = {v for v, _ in c}
        if len(values) > MAX_VALUES_PER_ATTRIBUTE:
            continue
        for v in sorted(values):
            a, bb = c[(v, 1)], c[(v, 0)]
            if a < MIN_CASES:
                continue
            p, test = association(a, bb, n_cases - a, n_controls - bb)
            est_cases, est_controls = a * case_weight, bb * control_weight
            p_given = est_cases / (est_cases + est_controls)
            tested.append([key, v, round(a / n_cases, 4), round(p_given, 5), round(p_given / rate, 3), p, test])
    q = benjamini_hochberg([t[5] for t in tested])
    for t, qv in zip(tested, q, strict=True):
        t.append(qv)
    symptoms = [t for t in tested if t[2] >= SYMPTOM and t[3] >= SYMPTOM]
    candidates = [t for t in tested if t not in symptoms]
    candidates.sort(key=lambda t: (not (t[7] < alpha and t[4] > 1), -t[4], t[7]))
    columns = ["attribute", "value", "support", "outcome_rate", "lift", "p_value", "test", "q_value", "significant"]
    ranked = [[*t, bool(t[7] < alpha and t[4] > 1)] for t in candidates]
    table = Table("factors", columns, ranked)
    top = ranked[0] if ranked and ranked[0][8] else None
    return Report(
        analysis="common-factor",
        title=f"What do sessions with {what.label} have in common?",
        scope=b.scope.describe() | {"since": b.since.isoformat(), "until": b.until.isoformat()},
        summary={
            "outcome": what.label,
            "sessions": total,
            "with_outcome": cases,
            "rate": rate,
            "cases_sampled": n_cases,
            "controls_sampled": n_controls,
            "values_tested": len(tested),
            "top": dict(zip(columns, top, strict=True)) if top else None,
            "significant": [f"{t[0]}={t[1]}" for t in ranked if t[8]],
            "symptoms": [f"{t[0]}={t[1]}" for t in symptoms],
        },
        tables=[table, Table("symptoms", columns[:-1], symptoms)],
        notes=[
            "support = share of sessions with the outcome that have the value; lift = how many times likelier the "
            "outcome is with the value than overall",
            f"significant: q < {alpha} after Benjamini–Hochberg over {len(tested)} values, and lift above 1",
            "sessions of one user share their attributes: a value common to a few heavy users can look significant; "
            "check the users column with `report breakdown --where ...`",
        ],
        chart=bar_chart(
            Table("top", columns, ranked[:10]), "value", "lift", title=f"Lift of attribute values for {what.label}"
        ),
    )
