"""Screenshots of every dashboard page for the README and docs, taken from the live demo.

    .venv/bin/python scripts/screenshot.py [--out docs/images] [--sessions 5000] [--only overview]

Starts ``tallystick up --demo`` on 127.0.0.1 in a temporary data directory (so the pictures
show exactly what a new user sees: six months of history that arrived as it would under
upload-on-next-run), waits until the demo is loaded, and saves a full-page screenshot of
the overview, explore (over time and compared), every analysis, and the SQL page, taken by
Debian's Chromium through Playwright (``apt-get install chromium``; ``$CHROMIUM`` overrides
its path). Then the same for a new application with three sessions on one day
(``new-app.png``). Deterministic data for a seed, up to "today".
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tallystick.analysis import ANALYSES
from tallystick.dashboard import chromium

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = "/explore?metric=sessions&by=attr.shell&grain=week"
COMPARE = "/explore?metric=event.UnknownCommand&by=attr.tabCompletion&view=compare"
PAGES = {
    "overview": "/",
    "explore": EXPLORE,
    "explore-compare": COMPARE,
    **{f"analysis-{a.name}": f"/analyses/{a.name}?app=demo" for a in ANALYSES},
    "sql": "/sql?q="
    + urllib.request.quote('SELECT "applicationVersion", count(*) FROM sessions GROUP BY 1 ORDER BY 2 DESC'),
}


def _up(data: Path, sessions: int, seed: int, *, demo: bool) -> tuple[subprocess.Popen[str], str]:
    """``tallystick up`` on a free port; its process and URL once it serves."""
    script = Path(sys.executable).parent / "tallystick"
    argv = [str(script), "up", "--port", "0", "--data-dir", str(data), "--load-every", "1s", "--app", "newtool"]
    if demo:
        argv += ["--demo", "--demo-sessions", str(sessions), "--seed", str(seed)]
    up = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert up.stderr is not None
    for line in up.stderr:
        if match := re.search(r"ingest on (http://127\.0\.0\.1:\d+)", line):
            return up, match.group(1)
    raise SystemExit("screenshot: `tallystick up` did not start")


def _wait_loaded(up: subprocess.Popen[str]) -> None:
    """Until the demo's sessions are all loaded (its `demo:` line says how many arrived)."""
    assert up.stderr is not None
    expected, loaded = None, 0
    deadline = time.monotonic() + 300
    for line in up.stderr:
        if line.startswith("demo: "):
            expected = sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:sessions of history|sent)", line))
        if line.startswith("loader: "):
            loaded += int(line.split()[1].replace(",", ""))
        if (expected is not None and loaded >= expected) or time.monotonic() > deadline:
            return


def _three_sessions(url: str) -> None:
    """A new application's first three sessions, one user, today."""
    now = datetime.now(UTC).replace(microsecond=0)
    user = str(uuid.uuid4())
    sessions: list[dict[str, Any]] = []
    for i in range(3):
        start = now - timedelta(hours=3 - i)
        sessions.append(
            {
                "sessionId": str(uuid.uuid4()),
                "userId": user,
                "sessionStartTime": start.isoformat().replace("+00:00", "Z"),
                "sessionEndTime": (start + timedelta(seconds=2)).isoformat().replace("+00:00", "Z"),
                "applicationId": "newtool",
                "applicationVersion": "0.1.0",
                "attributes": {"shell": "zsh", "osArchitecture": "arm64"},
                "events": [],
                "spans": [
                    {
                        "type": "Startup",
                        "startTime": start.isoformat().replace("+00:00", "Z"),
                        "endTime": (start + timedelta(milliseconds=300 + 50 * i)).isoformat().replace("+00:00", "Z"),
                    }
                ],
            }
        )
    body = json.dumps({"sessions": sessions}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        f"{url}/v1/batches", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server on 127.0.0.1
        assert response.status == 200


def _shoot(page: Any, url: str, out: Path) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.screenshot(path=str(out), full_page=True)
    print(f"saved {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="directory for the PNGs")
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", action="append", choices=[*PAGES, "new-app"], help="only these pages")
    args = parser.parse_args()
    path = chromium.executable()
    if path is None:
        print(f"screenshot: Chromium is missing: {chromium.INSTALL_HINT}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    wanted = set(args.only or [*PAGES, "new-app"])
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tallystick-screenshot-") as tmp:
        up, url = _up(Path(tmp) / "demo", args.sessions, args.seed, demo=True)
        try:
            _wait_loaded(up)
            _three_sessions(url)
            time.sleep(3)  # a load cycle or two for the new app's sessions
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**chromium.launch_options(path))
                page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
                for name, page_path in PAGES.items():
                    if name in wanted:
                        _shoot(page, url + page_path, args.out / f"{name}.png")
                if "new-app" in wanted:
                    _shoot(page, url + "/?app=newtool", args.out / "new-app.png")
                browser.close()
        finally:
            up.terminate()
            up.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
