"""The data directory on disk: atomic files, the upload queue, the upload schedule, the erasure secret.

The queue is one JSON file per session in ``<data dir>/queue``. See DESIGN.md beside
this file for the steps and the races. In short: files appear only by atomic rename
(so a reader never sees half a session), the file name starts with the session's
start time (so sorting names sorts by age), and every reader tolerates files
vanishing under it (another run uploaded them).

The schedule says when to upload; it is shared by every run of a tool on one machine.
``<data dir>/upload-state`` holds one line, ``<next> <failures> <outcome>``:
no upload attempt starts before the epoch second ``next``; ``failures`` counts
the attempts that failed in a row; ``outcome`` is how the last one ended
(``sent``, ``attempt`` while one runs, or why it failed: ``timeout``,
``certificate``, ``proxy``, ``http503``, ...). A missing or garbled file means
"due now". DESIGN.md says who writes it, and the races.

Host runs only read it (one small file, no lock); the upload process claims an
attempt under ``upload.lock`` by writing ``next`` as if the attempt will fail, so
every run that starts meanwhile sees a back-off and starts nothing.

The erasure secret, and the erasure requests ``forget`` queues. Beside ``user-id`` the
client keeps ``erasure-secret`` (mode 0600): one line ``<userId> <secret> <commitment>``
per user ID. The secret is 32 random bytes as hex, made with the user ID it belongs to;
the commitment (``_rules.erasure_commitment``) is computed once then and kept, so a run
reads one small file and hashes nothing. Disabling telemetry rotates the user ID but
keeps the old ID's line, so a later ``forget`` still erases what was sent under it.
Sessions sent before the client had a secret carry no commitment and cannot be erased
this way (the maintainer's ``delete-user`` can).

``forget`` writes ``{"userId", "secret"}`` for every kept line as an *erasure request*
file into ``<data dir>/erasures/`` (atomically, like a queued session), then the caller
deletes ``user-id``; ``erasure-secret`` is deleted too: each secret leaves the machine
exactly once, in its request. The upload process sends waiting requests before any
session, whatever the consent (an erasure records nothing), and keeps each until
the server answers 202; a request the server calls malformed (400/413/415/422) is
dropped and counted; like sessions, requests older than ``max_age_days`` are
dropped unsent. Any run of the tool with a server to send to starts the upload
process while a request waits (see ``_client.py`` and ``_uploader.py``).

One module for all of these: a recording run needs each of them (it sweeps and writes
the queue, reads the schedule and the erasure commitment), and every module it loads
costs the host tool a fixed part of a millisecond.
"""

# ruff: noqa: SIM105  (contextlib would cost import time on the host's exit path)

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# -- atomic files ------------------------------------------------------------------


def atomic_write(path: str, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part.

    Temp file in the same directory, fsync, rename over ``path``, fsync the directory.
    The temp name starts with ``.tmp-`` so queue readers skip it; on failure it is removed.
    """
    directory = os.path.dirname(path) or "."
    temp = os.path.join(directory, f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{os.path.basename(path)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if sync:
                _sync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    if sync:
        sync_directory(directory)


def _sync(fd: int) -> None:
    # fdatasync writes the data and the size a reader needs, skipping the timestamps.
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def sync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (where the platform allows opening directories)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_bytes(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of ``path``, or None if it cannot be read.

    ``os.read``, not ``open``: a recording run reads a few small files, and a file object
    costs each one an object, an ``fstat`` and an ``ioctl``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        chunks = []
        while limit > 0:
            chunk = os.read(fd, limit)
            if not chunk:
                break
            chunks.append(chunk)
            limit -= len(chunk)
    except OSError:  # a directory, an I/O error
        return None
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def remove(path: str) -> bool:
    """Delete ``path``; whether it was deleted. Gone already, or undeletable (a read-only queue on a
    locked-down runner): False, never an error, so a pass goes on (such a file is sent again: 304)."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


# -- the queue ---------------------------------------------------------------------

SUFFIX = ".json"
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600.0
MAX_REJECTED_FILES = 20
ANSWER_SUFFIX = ".answer"
MAX_ANSWER_BYTES = 16 * 1024


class Entry:
    """One queued session file."""

    __slots__ = ("name", "path", "size", "time")

    def __init__(self, name: str, path: str, size: int, time: float) -> None:
        self.name = name
        self.path = path
        self.size = size
        self.time = time

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, size={self.size})"


