"""What a person sees in Chromium, on a laptop and on a phone: nothing cut off, nothing on top of something else.

Measured from the laid-out page (bounding boxes), not from the HTML: a tile whose text is
cut with an ellipsis, a chart title running past its chart or under the export button,
or a page wider than the screen fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.conftest import Served
from tallystick.analysis import ANALYSES

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PAGES = {
    "overview": "/",
    "explore": "/explore?app=demo&by=attr.shell",
    "sql": "/sql",
    "analyses": "/analyses",
    **{f"analysis {a.name}": f"/analyses/{a.name}?app=demo" for a in ANALYSES},
}

# Everything measured in one round trip: the page's width, each tile's text against its box,
# each chart's title against its drawing and against the export button.
MEASURE = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  // The words (runs without spaces: "2.5.0", "2026-06-06", "fish") that the browser laid out on two lines.
  const broken = (el) => {
    const out = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (lines.size > 1) out.push(m[0]);
      }
    }
    return out;
  };
  const tiles = [...document.querySelectorAll(".totals > div")].map((tile) => {
    const dd = tile.querySelector("dd");
    return {
      text: dd.textContent, box: box(tile), clipped: dd.scrollWidth > dd.clientWidth + 1, broken: broken(dd),
    };
  });
  const charts = [...document.querySelectorAll("[data-chart]")].map((el) => {
    const svg = el.querySelector("svg.marks");
    const title = svg && svg.querySelector(".role-title");
    const actions = el.querySelector(".vega-actions-wrapper, details");
    return {
      name: el.dataset.chart,
      svg: svg ? box(svg) : null,
      title: title ? box(title) : null,
      titleText: title ? title.textContent : "",
      actions: actions ? box(actions) : null,
    };
  });
  return { width: document.documentElement.scrollWidth, viewport: window.innerWidth, tiles, charts };
}"""


def inside(inner: list[float], outer: list[float], slack: float = 1.0) -> bool:
    return (
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


@pytest.fixture(scope="module")
def pages(browser: Any) -> Iterator[dict[str, Any]]:
    """A page per viewport, reused across the module (each test navigates its own)."""
    contexts = {name: browser.new_context(viewport=size) for name, size in VIEWPORTS.items()}
    try:
        for context in contexts.values():
            context.set_default_timeout(15_000)
        yield {name: context.new_page() for name, context in contexts.items()}
    finally:
        for context in contexts.values():
            context.close()


def laid_out(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return dict(page.evaluate(MEASURE))


# Every page on a phone, where things run out of room; on a laptop the pages with tiles and a form.
CASES = [("phone", name) for name in PAGES] + [("desktop", name) for name in ("overview", "explore", "analysis spans")]


@pytest.mark.parametrize(("viewport", "name"), CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_page_fits_the_screen_and_cuts_nothing_off(
    viewport: str, name: str, served: Served, pages: dict[str, Any]
) -> None:
    """No sideways scrolling; every tile shows its whole value, each word of it on one line; each chart title fits,
    clear of the export button."""
    seen = laid_out(pages[viewport], served.url + PAGES[name])
    assert seen["width"] <= seen["viewport"], f"{name} is wider than the screen"
    for tile in seen["tiles"]:
        assert not tile["clipped"], f"tile {tile['text']!r} is cut off"
        assert not tile["broken"], f"tile {tile['text']!r} breaks inside {tile['broken']} {tile['box']}"
        assert inside(tile["box"], [0, 0, seen["viewport"], 10_000]), f"tile {tile['text']!r} is off screen"
    for a, b in zip(seen["tiles"], seen["tiles"][1:], strict=False):
        assert not overlap(a["box"], b["box"]), f"tiles {a['text']!r} and {b['text']!r} overlap"
    for chart in seen["charts"]:
        if chart["title"] is None:
            continue
        assert inside(chart["title"], chart["svg"]), f"{chart['name']}'s title {chart['titleText']!r} is cut off"
        if chart["actions"]:
            assert not overlap(chart["title"], chart["actions"]), f"{chart['name']}'s title is under the export button"


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_overview_tiles_show_the_whole_period_and_last_arrival(
    viewport: str, served: Served, pages: dict[str, Any]
) -> None:
    """The period and last-arrival tiles hold both dates and the time zone, not an ellipsis."""
    seen = laid_out(pages[viewport], served.url + "/")
    texts = {t["text"] for t in seen["tiles"]}
    assert any(" to " in t and t.count("-") == 4 for t in texts), texts
    assert any(t.endswith("UTC") for t in texts), texts
    assert not any(t["clipped"] for t in seen["tiles"])


def test_the_digest_html_fits_a_phone(served: Served, pages: dict[str, Any], tmp_path: Path) -> None:
    """`tallystick digest --html` opened on a phone: charts and tables within the screen's width."""
    from tallystick.analysis import digest
    from tallystick.warehouse import open_warehouse

    warehouse = open_warehouse(served.warehouse, read_only=True)
    try:
        text = digest.html(digest.build(warehouse, "demo", until=None, days=7))
    finally:
        warehouse.close()
    path = tmp_path / "digest.html"
    path.write_text(text, encoding="utf-8")
    page = pages["phone"]
    page.goto(path.as_uri())
    assert page.locator("figure svg").count() >= 1
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport
