"""Screenshot of the dashboard's overview for the README, made from demo data.

    .venv/bin/python scripts/screenshot.py [--out docs/images/overview.png] [--sessions 5000]

Builds a DuckDB warehouse from ``tallystick.demo`` (with realistic arrival times) in a
temporary directory, serves the dashboard on 127.0.0.1, and saves a screenshot taken by
Debian's Chromium through Playwright (``apt-get install chromium``; ``$CHROMIUM`` overrides
its path), launched as the dashboard tests launch it (``tallystick.dashboard.chromium``).
Deterministic data for a seed, up to "today".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from tallystick import dashboard, demo
from tallystick.dashboard import chromium
from tallystick.schema import session_from_tree
from tallystick.server.app import create_app
from tallystick.server.config import ServerConfig
from tallystick.server.run import bind, make_server, url_of
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse import open_warehouse
from tallystick.warehouse.loader import Loader

ROOT = Path(__file__).resolve().parent.parent


def build_warehouse(root: Path, sessions: int, seed: int) -> tuple[LocalStore, Path]:
    store = LocalStore(root / "sessions", fsync=False)
    for tree in demo.generate(sessions, seed=seed, arrivals=True):
        session = session_from_tree(tree)
        store.put_if_absent(session_key(session), encode_session(session))
    path = root / "warehouse.duckdb"
    warehouse = open_warehouse(path)
    try:
        Loader(store, warehouse).run()
    finally:
        warehouse.close()
    return store, path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "overview.png")
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--path", default="/", help="dashboard page to capture (default: the overview)")
    args = parser.parse_args()
    path = chromium.executable()
    if path is None:
        print(f"screenshot: Chromium is missing: {chromium.INSTALL_HINT}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="tallystick-screenshot-") as tmp:
        store, warehouse = build_warehouse(Path(tmp), args.sessions, args.seed)
        app = create_app(ServerConfig(storage_url=store.url, applications=frozenset({demo.APP})), store)
        sock = bind("127.0.0.1", 0)
        server = make_server(dashboard.mount(app, warehouse), sock, lifecycle_logs=False)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**chromium.launch_options(path))
                page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
                page.goto(url_of(sock) + args.path)
                page.wait_for_selector("body[data-ready=true]", timeout=15_000)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
