"""The vendored chart libraries: present, pinned, and nothing fetched from elsewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import tallystick.dashboard

HERE = Path(tallystick.dashboard.__file__).parent
VENDOR = HERE / "static" / "vendor"


def test_vendored_builds_match_the_pinned_versions() -> None:
    """static/vendor/ holds the builds of exactly the versions package-lock.json pins."""
    lock = json.loads((HERE / "assets-src" / "package-lock.json").read_text())
    versions = (VENDOR / "VERSIONS").read_text()
    for name in ("vega", "vega-lite", "vega-embed", "vega-interpreter"):
        pinned = lock["packages"][f"node_modules/{name}"]["version"]
        assert f"{name} {pinned} " in versions
        assert (VENDOR / f"{name}.min.js").stat().st_size > 5000
        assert (VENDOR / f"LICENSE.{name}").exists()


def test_pages_load_nothing_from_other_sites() -> None:
    """Templates, CSS and the dashboard's JS name no external URL (the Vega-Lite $schema is only an id)."""
    files = [*(HERE / "templates").glob("*.html"), HERE / "static" / "dashboard.js", HERE / "static" / "dashboard.css"]
    for f in files:
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", f.read_text()), f.name
