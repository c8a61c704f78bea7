"""What an analysis looks at: one application, a date range and filters, checked against the warehouse.

``Scope`` is the plain request (from the CLI, the dashboard or a notebook);
``Bound`` is that scope checked against a warehouse: the application exists, the
versions are known (ordered by when each was first seen), every attribute named
exists, and the SQL conditions for the ``sessions``, ``events`` and ``spans``
tables are ready to paste into a query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

from tallystick.analysis.errors import (
    BadParameter,
    EmptyRange,
    UnknownApplication,
    UnknownAttribute,
    UnknownType,
)
from tallystick.schema import _rules
from tallystick.warehouse import rollup
from tallystick.warehouse.base import Queryable
from tallystick.warehouse.dialect import Dialect, dialect_of


@dataclass(frozen=True)
class Filter:
    """Sessions whose attribute ``attribute`` has the value ``value`` (compared as text: ``true``, ``12``)."""

    attribute: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        name, sep, value = text.partition("=")
        if not sep or not _rules.is_attribute_name(name.strip()):
            raise BadParameter(f"filter {text!r} is not ATTRIBUTE=VALUE, e.g. shell=fish")
        return cls(name.strip(), value.strip())


@dataclass(frozen=True)
class Scope:
    """An application, an inclusive range of UTC dates (default: all data) and filters."""

    app: str
    since: date | None = None
    until: date | None = None
    versions: tuple[str, ...] = ()
    where: tuple[Filter, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "versions": list(self.versions),
            "where": {f.attribute: f.value for f in self.where},
        }


def _naive_utc(value: Any) -> datetime:
    """Naive UTC, whole seconds (ClickHouse keeps no fractions, so every engine answers alike)."""
    if isinstance(value, datetime):
        naive: datetime = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return naive.replace(microsecond=0)
    raise TypeError(f"expected a timestamp, got {value!r}")


@dataclass(frozen=True)
class Release:
    """A version of the application and when it was first seen (any user, any time)."""

    version: str
    first_seen: datetime
    sessions: int


@dataclass
class Bound:
    """A scope checked against a warehouse; see the module docstring."""

    warehouse: Queryable
    scope: Scope
    dialect: Dialect
    releases: list[Release]
    since: date
    until: date
    as_of: datetime  # the latest ingestion: what the warehouse knew when asked
    clock_skewed: int = 0  # sessions whose clock was wrong (``bind``): they set neither the range nor first-seen
    clock_left_out: int = 0  # of those, the ones outside the range
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> datetime:
        return datetime(self.since.year, self.since.month, self.since.day)

    @property
    def end(self) -> datetime:
        """Exclusive end of the range (midnight after ``until``)."""
        return datetime(self.until.year, self.until.month, self.until.day) + timedelta(days=1)

    @cached_property
    def rank(self) -> dict[str, int]:
        """Versions ordered by first seen, 0 = oldest."""
        return {r.version: i for i, r in enumerate(self.releases)}

    def rank_sql(self, column_sql: str = '"applicationVersion"') -> str:
        """A CASE giving each version's rank (first-seen order)."""
        whens = " ".join(f"WHEN {self.dialect.literal(v)} THEN {i}" for v, i in self.rank.items())
        return f"(CASE {column_sql} {whens} ELSE -1 END)"

    def days(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range((self.until - self.since).days + 1)]

    def attr(self, name: str, *, number: bool = False, column_sql: str = "attributes") -> str:
        """An attribute as text whatever its type (``Dialect.attribute_text``: how filters compare), or
        with ``number`` that text as a number (NULL when it is none)."""
        text = self.dialect.attribute_text(column_sql, name)
        return self.dialect.text_number(text) if number else text

    def sessions_where(self, *, with_filters: bool = True, typed: bool = False) -> str:
        d = self.dialect
        parts = [
            f'"applicationId" = {d.literal(self.scope.app)}',
            f'"sessionStartTime" >= {d.literal(self.start)}',
            f'"sessionStartTime" < {d.literal(self.end)}',
        ]
        if self.scope.versions:
            parts.append(d.in_list('"applicationVersion"', list(self.scope.versions)))
        if with_filters:
            attr = self.typed_attr if typed else self.attr
            parts += [f"{attr(f.attribute)} = {d.literal(f.value)}" for f in self.scope.where]
        return " AND ".join(parts)

    def _rollup_fresh(self) -> bool:
        fresh = self._cache.get("rollup_fresh")
        if fresh is None:
            fresh = self._cache["rollup_fresh"] = rollup.is_fresh(self.warehouse, self.dialect.literal(self.scope.app))
        return bool(fresh)

    def typed(self, *names: str) -> bool:
        """Whether ``sessions_typed`` (``warehouse/rollup.py``) is fresh and has a column for each attribute
        named and each filter's: then ``typed_attr``/``sessions_where(typed=True)`` read it instead of JSON."""
        have = self._typed_attributes()
        return have is not None and {*names, *(f.attribute for f in self.scope.where)} <= have

    def typed_every(self) -> list[str] | None:
        """Every attribute name there is, sorted, when ``sessions_typed`` is fresh and has a column for each
        (fewer than ``rollup.MAX_TYPED_ATTRIBUTES`` names, so none lives in the JSON only); else None."""
        have = self._typed_attributes()
        if have is None or len(have) >= rollup.MAX_TYPED_ATTRIBUTES:
            return None
        return sorted(have)

    def _typed_attributes(self) -> set[str] | None:
        if not self._rollup_fresh():
            return None
        have = self._cache.get("typed_attributes")
        if have is None:
            have = self._cache["typed_attributes"] = rollup.typed_attributes(self.warehouse)
        return set(have)

    def reads_typed(self, *names: str) -> bool:
        """Whether to read the sessions in scope from ``sessions_typed`` rather than ``sessions``: it is fresh
        with a column for each of ``names`` and each filter's attribute (``typed``), and there is something
        to gain, an attribute filter or an attribute to read (else both are one column scan, and the
        freshness check is saved). Then filter with ``sessions_where(typed=True)``, read attributes with
        ``typed_attr`` and users with ``user_key(typed=True)``."""
        return bool(names or self.scope.where) and self.typed(*names)

    def sessions_table(self, typed: bool) -> str:
        return rollup.TYPED_TABLE if typed else "sessions"

    def user_key(self, typed: bool = False) -> str:
        """A session's user as a 64-bit hash (``Dialect.user_key``): precomputed in ``sessions_typed``."""
        return '"userKey"' if typed else self.dialect.user_key()

    def session_ids(self) -> str:
        """A subquery selecting the IDs of the sessions in scope, filters included: from ``sessions_typed``'s
        text columns when it can answer (a column compare instead of a JSON parse per session), else
        from ``sessions``."""
        typed = self.reads_typed()
        return f'SELECT "sessionId" FROM {self.sessions_table(typed)} WHERE {self.sessions_where(typed=typed)}'

    def typed_attr(self, name: str, *, number: bool = False) -> str:
        """What ``attr`` gives, from the attribute's own text column in ``sessions_typed``."""
        text = f'"{rollup.TYPED_PREFIX}{name}"'
        return self.dialect.text_number(text) if number else text

    def rollup_where(self) -> str | None:
        """Conditions for the daily rollup (``warehouse/rollup.py``) equivalent to ``sessions_where()``,
        or None when the rollup cannot answer: absent, stale, another engine, or a filter on an
        attribute it does not keep."""
        if any(f.attribute not in rollup.ATTRIBUTES for f in self.scope.where) or not rollup.has_daily(self.warehouse):
            return None
        if not self._rollup_fresh():
            return None
        d = self.dialect
        parts = [
            f'"applicationId" = {d.literal(self.scope.app)}',
            f'"day" >= {d.literal(self.since)}',
            f'"day" <= {d.literal(self.until)}',
        ]
        if self.scope.versions:
            parts.append(d.in_list('"applicationVersion"', list(self.scope.versions)))
        parts += [f'"{f.attribute}" = {d.literal(f.value)}' for f in self.scope.where]
        return " AND ".join(parts)

    def child_where(self, type_: str | None = None, *, with_filters: bool = True) -> str:
        """Conditions for ``events``/``spans`` rows of sessions in scope (and of one type). Each row carries its
        session's application, version and start, so only attribute filters need the sessions' table;
        ``with_filters=False`` leaves them out, for rows whose sessions are already known to be in scope."""
        parts = [self.sessions_where(with_filters=False)]
        if type_ is not None:
            parts.append(f'"type" = {self.dialect.literal(type_)}')
        if with_filters and self.scope.where:
            parts.append(self._in_filtered_sessions())
        return " AND ".join(parts)

    def _in_filtered_sessions(self) -> str:
        """The condition that a row's session passes the filters. From ``sessions_typed``, by the session ID's
        64-bit hash (``Dialect.user_key``) on both sides: the semi-join probes one row per event or span (21.7
        million spans in ``bench/analysis.py``), and integers hash and compare cheaper than 36-character IDs
        (filtered timing's two probes about 9 -> 7 CPU-s), read on DuckDB from ``rollup.SESSION_KEY``. A row of
        another session counts if that session ID's hash equals a filtered session's: about 1 chance in 400,000
        for the 14 million other spans of the bench against its 3.3 million filtered sessions."""
        if not self.reads_typed():
            return f'"sessionId" IN ({self.session_ids()})'
        key = self.dialect.user_key('"sessionId"')
        keys = rollup.SESSION_KEY if rollup.session_keyed(self.warehouse) else key
        return f"{key} IN (SELECT {keys} FROM {rollup.TYPED_TABLE} WHERE {self.sessions_where(typed=True)})"

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.warehouse.query(sql).rows

    def require_attribute(self, name: str, table: str = "sessions", type_: str | None = None) -> None:
        """Raise UnknownAttribute unless some row in scope of ``table`` carries ``name``."""
        if not _rules.is_attribute_name(name):
            raise BadParameter(f"{name!r} is not an attribute name (letters and digits, starting with a letter)")
        where = self.sessions_where(with_filters=False) if table == "sessions" else self.child_where(type_)
        found = self.rows(f"SELECT 1 FROM {table} WHERE {where} AND {self.attr(name)} IS NOT NULL LIMIT 1")
        if not found:
            what = f"{type_} {table}" if type_ else table
            raise UnknownAttribute(
                f"no {what} of {self.scope.app!r} between {self.since} and {self.until} has the attribute {name!r}: "
                "check the spelling (names are case-sensitive) or widen the range; "
                '`tallystick query "SELECT attributes FROM sessions LIMIT 5"` shows what there is'
            )

    def require_type(self, table: str, type_: str, *, with_filters: bool = True) -> None:
        """Raise UnknownType unless some row in scope of ``table`` has the type ``type_``.

        With attribute filters the exact check costs a pass over the sessions (``child_where``), so
        analyses check ``with_filters=False`` first (a typo fails fast) and the filters only when their
        answer turned out empty, raising then what an exact check first would have raised."""
        found = self.rows(f"SELECT 1 FROM {table} WHERE {self.child_where(type_, with_filters=with_filters)} LIMIT 1")
        if not found:
            known = [
                r[0] for r in self.rows(f'SELECT DISTINCT "type" FROM {table} WHERE {self.child_where()} LIMIT 50')
            ]
            kind = "event" if table == "events" else "span"
            raise UnknownType(
                f"no {kind} of type {type_!r} in scope ({self.scope.app}, {self.since} to {self.until}); "
                f"{kind} types there: {', '.join(sorted(known)) or 'none'}"
            )

    def empty(self, what: str = "sessions") -> EmptyRange:
        filters = ", ".join(f"{f.attribute}={f.value}" for f in self.scope.where)
        versions = ", ".join(self.scope.versions)
        extra = (f" with {filters}" if filters else "") + (f" on {versions}" if versions else "")
        return EmptyRange(
            f"no {what} of {self.scope.app!r} between {self.since} and {self.until}{extra}: "
            f"data runs from {self.releases[0].first_seen.date()} to {self.as_of.date()}; "
            "widen the range or drop filters"
        )


