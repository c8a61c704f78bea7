"""The request-body size a proxy on the way to the server lets through, learned from its refusals.

Only the upload process loads this module. ``<data dir>/body-limit`` holds one line,
``<bytes> <until> <route>``: batches are built to at most ``bytes`` until the epoch second
``until``, on the route (server URL and proxy) whose digest is ``route``. A proxy's
refusal of a body of ``n`` bytes (its 413, or the connection closed with no answer while
smaller requests got one) lowers the limit to ``n // 2``: a refused batch is sent again
in halves, down to single sessions. A body larger than the limit that gets through raises
it to that size. The line is kept for ``REMEMBERED`` seconds after it was last changed, so
a proxy whose limit was raised is used to the full again a day later; another route (a
laptop that left the office's proxy) starts afresh. A missing or garbled file means "no
limit known". Only the holder of ``upload.lock`` writes it.
"""

from __future__ import annotations

import os

from tallystick.client import _queue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

FILE = "body-limit"
REMEMBERED = 24 * 3600.0
SMALLEST = 1024  # no limit below this is believed: a session alone is larger


def route(server_url: str, environ: Mapping[str, str]) -> str:
    """A digest of where requests to ``server_url`` go: directly, or through which proxy (its address only:
    a proxy URL may hold a password, which is neither written nor hashed)."""
    import hashlib

    from tallystick.client._transport import proxy_for, shown_url, split_url

    try:
        scheme, host, port, _ = split_url(server_url)
        found = proxy_for(scheme, host, port, environ)
    except OSError:
        found = None
    proxy = shown_url(found if "://" in found else "http://" + found) if found else "direct"
    return hashlib.sha256(f"{server_url.rstrip('/')} {proxy}".encode()).hexdigest()[:16]


def _parse(path: str | None, now: float) -> tuple[int, float, str] | None:
    """``(bytes, until, route)`` from the file at ``path`` while in force, else None."""
    data = _queue.read_bytes(path, 256) if path else None
    parts = data.decode("ascii", "replace").split() if data else []
    try:
        size, until = int(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return None
    if not now < until <= now + REMEMBERED + 60.0:  # over, or written by a clock since set back
        return None
    return max(size, SMALLEST), until, parts[2] if len(parts) > 2 else ""


def read(data_dir: str, now: float) -> tuple[int, float] | None:
    """The limit in force on whatever route, and until when (for ``show``), or None."""
    found = _parse(os.path.join(data_dir, FILE), now)
    return found[:2] if found else None


class BodyLimit:
    """The learned limit for one route: ``bytes`` (None: none known), changed by ``refused``/``accepted``."""

    def __init__(self, data_dir: str | None, route: str, now: float) -> None:
        self.path = os.path.join(data_dir, FILE) if data_dir else None
        self.route = route
        self.bytes: int | None = None
        self.until = 0.0
        found = _parse(self.path, now)
        if found is not None and found[2] == route:
            self.bytes, self.until = found[0], found[1]

    def refused(self, size: int, now: float) -> int:
        """A body of ``size`` bytes was refused as too large: the limit is now at most half of it; the new limit."""
        self._set(max(min(self.bytes or size, size // 2), SMALLEST), now)
        assert self.bytes is not None
        return self.bytes

    def accepted(self, size: int, now: float) -> None:
        """A body of ``size`` bytes got through: a limit below it was too low (or the proxy's was raised)."""
        if self.bytes is not None and size > self.bytes:
            self._set(size, now)

    def _set(self, size: int, now: float) -> None:
        self.bytes, self.until = size, now + REMEMBERED
        if self.path is None:
            return
        try:
            line = f"{size} {self.until:.0f} {self.route}\n"
            _queue.atomic_write(self.path, line.encode("ascii"), sync=False)
        except OSError:  # a read-only or vanished data directory: learned for this process only
            pass
