"""The explore page: any metric over time or compared across a breakdown, with filters.

The whole view is its query string (``app``, ``from``, ``to``, ``metric``, ``by``,
``view``, ``grain`` and pairs of ``fk``/``fv`` filters), so a view is shared by its URL.
Every name that reaches SQL is checked against the wire contract's patterns and
every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tallystick.dashboard.errors import BadQuery
from tallystick.dashboard.reader import Connection
from tallystick.schema._rules import is_attribute_name, is_type_name
from tallystick.warehouse.dialect import DUCKDB, Dialect

TOP_GROUPS = 8
METRICS = {
    "sessions": "Sessions",
    "users": "Active users",
    "durationP50": "Median session duration (ms)",
    "durationP95": "95th percentile session duration (ms)",
}
GRAINS = ("day", "week", "month")
_TYPED = ("event", "span")  # dimensions named by an event or span type
VIEWS = ("time", "compare")


@dataclass
class ExploreState:
    app: str | None = None
    start: date | None = None
    end: date | None = None
    metric: str = "sessions"
    by: str = ""
    view: str = "time"
    grain: str = ""
    filters: list[tuple[str, str]] = field(default_factory=list)

    def query_string(self, **changes: Any) -> str:
        items: list[tuple[str, str]] = []
        values = {**self.__dict__, **changes}
        for key, name in (("app", "app"), ("metric", "metric"), ("by", "by"), ("view", "view"), ("grain", "grain")):
            if values[key]:
                items.append((name, str(values[key])))
        for key, name in (("start", "from"), ("end", "to")):
            if values[key]:
                items.append((name, values[key].isoformat()))
        for k, v in values["filters"]:
            items += [("fk", k), ("fv", v)]
        return urlencode(items)


def _date(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None
    if not 1970 <= parsed.year <= 9998:  # the range's day after and half-year before must be dates too
        raise BadQuery(f"{what} {text!r} is out of range: use a date from 1970 to 9998")
    return parsed


def _check_dimension(name: str, what: str) -> str:
    """``version``, ``attr.<key>`` (a session attribute) or, for metrics, ``event.<Type>``/``span.<Type>``."""
    kind, _, rest = name.partition(".")
    if name == "version" or (kind == "attr" and is_attribute_name(rest)) or (kind in _TYPED and is_type_name(rest)):
        return name
    raise BadQuery(f"{what} {name!r} is not known: use version, attr.<name>, event.<Type> or span.<Type>")


def parse_state(params: Any) -> ExploreState:
    """The view a query string asks for (``params``: a Starlette ``QueryParams`` or similar)."""
    state = ExploreState(app=params.get("app") or None)
    state.start = _date(params.get("from"), "from")
    state.end = _date(params.get("to"), "to")
    state.metric = params.get("metric") or "sessions"
    if state.metric not in METRICS:
        kind = _check_dimension(state.metric, "metric").partition(".")[0]
        if kind not in ("event", "span"):
            raise BadQuery(
                f"metric {state.metric!r} is not known: use {', '.join(METRICS)}, event.<Type> or span.<Type>"
            )
    state.by = params.get("by") or ""
    if state.by:
        kind = _check_dimension(state.by, "breakdown").partition(".")[0]
        if kind not in ("version", "attr"):
            raise BadQuery(f"breakdown {state.by!r}: break down by version or attr.<name>")
    state.view = params.get("view") or "time"
    if state.view not in VIEWS:
        raise BadQuery(f"view {state.view!r}: use {' or '.join(VIEWS)}")
    state.grain = params.get("grain") or ""
    if state.grain and state.grain not in GRAINS:
        raise BadQuery(f"grain {state.grain!r}: use {', '.join(GRAINS)}")
    keys, values = params.getlist("fk"), params.getlist("fv")
    for k, v in zip(keys, values, strict=False):
        if k and v:
            if k != "version" and not k.startswith("attr."):
                raise BadQuery(f"filter {k!r}: filter on version or attr.<name>")
            state.filters.append((_check_dimension(k, "filter"), v))
    return state


def metric_label(metric: str) -> str:
    if metric in METRICS:
        return METRICS[metric]
    kind, _, name = metric.partition(".")
    return f"Share of sessions with event {name}" if kind == "event" else f"Median {name} duration (ms)"


def _dimension_sql(name: str, alias: str = "", sql: Dialect = DUCKDB) -> str:
    """SQL for ``version`` or ``attr.<key>`` as text, on table ``alias``; BadQuery for anything else.

    The key goes into the SQL text (a JSON path), so it is checked here, where it is used,
    against the wire contract's attribute-name rule: letters and digits only.
    """
    prefix = f"{alias}." if alias else ""
    if name == "version":
        return f'{prefix}"applicationVersion"'
    kind, _, key = name.partition(".")
    if kind != "attr" or not is_attribute_name(key):
        raise BadQuery(f"{name!r} is not a dimension: use version or attr.<name> (letters and digits)")
    return sql.attribute_text(f"{prefix}attributes", key)


@dataclass
class Options:
    """What the form offers: attribute names, event and span types, versions."""

    attributes: list[str]
    events: list[str]
    spans: list[str]
    versions: list[str]


def options(con: Connection, app: str) -> Options:
    attributes = con.query(con.sql.attribute_names('"applicationId" = ?'), [app]).rows
    events = con.query('SELECT DISTINCT type FROM events WHERE "applicationId" = ? ORDER BY type', [app]).rows
    spans = con.query('SELECT DISTINCT type FROM spans WHERE "applicationId" = ? ORDER BY type', [app]).rows
    versions = con.query(
        'SELECT DISTINCT "applicationVersion" FROM sessions WHERE "applicationId" = ? ORDER BY "applicationVersion"',
        [app],
    ).rows
    from tallystick.dashboard.overview import version_key

    return Options(
        [str(r[0]) for r in attributes if is_attribute_name(str(r[0]))],
        [str(r[0]) for r in events],
        [str(r[0]) for r in spans],
        sorted((str(r[0]) for r in versions), key=version_key, reverse=True),
    )


def values(con: Connection, app: str, dimension: str, limit: int = 50) -> list[str]:
    """The most frequent values of a dimension, for the filter's suggestions."""
    expr = _dimension_sql(_check_dimension(dimension, "filter"), sql=con.sql)
    rows = con.query(
        f'SELECT {expr} AS v FROM sessions WHERE "applicationId" = ? AND v IS NOT NULL '
        f"GROUP BY v ORDER BY count(*) DESC, v LIMIT {int(limit)}",
        [app],
    ).rows
    return [str(r[0]) for r in rows]


