"""One page per built-in analysis (``tallystick.analysis``'s registry): its chart, summary and how to read it.

Analyses run on the read side of the warehouse interface (``Queryable``), the dashboard's
sandboxed one, so they obey the same rules as the SQL page, on every engine.
A required parameter the URL leaves open is filled from the data (the commonest span
type, a yes/no attribute for a feature, a numeric one for a distribution), so every
page shows a picture on first visit; the form changes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tallystick.analysis import ANALYSES, Analysis, AnalysisError, Filter, Report, Scope, bind, get, run
from tallystick.analysis.defaults import parameters
from tallystick.dashboard.errors import BadQuery
from tallystick.dashboard.reader import Connection


def listing() -> tuple[Analysis, ...]:
    return ANALYSES


def find(name: str) -> Analysis | None:
    try:
        return get(name)
    except AnalysisError:
        return None


@dataclass
class Outcome:
    """What an analysis page shows: the report, or why there is none; the parameters used."""

    analysis: Analysis
    scope: Scope | None
    params: dict[str, str]
    report: Report | None = None
    problem: str = ""
    attributes: list[str] = field(default_factory=list)


def _kinds(con: Connection, app: str) -> dict[str, list[str]]:
    """Attribute names of ``app``'s sessions by JSON type, commonest first."""
    rows = con.query(con.sql.attribute_kinds('"applicationId" = ?'), [app]).rows
    kinds: dict[str, list[str]] = {}
    for k, t, _ in rows:
        kinds.setdefault(str(t), []).append(str(k))
    return kinds


def _commonest(con: Connection, table: str, app: str, error_like: bool = False) -> str | None:
    condition = " AND (type LIKE '%Error' OR type LIKE '%Failed' OR type = 'Error')" if error_like else ""
    rows = con.query(
        f'SELECT type FROM {table} WHERE "applicationId" = ?{condition} GROUP BY type ORDER BY count(*) DESC, type '
        "LIMIT 1",
        [app],
    ).rows
    return str(rows[0][0]) if rows else None


def suggest(
    con: Connection, analysis: Analysis, app: str, given: dict[str, str], kinds: dict[str, list[str]]
) -> dict[str, str]:
    """Values for the parameters an analysis needs and the URL does not give (``kinds``: see ``_kinds``)."""
    strings, flags, numbers = kinds.get("string", []), kinds.get("bool", []), kinds.get("number", [])
    out: dict[str, str] = {}
    wanted = {p.name for p in analysis.params if p.required}
    no_exit_code = not given.get("exit_code")
    for p in analysis.params:
        if p.name in ("event", "outcome") and p.default is None and no_exit_code:
            wanted.add(p.name)  # an outcome is needed: the commonest error-like event
    for name in wanted - {k for k, v in given.items() if v}:
        value: str | None = None
        if name == "span":
            value = _commonest(con, "spans", app)
        elif name in ("event", "outcome"):
            value = _commonest(con, "events", app, error_like=True) or _commonest(con, "events", app)
        elif name == "feature" or (name == "attribute" and analysis.name == "spans"):
            value = next(iter(flags or strings), None)
        elif name == "attribute" and analysis.name == "distribution":
            value = next(iter(numbers), None)
        elif name == "attribute":
            value = next(iter(strings), None)
        if value:
            out[name] = value
    return out


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _typed(analysis: Analysis, params: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for p in analysis.params:
        text = params.get(p.name, "")
        if not text:
            continue
        try:
            typed[p.name] = int(text) if p.kind == "int" else float(text) if p.kind == "float" else text
        except ValueError:
            raise BadQuery(f"{p.name} must be a number, not {text!r}") from None
        if p.kind == "list":
            typed[p.name] = [v.strip() for v in text.split(",") if v.strip()]
    return typed


def analyse(con: Connection, analysis: Analysis, app: str | None, query: Any) -> Outcome:
    """Run ``analysis`` on ``app`` with the page's query parameters (a Starlette ``QueryParams``)."""
    given = {p.name: str(query.get(p.name, "")) for p in analysis.params}
    if not app:
        return Outcome(analysis, None, given, problem="No sessions in the warehouse yet.")
    try:
        where = tuple(Filter.parse(w) for w in query.getlist("where") if w)
    except AnalysisError as exc:  # a hand-edited URL: say what is wrong, as for any parameter
        return Outcome(analysis, None, given, problem=str(exc))
    scope = Scope(app, _date(query.get("since")), _date(query.get("until")), where=where)
    kinds = _kinds(con, app)
    suggested = suggest(con, analysis, app, given, kinds)
    # The outcome is still open: no event type and no exit code given (a first visit).
    open_outcome = not any(given.get(k) for k in ("event", "outcome", "exit_code")) and any(
        p.name == "exit_code" for p in analysis.params
    )
    if suggested or open_outcome:  # the CLI's choice where it has one (a span with its own yes/no attribute, ...)
        try:
            picked = parameters(bind(con.warehouse, Scope(app))).get(analysis.name, {})
        except AnalysisError:
            picked = {}
        if open_outcome and "exit_code" in picked:  # no error-like event: the commonest failing exit code
            suggested = {k: v for k, v in suggested.items() if k not in ("event", "outcome")}
            suggested["exit_code"] = str(picked["exit_code"])
        suggested.update({k: str(v) for k, v in picked.items() if k in suggested})
    params = {**given, **suggested}
    outcome = Outcome(analysis, scope, params)
    outcome.attributes = sorted({k for names in kinds.values() for k in names})
    try:
        outcome.report = run(con.warehouse, analysis.name, scope, **_typed(analysis, params))
    except AnalysisError as exc:
        outcome.problem = in_the_dashboard(str(exc))
    return outcome


_QUERY_HINT = re.compile(r'`tallystick query "([^"`]*)"`')


def in_the_dashboard(message: str) -> str:
    """An analysis's message with its command-line hint (`` `tallystick query "SQL"` ``) pointing at
    the SQL page instead: the person reading it is in a browser, maybe without the server's shell."""
    return _QUERY_HINT.sub(lambda m: f"the SQL page ({m.group(1)})", message)
