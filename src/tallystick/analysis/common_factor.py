"""Common factor of an error: which attribute values are over-represented among sessions with it?

A case–control comparison: sessions with the outcome (cases) against sessions
without (controls), each side sampled to at most ``SAMPLE`` sessions by the last
hex digits of the session ID (the same sessions on every engine). For every
attribute value: its **support** (share of cases that have it), its **lift**
(P(outcome | value) / P(outcome), the sampling undone), and a 2×2 test of
association (chi-square with Yates' correction, Fisher's exact test for small
counts) with Benjamini–Hochberg q-values over every value tested. Ranked by lift
among values significant at ``--alpha`` and over-represented.

On DuckDB the sample is read from ``sessions_typed`` (``warehouse/rollup.py``: one text
column per attribute) when it is fresh and has a column for every attribute: DuckDB
reads a JSON column for a sample of rows more slowly than all of it. Its texts are
what decoding the JSON gives, except a JSON number DuckDB writes otherwise than Python
(``0.00001`` for ``1e-05``); as a string and a number then cannot be told apart, a
sample with a number-like text not written as Python writes numbers (``24.10``) is read
from the JSON instead.

Values that are (almost) the outcome itself — in ≥ 95 % of cases and with the
outcome ≥ 95 % of the time, like the exit code an error sets — are listed apart as
symptoms, not causes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
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
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
Sampled = list[tuple[str, str | None]]  # a sampled session's attributes, as (name, text)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _as_decoded(text: str) -> bool:
    """Whether a text from ``sessions_typed`` is surely what ``_text`` gives for the decoded JSON value: yes
    unless it looks like a number written otherwise than Python writes that number (then, had the JSON
    value been a number, ``_text`` would differ)."""
    if not _NUMBER.fullmatch(text):
        return True
    if text.lstrip("-").isdigit():
        return str(int(text)) == text
    return repr(float(text)) == text


def _sample_typed(b: Bound, what: Outcome, sample: str) -> list[tuple[int, Sampled]] | None:
    """The sampled sessions' (outcome, attributes) from ``sessions_typed``, or None if it cannot answer alike."""
    names = b.typed_every()
    if names is None or not b.typed(*what.attributes):
        return None
    columns = "".join(f", {b.typed_attr(n)}" for n in names)
    rows = b.rows(
        f'SELECT * EXCLUDE (id) FROM (SELECT "sessionId" AS id, CASE WHEN {what.on(True)} THEN 1 ELSE 0 END AS h'
        f"{columns} FROM sessions_typed WHERE {b.sessions_where(typed=True)}) t WHERE {sample}"
    )
    sampled = [(int(r[0]), list(zip(names, r[1:], strict=True))) for r in rows]
    texts = {text for _, attrs in sampled for _, text in attrs if text is not None}
    return sampled if all(_as_decoded(t) for t in texts) else None


def _sample_json(b: Bound, hit: str, where: str, sample: str) -> Iterator[tuple[int, Sampled]]:
    """The sampled sessions' (outcome, attributes) from the JSON in ``sessions``."""
    rows = b.rows(
        f'SELECT a, h FROM (SELECT attributes AS a, "sessionId" AS id, {hit} AS h FROM sessions WHERE {where}) t '
        f"WHERE {sample}"
    )
    for attrs, h in rows:
        decoded = _decode(attrs) if isinstance(attrs, str | bytes) else attrs or {}
        yield int(h), [(str(key), v if isinstance(v, str) else _text(v)) for key, v in decoded.items()]


def _totals(b: Bound, what: Outcome) -> tuple[int, int]:
    """Sessions in scope, and those with the outcome."""
    typed = b.reads_typed(*what.attributes)  # filters on sessions_typed's columns, not the JSON (warehouse/rollup.py)
    source = f"{b.sessions_table(typed)} WHERE {b.sessions_where(typed=typed)}"
    if what.count_sql is not None:
        total, cases = b.rows(f"SELECT (SELECT count(*) FROM {source}), ({what.count_sql})")[0]
    else:
        total, cases = b.rows(f"SELECT count(*), sum(CASE WHEN {what.on(typed)} THEN 1 ELSE 0 END) FROM {source}")[0]
    return int(total), int(cases or 0)


def run(b: Bound, params: dict[str, Any]) -> Report:
    what = outcome(b, params)
    alpha = float(params.get("alpha") or 0.05)
    exclude = set(params.get("exclude") or ())
    hit = f"CASE WHEN {what.condition} THEN 1 ELSE 0 END"
    where = b.sessions_where()
    total, cases = _totals(b, what)
    if not cases:
        what.none_found(b)
    if not total:
        raise b.empty()
    if not cases or cases == total:
        raise b.empty(f"sessions {'with' if not cases else 'without'} {what.label} to compare")
    d = b.dialect
    sample_cases = d.sample("id", SAMPLE / cases)
    sample_controls = d.sample("id", SAMPLE / (total - cases))
    # The wider of the two samples first, though implied: DuckDB then drops the other sessions before it
    # looks up their outcome (0.39 -> 0.32 s on 10 million sessions).
    wider = d.sample("id", SAMPLE / min(cases, total - cases))
    sample = f"{wider} AND ((h = 1 AND {sample_cases}) OR (h = 0 AND {sample_controls}))"
    sampled = _sample_typed(b, what, sample)
    flat: Counter[tuple[str, str | None, int]] = Counter()
    n_cases = n_controls = 0
    for h, attrs in sampled if sampled is not None else _sample_json(b, hit, where, sample):
        n_cases += h
        n_controls += 1 - h
        flat.update((key, text, h) for key, text in attrs)
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