def file_name(start_time: float, session_id: str) -> str:
    return f"{round(start_time * 1_000_000):017d}-{session_id}{SUFFIX}"


def _time_from_name(name: str) -> float | None:
    prefix = name.partition("-")[0]
    return int(prefix) / 1_000_000 if prefix.isdigit() and len(prefix) == 17 else None


class Queue:
    """The queue directory of one tool's data directory, and the small state beside it."""

    def __init__(
        self,
        data_dir: str,
        *,
        max_files: int,
        max_bytes: int,
        max_age_seconds: float,
        clock: Callable[[], float],
        count: Callable[[str, int], None],
    ) -> None:
        self.data_dir = data_dir
        self.directory = os.path.join(data_dir, "queue")
        self.rejected_directory = os.path.join(data_dir, "rejected")
        self.held_directory = os.path.join(data_dir, "held")
        self.drops_path = os.path.join(data_dir, "drops.json")
        self.lock_path = os.path.join(data_dir, "upload.lock")
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._count = count

    # -- reading -----------------------------------------------------------

    def entries(self, directory: str | None = None, *, due_by: float | None = None) -> list[Entry]:
        """The queued session files, oldest first; temp files and strangers are skipped.

        ``directory``: another directory of sessions (``held_directory``); ``due_by``: only
        files whose mtime (a held session's "not before") is at most this.
        """
        found: list[Entry] = []
        try:
            scanner = os.scandir(directory or self.directory)
        except OSError:
            return found
        with scanner:
            for item in scanner:
                name = item.name
                if not name.endswith(SUFFIX) or name.startswith("."):
                    continue
                try:
                    stat = item.stat()
                except OSError:
                    continue
                if due_by is not None and stat.st_mtime > due_by:
                    continue
                when = _time_from_name(name)
                found.append(Entry(name, item.path, stat.st_size, stat.st_mtime if when is None else when))
        found.sort(key=lambda e: (e.time, e.name))
        return found

    def hold(self, entry: Entry, until: float, reason: str = "proxyTooLarge") -> None:
        """Keep a session out of passes until ``until`` (its file's mtime, in ``held/``); counted when first held.

        For a session a proxy in front of the server refused as too large (``reason``: its 413, or
        ``proxyClosed``, no answer): it may fit once the proxy is fixed, so it is tried again after
        ``until``, until it is ``max_age_seconds`` old.
        """
        target = os.path.join(self.held_directory, entry.name)
        try:
            if entry.path != target:
                os.makedirs(self.held_directory, mode=0o700, exist_ok=True)
                os.replace(entry.path, target)
                self._count(reason, 1)
            os.utime(target, (until, until))
        except OSError:  # gone meanwhile (another run sent it), or a read-only queue: sent again next pass
            pass

    def depth(self) -> tuple[int, int]:
        """How many sessions wait, and their bytes."""
        entries = self.entries()
        return len(entries), sum(e.size for e in entries)

    def load(self, entry: Entry, limit: int) -> tuple[bytes, str] | None:
        """The session in ``entry`` and its ID, if it is a JSON object; a corrupt file is deleted."""
        data = read_bytes(entry.path, limit + 1)
        if data is None:
            return None  # vanished: another run took it
        import json  # here, not at the top: only the upload thread and ``show`` read sessions

        try:
            tree = json.loads(data) if len(data) <= limit else None
        except ValueError:
            tree = None
        session_id = tree.get("sessionId") if isinstance(tree, dict) else None
        if not isinstance(session_id, str):
            if remove(entry.path):
                self._count("corrupt", 1)
            return None
        return data, session_id

    # -- writing -----------------------------------------------------------

    def put(self, name: str, body: bytes, entries: list[Entry] | None = None) -> bool:
        """Queue one session; the oldest are dropped to keep under the caps. Whether it was queued.

        ``entries``: the queue's ``entries()`` if the caller has just listed them (taken and changed).
        """
        if len(body) > self.max_bytes:
            self._count("tooBig", 1)
            return False
        if entries is None:
            entries = self.entries()
        total = sum(e.size for e in entries)
        while entries and (len(entries) + 1 > self.max_files or total + len(body) > self.max_bytes):
            oldest = entries.pop(0)
            total -= oldest.size
            if remove(oldest.path):
                self._count("queueFull", 1)
        # No fsync: the host's exit must not wait on the disk (1-20 ms on a busy one). A power cut
        # right after may leave an empty or cut file, deleted as corrupt when read: one session lost.
        path = os.path.join(self.directory, name)
        try:
            atomic_write(path, body, sync=False)
        except FileNotFoundError:  # no queue directory yet (the first session, or deleted meanwhile)
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            atomic_write(path, body, sync=False)
        return True

    def remove(self, entry: Entry) -> None:
        remove(entry.path)

    def reject(self, entry: Entry, answer: bytes = b"") -> None:
        """Move a session the server will never accept out of the queue, with the server's answer beside it.

        The last ``MAX_REJECTED_FILES`` are kept for ``show``: ``<name>`` and ``<name>.answer``.
        """
        try:
            os.makedirs(self.rejected_directory, mode=0o700, exist_ok=True)
            target = os.path.join(self.rejected_directory, entry.name)
            os.replace(entry.path, target)
        except FileNotFoundError:
            return
        except OSError:
            remove(entry.path)
        else:
            try:
                atomic_write(target + ANSWER_SUFFIX, answer[:MAX_ANSWER_BYTES], sync=False)
            except OSError:
                pass
        self._count("rejected", 1)
        try:
            kept = sorted(name for name in os.listdir(self.rejected_directory) if name.endswith(SUFFIX))
        except OSError:
            return
        for name in kept[:-MAX_REJECTED_FILES]:
            remove(os.path.join(self.rejected_directory, name))
            remove(os.path.join(self.rejected_directory, name + ANSWER_SUFFIX))

    def sweep(self) -> int:
        """Delete sessions past their age and temp files left by crashed writers; how many sessions remain.

        Runs at every start, whatever the consent, so one ``scandir`` and no file read:
        a session's age is the start time in its name (its mtime if the name has none).
        A file whose content is corrupt goes when an uploader reads it, or when it ages out.
        """
        now = self._clock()
        remaining = 0
        for directory in (self.directory, self.held_directory):
            try:
                scanner = os.scandir(directory)
            except OSError:
                continue
            with scanner:
                for item in scanner:
                    name = item.name
                    try:
                        if name.startswith(TEMP_PREFIX):
                            if now - item.stat().st_mtime > STALE_TEMP_SECONDS:
                                remove(item.path)
                            continue
                        if not name.endswith(SUFFIX) or name.startswith("."):
                            continue
                        when = _time_from_name(name)
                        if now - (item.stat().st_mtime if when is None else when) > self.max_age_seconds:
                            if remove(item.path):
                                self._count("expired", 1)
                            continue
                    except OSError:
                        continue
                    remaining += directory == self.directory
        return remaining

    def clear(self) -> None:
        """Delete every queued, held and rejected session (consent withdrawn)."""
        for directory in (self.directory, self.held_directory, self.rejected_directory):
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                remove(os.path.join(directory, name))
        remove(self.drops_path)

    # -- state beside the queue ---------------------------------------------

    def read_drops(self) -> dict[str, int]:
        """Drop counts by reason not yet reported in a session."""
        data = read_bytes(self.drops_path, 64 * 1024)
        if not data:
            return {}
        import json

        try:
            tree = json.loads(data) if data else {}
        except ValueError:
            return {}
        if not isinstance(tree, dict):
            return {}
        return {k: v for k, v in tree.items() if isinstance(k, str) and type(v) is int and v > 0}

    def add_drops(self, drops: dict[str, int]) -> None:
        """Add counts to those not yet reported (the upload process's; a race with another writer may lose some)."""
        if drops:
            merged = self.read_drops()
            for key, n in drops.items():
                merged[key] = merged.get(key, 0) + n
            self.write_drops(merged)

    def write_drops(self, drops: dict[str, int]) -> None:
        if not drops:
            remove(self.drops_path)
            return
        import json

        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        atomic_write(self.drops_path, json.dumps(drops, sort_keys=True).encode(), sync=False)


