"""When to upload: the state shared by every run of a tool on one machine.

``<data dir>/upload-state`` holds one line, ``<next> <failures> <outcome>``:
no upload attempt starts before the epoch second ``next``; ``failures`` counts
the attempts that failed in a row; ``outcome`` is how the last one ended
(``sent``, ``attempt`` while one runs, or why it failed: ``timeout``,
``certificate``, ``proxy``, ``http503``, ...). A missing or garbled file means
"due now". See DESIGN.md beside this file for who writes it, and the races.

Host runs only read it (one small file, no lock); the upload process claims an
attempt under ``upload.lock`` by writing ``next`` as if the attempt will fail, so
every run that starts meanwhile sees a back-off and starts nothing.
"""

from __future__ import annotations

import os

from tallystick.client import _files

STATE_FILE = "upload-state"
FIRST_BACKOFF = 60.0  # seconds after the first failure; doubles with each failure in a row
MAX_BACKOFF = 24 * 3600.0
ATTEMPT = "attempt"
SENT = "sent"


class State:
    __slots__ = ("failures", "next", "outcome")

    def __init__(self, next: float = 0.0, failures: int = 0, outcome: str = "") -> None:
        self.next = next
        self.failures = failures
        self.outcome = outcome

    def __repr__(self) -> str:
        return f"State(next={self.next}, failures={self.failures}, outcome={self.outcome!r})"


def path(data_dir: str) -> str:
    return os.path.join(data_dir, STATE_FILE)


def read(data_dir: str) -> State:
    """The shared state; anything unreadable is the empty state (due now)."""
    data = _files.read_bytes(path(data_dir), 256)
    if not data:
        return State()
    parts = data.decode("ascii", "replace").split()
    try:
        next_time = float(parts[0])
        failures = int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        return State()
    if not -1e12 < next_time < 1e12:  # NaN, infinities, nonsense
        return State()
    outcome = parts[2][:40] if len(parts) > 2 and parts[2].isascii() and parts[2].isalnum() else ""
    return State(next_time, max(failures, 0), outcome)


def write(data_dir: str, state: State) -> None:
    line = f"{state.next:.3f} {state.failures} {state.outcome or '-'}\n"
    _files.atomic_write(path(data_dir), line.encode("ascii"), sync=False)


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row (at least one)."""
    return min(FIRST_BACKOFF * 2.0 ** max(min(failures, 30) - 1, 0), MAX_BACKOFF)


def due(state: State, now: float, *, ci: bool, interval: float) -> bool:
    """Whether an upload may start now. On CI the interval after a success does not apply (back-offs do).

    ``next`` further ahead than any wait written here (a day, or ``interval`` if longer) means
    the clock went back since it was written (a machine that booted years ahead, then synced):
    due now, or nothing would be sent until the clock caught up.
    """
    return state.next <= now or state.next - now > max(MAX_BACKOFF, interval) + 60.0 or (ci and state.outcome == SENT)


def worth_starting(state: State, now: float, *, ci: bool, interval: float) -> bool:
    """Whether a run should start the upload process at its exit.

    On CI also while another run's attempt is in flight: the new process waits for
    it, then sends what is left, including this run's session.
    """
    return due(state, now, ci=ci, interval=interval) or (ci and state.outcome == ATTEMPT)
