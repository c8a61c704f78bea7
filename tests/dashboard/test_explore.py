"""The explore view's state: what the URL may ask for, and that nothing else reaches SQL."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest
from starlette.datastructures import QueryParams

if TYPE_CHECKING:
    from dashboard.conftest import Served
from tallystick.dashboard.errors import BadQuery
from tallystick.dashboard.explore import _dimension_sql, auto_grain, parse_state


def test_state_round_trips_through_the_query_string() -> None:
    """Parsing a view's query string and writing it back gives the same view."""
    text = (
        "app=demo&metric=event.Error&by=attr.shell&view=compare&grain=week"
        "&from=2026-01-01&to=2026-02-01&fk=version&fv=2.0.0"
    )
    state = parse_state(QueryParams(text))
    assert state.filters == [("version", "2.0.0")]
    assert state.start == date(2026, 1, 1)
    assert parse_state(QueryParams(state.query_string())) == state


@pytest.mark.parametrize(
    "query",
    [
        "by=attr.x')%20OR%201=1--",
        "metric=event.Err%27or",
        "metric=span.",
        "by=event.Error",
        "fk=attr.a%20b&fv=1",
        "fk=sessionId&fv=1",
        "view=pie",
        "grain=hour",
        "from=yesterday",
        "by=attr.foo%0A",
        "metric=event.Error%0A",
        "fk=attr.os%0A&fv=linux",
        f"by=attr.{'a' * 65}",
    ],
    ids=[
        "sql-in-breakdown",
        "quote-in-metric",
        "empty-span",
        "event-as-breakdown",
        "space-in-filter",
        "unknown-filter",
        "view",
        "grain",
        "date",
        "newline-after-attribute",
        "newline-after-event-type",
        "newline-after-filter",
        "attribute-name-too-long",
    ],
)
def test_anything_but_known_names_is_refused(query: str) -> None:
    """Names are checked against the wire contract's patterns before any SQL is built."""
    with pytest.raises(BadQuery):
        parse_state(QueryParams(query))


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "to=0001-01-01"])
def test_dates_at_the_ends_of_the_calendar_are_refused_with_a_message(query: str) -> None:
    """A date whose next day or half-year before is not a date gets a message, not an OverflowError (a 500)."""
    with pytest.raises(BadQuery, match="is out of range: use a date from 1970 to 9998"):
        parse_state(QueryParams(query))


def test_empty_filter_rows_are_ignored() -> None:
    """The form's unused filter rows do not filter."""
    state = parse_state(QueryParams("fk=&fv=&fk=version&fv=1.0.0&fk=attr.os&fv="))
    assert state.filters == [("version", "1.0.0")]


@pytest.mark.parametrize(("days", "grain"), [(30, "day"), (180, "week"), (900, "month")], ids=str)
def test_grain_follows_the_range(days: int, grain: str) -> None:
    """Short ranges are shown per day, longer per week, the longest per month."""
    assert auto_grain(date(2026, 1, 1), date.fromordinal(date(2026, 1, 1).toordinal() + days)) == grain


def test_bad_explore_url_gets_a_message_not_a_crash(served: Served) -> None:
    """A hand-edited explore URL with a bad name answers 400 with the rule, as a page and as data."""
    status, _, body = served.request("GET", "/explore?by=attr.%3Cscript%3E")
    assert status == 400
    assert b"&lt;script&gt;" in body and b"<script>" not in body.split(b"</head>")[1]
    status, _, body = served.request("GET", "/api/explore?metric=nope")
    assert status == 400 and b"is not known" in body


@pytest.mark.parametrize("name", ["attr.x')--", "attr.foo\n", "event.Error", "attr.", "sessionId"], ids=repr)
def test_dimension_sql_refuses_unchecked_names_with_a_message(name: str) -> None:
    """Building SQL for a name that is not version or a valid attr.<name> raises BadQuery, never reaches SQL."""
    with pytest.raises(BadQuery, match=r"is not a dimension: use version or attr\.<name>"):
        _dimension_sql(name)


def test_dimension_sql_for_known_names() -> None:
    """version and attr.<name> become their SQL expressions on the given table."""
    assert _dimension_sql("version", "s") == 's."applicationVersion"'
    assert _dimension_sql("attr.shell") == "json_extract_string(attributes, '$.shell')"
