"""The upload queue: one JSON file per session in ``<data dir>/queue``.

See DESIGN.md beside this file for the steps and the races. In short: files
appear only by atomic rename (so a reader never sees half a session), the file
name starts with the session's start time (so sorting names sorts by age), and
every reader tolerates files vanishing under it (another run uploaded them).
"""

# ruff: noqa: SIM105  (contextlib would cost import time on the host's exit path)

from __future__ import annotations

import os

from tallystick.client import _files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

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
        self.drops_path = os.path.join(data_dir, "drops.json")
        self.lock_path = os.path.join(data_dir, "upload.lock")
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._count = count

    # -- reading -----------------------------------------------------------

    def entries(self) -> list[Entry]:
        """The queued session files, oldest first; temp files and strangers are skipped."""
        found: list[Entry] = []
        try:
            scanner = os.scandir(self.directory)
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
                when = _time_from_name(name)
                found.append(Entry(name, item.path, stat.st_size, stat.st_mtime if when is None else when))
        found.sort(key=lambda e: (e.time, e.name))
        return found

    def depth(self) -> tuple[int, int]:
        """How many sessions wait, and their bytes."""
        entries = self.entries()
        return len(entries), sum(e.size for e in entries)

    def load(self, entry: Entry, limit: int) -> tuple[bytes, str] | None:
        """The session in ``entry`` and its ID, if it is a JSON object; a corrupt file is deleted."""
        data = _files.read_bytes(entry.path, limit + 1)
        if data is None:
            return None  # vanished: another run took it
        import json  # here, not at the top: only the upload thread and ``show`` read sessions

        try:
            tree = json.loads(data) if len(data) <= limit else None
        except ValueError:
            tree = None
        session_id = tree.get("sessionId") if isinstance(tree, dict) else None
        if not isinstance(session_id, str):
            if _files.remove(entry.path):
                self._count("corrupt", 1)
            return None
        return data, session_id

    # -- writing -----------------------------------------------------------

    def put(self, name: str, body: bytes) -> bool:
        """Queue one session; the oldest are dropped to keep under the caps. Whether it was queued."""
        if len(body) > self.max_bytes:
            self._count("tooBig", 1)
            return False
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        entries = self.entries()
        total = sum(e.size for e in entries)
        while entries and (len(entries) + 1 > self.max_files or total + len(body) > self.max_bytes):
            oldest = entries.pop(0)
            total -= oldest.size
            if _files.remove(oldest.path):
                self._count("queueFull", 1)
        # No fsync: the host's exit must not wait on the disk (1-20 ms on a busy one). A power cut
        # right after may leave an empty or cut file, deleted as corrupt when read: one session lost.
        _files.atomic_write(os.path.join(self.directory, name), body, sync=False)
        return True

    def remove(self, entry: Entry) -> None:
        _files.remove(entry.path)

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
            _files.remove(entry.path)
        else:
            try:
                _files.atomic_write(target + ANSWER_SUFFIX, answer[:MAX_ANSWER_BYTES], sync=False)
            except OSError:
                pass
        self._count("rejected", 1)
        try:
            kept = sorted(name for name in os.listdir(self.rejected_directory) if name.endswith(SUFFIX))
        except OSError:
            return
        for name in kept[:-MAX_REJECTED_FILES]:
            _files.remove(os.path.join(self.rejected_directory, name))
            _files.remove(os.path.join(self.rejected_directory, name + ANSWER_SUFFIX))

    def sweep(self) -> int:
        """Delete sessions past their age and temp files left by crashed writers; how many sessions remain.

        Runs at every start, whatever the consent, so one ``scandir`` and no file read:
        a session's age is the start time in its name (its mtime if the name has none).
        A file whose content is corrupt goes when an uploader reads it, or when it ages out.
        """
        now = self._clock()
        remaining = 0
        try:
            scanner = os.scandir(self.directory)
        except OSError:
            return 0
        with scanner:
            for item in scanner:
                name = item.name
                try:
                    if name.startswith(TEMP_PREFIX):
                        if now - item.stat().st_mtime > STALE_TEMP_SECONDS:
                            _files.remove(item.path)
                        continue
                    if not name.endswith(SUFFIX) or name.startswith("."):
                        continue
                    when = _time_from_name(name)
                    if now - (item.stat().st_mtime if when is None else when) > self.max_age_seconds:
                        if _files.remove(item.path):
                            self._count("expired", 1)
                        continue
                except OSError:
                    continue
                remaining += 1
        return remaining

    def clear(self) -> None:
        """Delete every queued and rejected session (consent withdrawn)."""
        for directory in (self.directory, self.rejected_directory):
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                _files.remove(os.path.join(directory, name))
        _files.remove(self.drops_path)

    # -- state beside the queue ---------------------------------------------

    def read_drops(self) -> dict[str, int]:
        """Drop counts by reason not yet reported in a session."""
        data = _files.read_bytes(self.drops_path, 64 * 1024)
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
            _files.remove(self.drops_path)
            return
        import json

        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        _files.atomic_write(self.drops_path, json.dumps(drops, sort_keys=True).encode(), sync=False)
