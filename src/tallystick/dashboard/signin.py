"""Signing in to the dashboard: sessions that expire and can be revoked, a throttle on attempts,
and a minimum strength for the token.

Design note
-----------
**Sessions.** A right token at ``/login`` starts a session: a random ID (32 bytes from
``secrets``) goes into the cookie, and the server keeps only its SHA-256 with an expiry
(``lifetime_seconds``, 12 h; the cookie's ``Max-Age`` says the same). Every request with
the cookie looks the hash up. Signing out (``POST /logout``) forgets it, so a copied cookie
stops working at once; so does a restart (sessions live in this process's memory, as the
dashboard does). At most ``max_sessions`` are kept; past that, the oldest is forgotten
first. The cookie never holds the token or anything derived from it.

**Throttle.** Each wrong token counts against the client's address for ``window_seconds``
(60 s). From ``max_failures`` (10) failures on, every attempt from that address, right
or wrong, gets ``429`` with ``Retry-After`` until the oldest failure ages out: guessing
runs at about 10 tokens a minute instead of thousands a second. Addresses are kept in
memory only, never logged, at most ``max_clients`` of them (the oldest forgotten first).
Behind a reverse proxy every client has the proxy's address, so a guesser slows everyone's
sign-in, never anyone's signed-in use.

**Token strength.** A token guards the dashboard from whoever can reach it; the throttle
bounds guessing, the length makes it hopeless: at least ``MIN_TOKEN_CHARS`` characters,
not mostly one character. ``tallystick up`` refuses a weaker one, saying how to make one.

Races: the handlers run on the event loop, one at a time, so the maps need no lock.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MIN_TOKEN_CHARS = 20
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"  # noqa: S105 - a command


def token_problem(token: str) -> str | None:
    """Why ``token`` is too weak to guard a dashboard, or None."""
    if len(token) < MIN_TOKEN_CHARS or len(set(token)) < 8:
        return (
            f"the dashboard token is too weak: use at least {MIN_TOKEN_CHARS} characters, not mostly repeated "
            f"(make one with: {MAKE_TOKEN})"
        )
    return None


def _key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class SignIns:
    """The dashboard's signed-in sessions: start, check, end."""

    def __init__(
        self,
        *,
        lifetime_seconds: float = 12 * 3600,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def start(self) -> str:
        """A new session's ID (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        self._expiry[_key(session_id)] = self.clock() + self.lifetime_seconds
        while len(self._expiry) > self.max_sessions:
            self._expiry.popitem(last=False)
        return session_id

    def valid(self, session_id: str) -> bool:
        if not session_id:
            return False
        key = _key(session_id)
        expiry = self._expiry.get(key)
        if expiry is None:
            return False
        if self.clock() >= expiry:
            del self._expiry[key]
            return False
        return True

    def end(self, session_id: str) -> None:
        """Forget the session: its cookie no longer signs anyone in."""
        if session_id:
            self._expiry.pop(_key(session_id), None)


class Throttle:
    """Wrong tokens per client address; how long an address must wait before trying again."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window_seconds: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_clients = max_clients
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        horizon = self.clock() - self.window_seconds
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before its next attempt, or None if it may try now."""
        times = self._recent(client)
        if times is None or len(times) < self.max_failures:
            return None
        return max(1, int(times[0] + self.window_seconds - self.clock() + 0.999))

    def failed(self, client: str) -> None:
        times = self._recent(client)
        if times is None:
            times = self._failures[client] = deque(maxlen=self.max_failures)
        times.append(self.clock())
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
