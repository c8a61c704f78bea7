"""The dashboard's pages in a real Chromium over demo data (and a few hostile sessions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.conftest import Served
from fixtures.browser import WatchedPage
from tallystick.analysis import ANALYSES

PAGES = {
    "overview": ("/", 3),
    "explore": ("/explore?app=demo&by=attr.shell", 1),
    "sql": ("/sql", 0),
}


def open_page(watched: WatchedPage, url: str) -> float:
    """Go to ``url``, wait until its charts are drawn; ms from navigation start to drawn."""
    page = watched.page
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return float(page.evaluate("window.tallystickRenderedAt"))


def wait_redrawn(page: Any, action: Any) -> None:
    """Run ``action`` (which triggers a redraw) and wait for the redraw to finish."""
    page.evaluate("document.body.dataset.ready = 'pending'")
    action()
    page.wait_for_selector("body[data-ready=true]")


def legend_labels(page: Any) -> list[str]:
    return [str(t) for t in page.locator("[data-chart] svg .role-legend-label text").all_text_contents()]


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_and_draws_its_charts_without_errors(
    name: str, served: Served, browser_page: WatchedPage, render_times: dict[str, float]
) -> None:
    """Each page loads on demo data with no console error and draws non-empty SVG charts (times printed)."""
    path, charts = PAGES[name]
    browser_page.page.goto(served.url + "/ping")  # the browser's own start-up is not the page's
    first = open_page(browser_page, served.url + path)  # static files not yet cached in this context
    again = open_page(browser_page, served.url + path)
    render_times[name] = again
    render_times[f"{name} (first visit)"] = first
    page = browser_page.page
    assert browser_page.problems() == []
    assert page.locator("[data-chart].error").count() == 0
    svgs = page.locator("[data-chart] svg.marks")
    assert svgs.count() == charts
    for i in range(charts):
        marks = svgs.nth(i).locator(".mark-line path, .mark-area path, .mark-rect path, .mark-symbol path")
        assert marks.count() > 0, f"chart {i} of {name} has no marks"


@pytest.mark.parametrize("name", [a.name for a in ANALYSES])
def test_analysis_page_draws_its_chart_and_explains_it(
    name: str, served: Served, browser_page: WatchedPage, render_times: dict[str, float]
) -> None:
    """Each built-in analysis has a page with its chart, an export menu and a "how to read this"."""
    open_page(browser_page, served.url + "/analyses")
    assert browser_page.page.locator(f'ul.analyses a[href^="/analyses/{name}"]').count() == 1
    url = f"{served.url}/analyses/{name}?app=demo"
    ms = min(open_page(browser_page, url), open_page(browser_page, url))
    render_times[f"analysis {name}"] = ms
    page = browser_page.page
    assert browser_page.problems() == []
    assert page.locator(".notice").count() == 0
    svg = page.locator('[data-chart="analysis"] svg.marks')
    assert svg.count() == 1
    assert svg.locator("path, text").count() > 5
    assert page.locator('[data-chart="analysis"] details summary').count() == 1
    assert page.locator(".reading li").count() >= 1


def test_overview_shades_recent_days_that_are_still_arriving(served: Served, browser_page: WatchedPage) -> None:
    """The activity chart has a shaded rect per recent day whose sessions are estimated incomplete."""
    open_page(browser_page, served.url + "/")
    shaded = browser_page.page.locator('[data-chart="activity"] svg .mark-rect path')
    assert shaded.count() >= 2
    assert "arrival lags" in browser_page.page.locator(".how").first.inner_text()


def test_explore_changes_redraw_the_chart_and_live_in_the_url(served: Served, browser_page: WatchedPage) -> None:
    """Changing the breakdown or a filter redraws the chart, and the URL reproduces the view."""
    page = browser_page.page
    open_page(browser_page, served.url + "/explore?app=demo&by=attr.shell")
    assert "fish" in legend_labels(page)

    wait_redrawn(page, lambda: page.select_option('select[name="by"]', "version"))
    versions = legend_labels(page)
    assert "2.5.0" in versions and "fish" not in versions

    wait_redrawn(page, lambda: page.select_option('select[name="fk"] >> nth=0', "version"))
    wait_redrawn(
        page,
        lambda: (
            page.fill('input[name="fv"] >> nth=0', "2.5.0")
            or page.locator('input[name="fv"] >> nth=0').dispatch_event("change")
        ),
    )
    assert legend_labels(page) == ["2.5.0"]
    query = parse_qs(urlsplit(page.url).query)
    assert query["by"] == ["version"] and query["fk"] == ["version"] and query["fv"] == ["2.5.0"]

    shared = page.url
    open_page(browser_page, shared)
    assert page.locator('select[name="by"]').input_value() == "version"
    assert page.locator('input[name="fv"] >> nth=0').input_value() == "2.5.0"
    assert legend_labels(page) == ["2.5.0"]
    assert browser_page.problems() == []


def test_sql_page_returns_rows_and_refuses_to_write(served: Served, browser_page: WatchedPage) -> None:
    """A SELECT fills the result table; an INSERT is refused with the engine's read-only message."""
    page = browser_page.page
    open_page(browser_page, served.url + "/sql")
    page.fill("textarea[name=q]", "SELECT type, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC")
    wait_redrawn(page, lambda: page.click("button[type=submit]"))
    assert page.locator("#sql-result th").all_text_contents() == ["type", "n"]
    assert page.locator("#sql-result tbody tr").count() >= 3
    assert "UpdateNudgeShown" in page.locator("#sql-result").inner_text()

    page.fill("textarea[name=q]", "INSERT INTO sessions SELECT * FROM sessions")
    wait_redrawn(page, lambda: page.click("button[type=submit]"))
    assert "read-only" in page.locator("#sql-status").inner_text()
    assert page.locator("#sql-result tr").count() == 0
    assert [p for p in browser_page.problems() if "status of 400" not in p] == []  # the refusal's own 400