# -- erasure requests and the secret (``forget``) -------------------------------------

SECRET_FILE = "erasure-secret"  # noqa: S105  (a file name, not a password)
MAX_KEPT_SECRETS = 20  # secrets of earlier user IDs kept (telemetry disabled, then allowed again), newest last
ERASURES_DIRECTORY = "erasures"
ERASURE_PREFIX = "erasure-"


def commitment_for(data_dir: str, user_id: str) -> str | None:
    """The commitment to this installation's secret for ``user_id``, made (with the secret) on first use."""
    path = os.path.join(data_dir, SECRET_FILE)
    for line in read_secrets(path):
        if line[0] == user_id:
            return line[2]
    with IdentityLock(data_dir):  # simultaneous first runs: one makes the secret, the others read it
        known = read_secrets(path)
        for line in known:
            if line[0] == user_id:
                return line[2]
        from tallystick.schema import _rules  # loaded already when a session records

        secret = os.urandom(32).hex()
        commitment = _rules.erasure_commitment(user_id, secret)
        lines = [*known[-(MAX_KEPT_SECRETS - 1) :], (user_id, secret, commitment)]
        try:
            atomic_write(path, "".join(f"{u} {s} {c}\n" for u, s, c in lines).encode())
        except OSError:
            return None  # without a kept secret the commitment would prove nothing later: send none
        return commitment


