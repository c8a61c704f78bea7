"""Headless Chromium on the dashboard: where Debian's binary is and how to launch it.

The one definition the dashboard tests (``tests/fixtures/browser.py``) and the README
screenshot (``scripts/screenshot.py``) share, so the pictures and the tests see the
dashboard through the same browser settings. The options are Playwright's
``chromium.launch`` keywords; nothing here imports Playwright.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

INSTALL_HINT = "install it with `sudo apt-get install chromium` (or set $CHROMIUM to its path)"

# No sandbox (containers, root), no GPU, and nothing fetched in the background: the
# browser talks only to the dashboard on 127.0.0.1. /tmp instead of /dev/shm, which is
# small in containers and makes pages crash.
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

LAUNCH_TIMEOUT_MS = 30_000


def executable() -> str | None:
    """Debian's Chromium (``apt-get install chromium``); ``$CHROMIUM`` overrides; None when missing."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def launch_options(path: str) -> dict[str, Any]:
    """Keyword arguments for Playwright's ``chromium.launch`` of the browser at ``path``."""
    return {"executable_path": path, "args": list(ARGS), "timeout": LAUNCH_TIMEOUT_MS}