def test_sql_page_downloads_csv(served: Served, browser_page: WatchedPage) -> None:
    """The CSV link downloads the current query's result."""
    page = browser_page.page
    open_page(browser_page, served.url + "/sql")
    page.fill("textarea[name=q]", "SELECT 'a,b' AS x, 2 AS y")
    wait_redrawn(page, lambda: page.click("button[type=submit]"))
    with page.expect_download() as info:
        page.click("#csv")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.splitlines() == ["x,y", '"a,b",2']


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_every_chart_can_be_exported(ext: str, served: Served, browser_page: WatchedPage) -> None:
    """Each chart's action menu saves it as PNG or SVG."""
    page = browser_page.page
    open_page(browser_page, served.url + "/")
    assert page.locator("[data-chart] details summary").count() == 3
    page.click('[data-chart="versions"] details summary')
    link = page.locator(f"[data-chart=versions] .vega-actions a[download$='.{ext}']")
    assert link.inner_text() == f"Save as {ext.upper()}"
    link.dispatch_event("mousedown")  # vega-embed renders the image on mousedown, before the click
    page.wait_for_function("el => /^(data|blob):/.test(el.href)", arg=link.element_handle())
    with page.expect_download() as info:
        link.click()
    data = Path(info.value.path()).read_bytes()
    assert info.value.suggested_filename == f"tallystick-versions.{ext}"
    assert data.startswith(b"\x89PNG") if ext == "png" else b"<svg" in data[:200]
    assert browser_page.problems() == []


def test_hostile_attribute_values_are_shown_as_text_and_never_run(
    served: Served, browser_page: WatchedPage, payloads: tuple[str, ...]
) -> None:
    """Attribute values that are HTML/JS payloads appear literally in charts, forms and tables; none runs."""
    page = browser_page.page
    open_page(browser_page, served.url + "/explore?app=demo&by=attr.probe&view=compare")
    labels = " ".join(page.locator('[data-chart="explore"] svg text').all_text_contents())
    for payload in payloads:
        assert payload[:12] in labels
    wait_redrawn(page, lambda: page.select_option('select[name="fk"] >> nth=1', "attr.probe"))
    page.wait_for_function("() => document.querySelectorAll('#fv2 option').length >= 5")
    suggested = page.eval_on_selector_all("#fv2 option", "els => els.map(e => e.value)")
    assert set(payloads) <= set(suggested)

    open_page(browser_page, served.url + "/sql")
    page.fill(
        "textarea[name=q]", "SELECT attributes->>'probe' AS probe FROM sessions WHERE probe IS NOT NULL ORDER BY 1"
    )
    wait_redrawn(page, lambda: page.click("button[type=submit]"))
    cells = page.locator("#sql-result td").all_text_contents()
    assert sorted(cells) == sorted(payloads)

    from urllib.parse import quote

    for payload in payloads:
        open_page(browser_page, f"{served.url}/explore?app=demo&fk=attr.probe&fv={quote(payload)}")
        assert page.locator('input[name="fv"] >> nth=0').input_value() == payload
        open_page(browser_page, f"{served.url}/sql?q={quote(payload)}")
        assert page.locator("textarea[name=q]").input_value() == payload
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src=x], svg[onload]").count() == 0
    assert browser_page.dialogs == []


def test_login_form_lets_the_token_holder_in(served_with_token: Served, browser_page: WatchedPage) -> None:
    """With a token, pages send the browser to a login form; the right token gets in, a wrong one does not;
    the Log out button ends the session on the server."""
    page = browser_page.page
    page.goto(served_with_token.url + "/explore?app=demo")
    assert urlsplit(page.url).path == "/login"
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "not right" in page.locator(".error").inner_text()
    page.fill("input[name=token]", served_with_token.token or "")
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready=true]")
    assert urlsplit(page.url).path == "/explore"
    assert page.locator('[data-chart="explore"] svg.marks').count() == 1
    cookie = next(c for c in page.context.cookies() if c["name"] == "tallystick_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert served_with_token.token not in cookie["value"]
    page.click(".logout button")  # a POST from the page itself: allowed, and it ends the session
    page.wait_for_url("**/login")
    status, headers, _ = served_with_token.request(
        "GET", "/sql", headers={"Cookie": f"{cookie['name']}={cookie['value']}"}
    )
    assert status == 303 and headers["location"].startswith("/login")
    assert [p for p in browser_page.problems() if "401" not in p] == []


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("rate", 0.02071, "2.1 %"),
        ("recent_release_session_share", 0.4, "40 %"),
        ("never_respond_share", 0.0, "0 %"),
        ("threshold", 0.1, "10 %"),
        ("p50_ms", 16650.0, "17 s"),
        ("baseline_median_ms", 850, "850 ms"),
        ("sessions", 12345, "12,345"),
        ("lift", 3.6, "3.6"),
    ],
    ids=["rate", "share", "zero-share", "threshold", "ms", "int-ms", "count", "plain"],
)
def test_summary_tiles_show_shares_in_percent_and_times_in_units(key: str, value: float, shown: str) -> None:
    """A summary tile named as a share or rate shows %, one named ``*_ms`` a duration, others a plain number."""
    from tallystick.dashboard.pages import show_summary

    assert show_summary(key, value) == shown


def test_summary_tile_labels_drop_the_unit_their_value_now_shows() -> None:
    """``baseline_median_ms`` shown as "20 s" is labelled "baseline median", not "baseline median ms"."""
    from tallystick.dashboard.pages import summary_label

    assert summary_label("baseline_median_ms") == "baseline median"
    assert summary_label("recent_release_session_share") == "recent release session share"
