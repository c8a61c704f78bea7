"""The ``tallystick`` command's entry point: one line, not a traceback, when the server parts are missing.

``pip install tallystick`` is the client alone (no dependencies, for other people's tools) and
still installs the ``tallystick`` script; everything the script runs needs ``tallystick[server]``.
"""

from __future__ import annotations

import sys

INSTALL = "pip install 'tallystick[server]'"


def main() -> int:
    try:
        from tallystick.cli import main as run
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == "tallystick":
            raise
        print(
            f"tallystick: error: the tallystick command needs the server parts ({missing} is not installed): {INSTALL}",
            file=sys.stderr,
        )
        return 1
    return run()
