"""Screenshots of the public report ``tallystick publish`` writes with its default config, for the docs.

    .venv/bin/python scripts/publish_screenshot.py [--sessions 20000] [--site DIR]

Builds a DuckDB warehouse from ``tallystick.demo`` in a temporary directory, publishes the
default config into ``--site`` (default: a temporary directory), opens ``index.html`` from disk
with the network off in Debian's Chromium (launched as the tests launch it,
``tallystick.dashboard.chromium``) and saves ``docs/images/publish.png`` (the top of the page)
and ``docs/images/publish-full.png`` (the whole page; the listing of what is collected folded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tallystick import demo
from tallystick.dashboard import chromium
from tallystick.publish import load_config, publish
from tallystick.schema import session_from_tree
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.memory import MemoryStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader

ROOT = Path(__file__).resolve().parent.parent
END = datetime(2025, 6, 30, tzinfo=UTC)  # fixed, so the pictures only change when the site does


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--site", type=Path, help="keep the site here (default: a temporary directory)")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    path = chromium.executable()
    if path is None:
        print(f"publish_screenshot: Chromium is missing: {chromium.INSTALL_HINT}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="tallystick-publish-") as tmp:
        store = MemoryStore()
        for tree in demo.generate(args.sessions, days=120, seed=args.seed, end=END):
            session = session_from_tree(tree)
            store.put_if_absent(session_key(session), encode_session(session))
        warehouse = open_warehouse(Path(tmp) / "warehouse.duckdb")
        try:
            Loader(store, warehouse).run()
            site = args.site or Path(tmp) / "site"
            written = publish(warehouse, load_config(None), site, now=END)
        finally:
            warehouse.close()
        print(f"site: {len(written.files)} files, {written.bytes:,} bytes in {site}")
        args.images.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**chromium.launch_options(path))
            context = browser.new_context(offline=True, viewport={"width": 900, "height": 1100})
            page = context.new_page()
            page.goto((site / "index.html").as_uri())
            page.screenshot(path=str(args.images / "publish.png"))
            page.screenshot(path=str(args.images / "publish-full.png"), full_page=True)
            browser.close()
    print(f"saved {args.images / 'publish.png'} and {args.images / 'publish-full.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