IDENTITY_LOCK = "identity.lock"
IDENTITY_LOCK_WAIT = 1.0  # seconds; each holder only reads and writes one small file


class IdentityLock:
    """Held while a first run makes the user ID or its secret, so simultaneous first runs agree on them.

    Two runs that both find no ``user-id`` would each make one, and the last rename would
    win: one installation counted as two users, a session whose commitment no kept secret
    proves. Only that path takes it (a run that finds what it needs never does); where it
    cannot be taken (see ``_lock.hold_briefly``) the run goes on unlocked, as before.
    """

    __slots__ = ("_fd", "_path")

    def __init__(self, data_dir: str) -> None:
        self._path = os.path.join(data_dir, IDENTITY_LOCK)
        self._fd: int | None = None

    def __enter__(self) -> IdentityLock:
        from tallystick.client._lock import hold_briefly

        self._fd = hold_briefly(self._path, IDENTITY_LOCK_WAIT)
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


def read_secrets(path: str) -> list[tuple[str, str, str]]:
    """The (user ID, secret, commitment) lines of a secret file that are well formed."""
    data = read_bytes(path, 64 * 1024)
    if data is None:
        return []
    from tallystick.schema import _rules

    found = []
    for line in data.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and _rules.is_erasure_secret(parts[1]) and _rules.is_erasure_secret(parts[2]):
            found.append((parts[0], parts[1], parts[2]))
    return found


def erasure_request_bodies(data_dir: str) -> list[tuple[str, bytes]]:
    """(user ID, erasure request) for every user ID this installation keeps a secret for."""
    return [
        (user_id, f'{{"userId":"{user_id}","secret":"{secret}"}}'.encode())
        for user_id, secret, _ in read_secrets(os.path.join(data_dir, SECRET_FILE))
    ]


def erasure_request_file_name(now: float, user_id: str) -> str:
    """Queue file name of an erasure request (the uploader picks these out and sends them first)."""
    return f"{ERASURE_PREFIX}{int(now * 1000):013d}-{user_id}.json"


def is_erasure_request(name: str) -> bool:
    return name.startswith(ERASURE_PREFIX)


def erasures_directory(data_dir: str) -> str:
    return os.path.join(data_dir, ERASURES_DIRECTORY)