MAX_DELAY_DAYS = 31
SKEWED_SHARE = 0.1  # clocks set wrong are believed only while at most this share of sessions look so


def _per_version(trusted: list[tuple[Any, ...]], grouped: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Per version: first and last start, latest ingestion, sessions; from ``trusted`` rows where a version
    has any (its skewed sessions still count), else from all of its rows."""
    out: dict[str, list[Any]] = {}
    for source in (trusted, grouped):
        seen = set(out)
        for v, _, first, last, ingested, _ in source:
            if v in seen:
                continue
            row = out.setdefault(v, [v, first, last, ingested, 0])
            row[1], row[2] = min(row[1], first), max(row[2], last)
            if ingested is not None:
                row[3] = ingested if row[3] is None else max(row[3], ingested)
    for v, _, _, _, _, n in grouped:
        out[v][4] += int(n)
    return [tuple(r) for r in out.values()]


def confidence(params: dict[str, Any], default: float = 0.95) -> float:
    """The ``confidence`` parameter: a level strictly between 0 and 1 (BadParameter otherwise)."""
    given = params.get("confidence") or default
    try:
        level = float(given)
    except (TypeError, ValueError):
        level = float("nan")
    if not 0 < level < 1:  # NaN too
        raise BadParameter(f"confidence {given!r}: use a level between 0 and 1, such as 0.95")
    return level


def bind(warehouse: Queryable, scope: Scope) -> Bound:
    """Check ``scope`` against ``warehouse``; raise a clear AnalysisError for anything that does not exist."""
    d = dialect_of(warehouse)
    if not scope.app:
        raise BadParameter("name the application with --app")
    # A session's start is its client's clock; its ingestion time is the server's. Clients discard sessions
    # older than 30 days, so a start more than MAX_DELAY_DAYS before its ingestion, or a day after it, is a
    # clock set wrong (years back, a year ahead): grouped apart, so they cannot set the range nor when a
    # version was first seen.
    delay = f"""({d.epoch_seconds('"ingestionTime"')} - {d.epoch_seconds('"sessionStartTime"')})"""
    plausible = f'("ingestionTime" IS NULL OR ({delay} >= -86400 AND {delay} <= {MAX_DELAY_DAYS * 86400}))'
    grouped = warehouse.query(
        f'SELECT "applicationVersion", {plausible}, min("sessionStartTime"), max("sessionStartTime"), '
        f'max("ingestionTime"), count(*) FROM sessions WHERE "applicationId" = {d.literal(scope.app)} '
        f'GROUP BY "applicationVersion", {plausible}'
    ).rows
    if not grouped:
        apps = [r[0] for r in warehouse.query('SELECT DISTINCT "applicationId" FROM sessions LIMIT 50').rows]
        raise UnknownApplication(
            f"no sessions of application {scope.app!r} in the warehouse; applications there: "
            f"{', '.join(sorted(apps)) or 'none (load some with `tallystick load`)'}"
        )
    skewed = sum(int(r[5]) for r in grouped if not r[1])
    # Only where such clocks are rare: sessions sent long after the fact (a backfill, `tallystick demo` sent
    # to a server) all look late, and then the client's clock is all there is.
    trusted = [r for r in grouped if r[1]] if skewed <= SKEWED_SHARE * sum(int(r[5]) for r in grouped) else grouped
    if len(trusted) == len(grouped):
        skewed = 0
    rows = _per_version(trusted, grouped)
    releases = sorted(
        (Release(str(v), _naive_utc(first), int(n)) for v, first, _, _, n in rows),
        key=lambda r: (r.first_seen, r.version),
    )
    last = max(_naive_utc(r[2]) for r in rows)
    ingested = [_naive_utc(r[3]) for r in rows if r[3] is not None]
    as_of = max([last, *ingested])
    unknown = [v for v in scope.versions if v not in {r.version for r in releases}]
    if unknown:
        raise BadParameter(
            f"no sessions of {scope.app!r} on version(s) {', '.join(unknown)}; versions there: "
            + ", ".join(r.version for r in releases)
        )
    since = scope.since or releases[0].first_seen.date()
    until = scope.until or last.date()
    if since > last.date() or until < releases[0].first_seen.date():
        raise Bound(warehouse, scope, d, releases, since, max(since, until), as_of).empty()
    if until < since:
        raise EmptyRange(f"the range {since} to {until} is empty: --until must not be before --since")
    bound = Bound(warehouse, scope, d, releases, since, until, as_of, skewed)
    if skewed and any(
        not r[1] and (_naive_utc(r[2]) < bound.start or _naive_utc(r[3]) >= bound.end) for r in grouped
    ):  # some of them lie outside the range: how many (a scan only then, never on well-set clocks)
        bound.clock_left_out = int(
            bound.rows(
                f'SELECT count(*) FROM sessions WHERE "applicationId" = {d.literal(scope.app)} AND NOT {plausible} '
                f'AND ("sessionStartTime" < {d.literal(bound.start)} OR "sessionStartTime" >= {d.literal(bound.end)})'
            )[0][0]
        )
    for f in scope.where:
        bound.require_attribute(f.attribute)
    if scope.where and not bound.rows(f"{bound.session_ids()} LIMIT 1"):
        raise bound.empty()
    return bound