def date_range(con: Connection, app: str) -> tuple[date | None, date | None]:
    day = con.sql.day('"sessionStartTime"')
    row = con.query(
        f'SELECT min({day}), max({day}) FROM sessions WHERE "applicationId" = ?',
        [app],
    ).rows[0]
    if not row or not isinstance(row[0], date):  # no sessions (ClickHouse answers its zero date)
        return None, None
    return row[0], row[1]


def start_of(day: date) -> datetime:
    """Midnight UTC of ``day``: a timestamp bound binds the same on every engine."""
    return datetime(day.year, day.month, day.day)


def auto_grain(start: date, end: date) -> str:
    days = (end - start).days
    return "day" if days <= 62 else "week" if days <= 400 else "month"


@dataclass
class Series:
    """The explore chart's data: one row per (period, group), ``period`` empty in compare view."""

    rows: list[dict[str, Any]]
    grain: str
    label: str
    groups: list[str]


def series(con: Connection, state: ExploreState) -> Series:
    """The numbers for ``state`` (its app, dates and grain already filled in)."""
    if not (state.app and state.start and state.end and state.grain in GRAINS):
        raise BadQuery("pick an application and a date range first")
    where = ['s."applicationId" = ?', 's."sessionStartTime" >= ?', 's."sessionStartTime" < ?']
    params: list[Any] = [state.app, start_of(state.start), start_of(state.end + timedelta(days=1))]
    for k, v in state.filters:
        where.append(f"{_dimension_sql(k, 's', con.sql)} = ?")
        params.append(v)
    group = _dimension_sql(state.by, "s", con.sql) if state.by else "'all'"
    sql = con.sql
    period = sql.trunc(state.grain, 's."sessionStartTime"') if state.view == "time" else "0"  # type: ignore[arg-type]
    # Plain subqueries, one JOIN per SELECT and distinct column names: what ClickHouse 18.16 takes too.
    base = (
        f's."sessionId" AS sid, s."userId" AS uid, s."durationMs" AS dur, {period} AS period, '
        f"coalesce({group}, '(none)') AS g FROM sessions s WHERE {' AND '.join(where)}"
    )
    top = [
        str(r[0])
        for r in con.query(
            f"SELECT g FROM (SELECT {base}) GROUP BY g ORDER BY count(*) DESC, g LIMIT {TOP_GROUPS}", params
        ).rows
    ]
    if not top:
        return Series([], state.grain, metric_label(state.metric), [])
    grp = f"CASE WHEN b.g IN ({', '.join('?' for _ in top)}) THEN b.g ELSE '(other)' END"
    kind, _, name = state.metric.partition(".")
    joins = ""
    join_params: list[Any] = []
    if state.metric == "sessions":
        value = "count(*)"
    elif state.metric == "users":
        value = "count(DISTINCT b.uid)"
    elif state.metric == "durationP50":
        value = sql.quantile(0.5, "b.dur")
    elif state.metric == "durationP95":
        value = sql.quantile(0.95, "b.dur")
    elif kind == "event":
        joins = (
            'LEFT JOIN (SELECT DISTINCT "sessionId" AS eid, 1 AS hit FROM events WHERE "applicationId" = ? '
            "AND type = ?) e ON e.eid = b.sid"
        )
        join_params = [state.app, name]
        value = "avg(coalesce(e.hit, 0))"  # ClickHouse fills a missing row's hit with 0, DuckDB with NULL
    else:
        joins = (
            'JOIN (SELECT "sessionId" AS spid, "durationMs" AS spdur FROM spans WHERE "applicationId" = ? '
            "AND type = ?) sp ON sp.spid = b.sid"
        )
        join_params = [state.app, name]
        value = sql.quantile(0.5, "sp.spdur")
    query = (
        f"SELECT b.period AS period, {grp} AS grp, {value} AS value, count(DISTINCT b.sid) AS n "
        f"FROM (SELECT {base}) b {joins} GROUP BY period, grp ORDER BY period, grp"
    )
    rows = con.query(query, top + params + join_params).rows
    groups = sorted({str(r[1]) for r in rows})
    if state.by == "version":
        from tallystick.dashboard.overview import version_key

        groups.sort(key=version_key, reverse=True)
    data = [
        {
            "period": p.isoformat() if isinstance(p, date) else "",
            "group": g,
            "value": None if v is None else round(float(v), 4),
            "sessions": int(n),
        }
        for p, g, v, n in rows
    ]
    return Series(data, state.grain, metric_label(state.metric), groups)