def queue_erasure_requests(data_dir: str, now: float) -> list[str]:
    """Write an erasure request to ``erasures/`` for every kept secret, then delete the secrets; the user IDs."""
    bodies = erasure_request_bodies(data_dir)
    if bodies:
        folder = erasures_directory(data_dir)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for user_id, body in bodies:
            atomic_write(os.path.join(folder, erasure_request_file_name(now, user_id)), body)
    remove(os.path.join(data_dir, SECRET_FILE))
    return [user_id for user_id, _ in bodies]


def erasures_waiting(data_dir: str) -> list[str]:
    """Paths of the erasure requests waiting to be sent, oldest first (one ``listdir``; none: no directory)."""
    folder = erasures_directory(data_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if is_erasure_request(n) and n.endswith(".json")]


def sweep_erasures(data_dir: str, max_age_seconds: float, now: float) -> int:
    """Delete waiting requests older than ``max_age_seconds`` (by the time in their name); how many."""
    removed = 0
    for path in erasures_waiting(data_dir):
        millis = os.path.basename(path)[len(ERASURE_PREFIX) :].partition("-")[0]
        if millis.isdigit() and now - int(millis) / 1000 > max_age_seconds and remove(path):
            removed += 1
    return removed


# -- the upload schedule (upload-state) ------------------------------------------------

STATE_FILE = "upload-state"
FIRST_BACKOFF = 60.0  # seconds after the first failure; doubles with each failure in a row
MAX_BACKOFF = 24 * 3600.0
ATTEMPT = "attempt"
SENT = "sent"


class UploadState:
    __slots__ = ("failures", "next", "outcome")

    def __init__(self, next: float = 0.0, failures: int = 0, outcome: str = "") -> None:
        self.next = next
        self.failures = failures
        self.outcome = outcome

    def __repr__(self) -> str:
        return f"UploadState(next={self.next}, failures={self.failures}, outcome={self.outcome!r})"


def state_path(data_dir: str) -> str:
    return os.path.join(data_dir, STATE_FILE)


def read_state(data_dir: str) -> UploadState:
    """The shared state; anything unreadable is the empty state (due now)."""
    data = read_bytes(state_path(data_dir), 256)
    if not data:
        return UploadState()
    parts = data.decode("ascii", "replace").split()
    try:
        next_time = float(parts[0])
        # "0", the usual count, without int(): a process's first int() of a string costs 20-25 us on some
        # CPython builds (3.11.7 built by pyenv here; 2-4 us in Debian's 3.11.2), at the host's exit.
        failures = (0 if parts[1] == "0" else int(parts[1])) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        return UploadState()
    if not -1e12 < next_time < 1e12:  # NaN, infinities, nonsense
        return UploadState()
    outcome = parts[2][:40] if len(parts) > 2 and parts[2].isascii() and parts[2].isalnum() else ""
    return UploadState(next_time, max(failures, 0), outcome)


def write_state(data_dir: str, state: UploadState) -> None:
    line = f"{state.next:.3f} {state.failures} {state.outcome or '-'}\n"
    atomic_write(state_path(data_dir), line.encode("ascii"), sync=False)


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row (at least one)."""
    return min(FIRST_BACKOFF * 2.0 ** max(min(failures, 30) - 1, 0), MAX_BACKOFF)


def due(state: UploadState, now: float, *, ci: bool, interval: float) -> bool:
    """Whether an upload may start now. On CI the interval after a success does not apply (back-offs do).

    ``next`` further ahead than any wait written here (a day, or ``interval`` if longer) means
    the clock went back since it was written (a machine that booted years ahead, then synced):
    due now, or nothing would be sent until the clock caught up.
    """
    return state.next <= now or state.next - now > max(MAX_BACKOFF, interval) + 60.0 or (ci and state.outcome == SENT)


def worth_starting(state: UploadState, now: float, *, ci: bool, interval: float) -> bool:
    """Whether a run should start the upload process at its exit.

    On CI also while another run's attempt is in flight: the new process waits for
    it, then sends what is left, including this run's session.
    """
    return due(state, now, ci=ci, interval=interval) or (ci and state.outcome == ATTEMPT)
