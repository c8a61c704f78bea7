"""A bounded fuzz run over the dashboard's query parameters: whatever the URL says, no 5xx.

Every page and data endpoint gets query strings built from the parameter names the
dashboard reads (and some it does not), with values of any text, numbers out of range,
dates that are not, SQL fragments, and raw bytes that are not UTF-8. Each answer must be
below 500 and carry the security headers. (A 503 would say the warehouse is missing or
busy: here it is loaded, so it counts as a failure too.)
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.conftest import Served
from tallystick.analysis import ANALYSES

# In CI the examples are the same on every run (a red run must be reproducible, not a draw); elsewhere each
# run draws new ones, to find what CI's never try.
FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=os.environ.get("CI") == "true"
)
SECURITY = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")

ANALYSIS_NAMES = [a.name for a in ANALYSES]
PATHS = [
    "/",
    "/explore",
    "/sql",
    "/analyses",
    "/api/overview",
    "/api/explore",
    "/api/values",
    "/api/sql.csv",
    *(f"/analyses/{n}" for n in ANALYSIS_NAMES),
    *(f"/api/analyses/{n}" for n in ANALYSIS_NAMES),
    "/analyses/nope",
]
KEYS = sorted(
    {"app", "since", "until", "where", "q", "key", "view", "from", "to", "metric", "grain", "by", "fk", "fv"}
    | {p.name for a in ANALYSES for p in a.params}
    | {"version", "versions", "x", ""}
)
VALUES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["demo", "shell", "fish", "UpdateNudgeShown", "BuildImage", "day", "week", "month", "sessions"]),
    st.sampled_from(["2026-02-30", "9999-12-31", "0001-01-01", "30d", "-5d", "1e309", "NaN", "-1", "0", "2" * 40]),
    st.sampled_from(["shell=fish", "shell!=fish", "=", "a=b=c", "x'; DROP TABLE sessions; --", "1) OR (1=1"]),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6))
    text = urlencode(pairs)
    if draw(st.booleans()):
        text += "&" + draw(st.sampled_from(["app=%ff%fe", "where=%c3", "q=%00", "since", "=&=", "%zz=1"]))
    return text


@FUZZ
@given(path=st.sampled_from(PATHS), query=query_strings())
def test_dashboard_never_answers_5xx(served: Served, path: str, query: str) -> None:
    """Any query string on any page or data endpoint: an answer below 500, with the security headers."""
    status, headers, body = served.request("GET", f"{quote(path)}?{query}")
    assert status < 500, (status, body[:300])
    assert all(name in headers for name in SECURITY)


def test_a_filter_that_is_not_attribute_equals_value_is_a_message_not_a_500(served: Served) -> None:
    """What the fuzz run found: ?where=x on an analysis was a 500; it is the page's message (400 for the API)."""
    status, _, body = served.request("GET", "/analyses/adoption?app=demo&where=%ff")
    assert status == 200 and b"is not ATTRIBUTE=VALUE" in body
    status, _, body = served.request("GET", "/api/analyses/adoption?app=demo&where=nonsense")
    assert status == 400 and b"is not ATTRIBUTE=VALUE" in body
