"""The published site in a real Chromium, opened from disk with the network off: every chart drawn, no request out."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_the_site_opened_from_disk_offline_draws_every_chart_and_requests_nothing(
    browser: Any, planted_site: Path
) -> None:
    """file://.../index.html offline: each chart is an SVG with marks and a size, and only file: URLs are asked for."""
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    requests: list[str] = []
    problems: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto((planted_site / "index.html").as_uri())
        page.wait_for_load_state("load")
        charts = page.eval_on_selector_all(
            "section.published",
            """sections => sections.map(s => {
                const svg = s.querySelector('figure svg');
                const box = svg ? svg.getBoundingClientRect() : null;
                return {
                    id: s.id,
                    width: box ? box.width : 0,
                    height: box ? box.height : 0,
                    marks: svg ? svg.querySelectorAll('rect, path, circle').length : 0,
                };
            })""",
        )
        page.click("#collected summary")
        listing_visible = page.is_visible("#collected table")
    finally:
        context.close()
    assert len(charts) == 6
    for chart in charts:
        assert chart["width"] > 300, chart
        assert chart["height"] > 30, chart
        assert chart["marks"] > 0, chart
    assert listing_visible
    assert requests
    assert [u for u in requests if not u.startswith("file://")] == []
    assert problems == []
