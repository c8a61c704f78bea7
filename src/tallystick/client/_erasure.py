"""The installation's erasure secret, and the erasure request ``forget`` queues.

Beside ``user-id`` the client keeps ``erasure-secret`` (mode 0600): one line
``<userId> <secret> <commitment>`` per user ID. The secret is 32 random bytes as
hex, made with the user ID it belongs to; the commitment (``_rules.erasure_commitment``)
is computed once then and kept, so a run reads one small file and hashes nothing.
Disabling telemetry rotates the user ID but keeps the old ID's line, so a later
``forget`` still erases what was sent under it. Sessions sent before the client
had a secret carry no commitment and cannot be erased this way (the maintainer's
``delete-user`` can).

``forget`` writes ``{"userId", "secret"}`` for every kept line as an *erasure request* file into
``<data dir>/erasures/`` (atomically, like a queued session), then the caller
deletes ``user-id``; ``erasure-secret`` is deleted too: each secret leaves the
machine exactly once, in its request. The upload process sends waiting requests before any
session, whatever the consent (an erasure records nothing), and keeps each until
the server answers 202; a request the server calls malformed (400/413/415/422) is
dropped and counted; like sessions, requests older than ``max_age_days`` are
dropped unsent. Any run of the tool with a server to send to starts the upload
process while a request waits (see ``_client.py`` and ``_uploader.py``).
"""

from __future__ import annotations

import os

from tallystick.client import _queue
from tallystick.schema import _rules

SECRET_FILE = "erasure-secret"  # noqa: S105  (a file name, not a password)
MAX_KEPT = 20  # secrets of earlier user IDs kept (telemetry disabled, then allowed again), newest last
DIRECTORY = "erasures"
ERASURE_PREFIX = "erasure-"


def commitment_for(data_dir: str, user_id: str) -> str | None:
    """The commitment to this installation's secret for ``user_id``, made (with the secret) on first use."""
    path = os.path.join(data_dir, SECRET_FILE)
    known = read(path)
    for line in known:
        if line[0] == user_id:
            return line[2]
    secret = os.urandom(32).hex()
    commitment = _rules.erasure_commitment(user_id, secret)
    lines = [*known[-(MAX_KEPT - 1) :], (user_id, secret, commitment)]
    try:
        _queue.atomic_write(path, "".join(f"{u} {s} {c}\n" for u, s, c in lines).encode())
    except OSError:
        return None  # without a kept secret the commitment would prove nothing later: send none
    return commitment


def read(path: str) -> list[tuple[str, str, str]]:
    """The (user ID, secret, commitment) lines of a secret file that are well formed."""
    data = _queue.read_bytes(path, 64 * 1024)
    if data is None:
        return []
    found = []
    for line in data.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and _rules.is_erasure_secret(parts[1]) and _rules.is_erasure_secret(parts[2]):
            found.append((parts[0], parts[1], parts[2]))
    return found


def request_bodies(data_dir: str) -> list[tuple[str, bytes]]:
    """(user ID, erasure request) for every user ID this installation keeps a secret for."""
    return [
        (user_id, f'{{"userId":"{user_id}","secret":"{secret}"}}'.encode())
        for user_id, secret, _ in read(os.path.join(data_dir, SECRET_FILE))
    ]


def request_file_name(now: float, user_id: str) -> str:
    """Queue file name of an erasure request (the uploader picks these out and sends them first)."""
    return f"{ERASURE_PREFIX}{int(now * 1000):013d}-{user_id}.json"


def is_request(name: str) -> bool:
    return name.startswith(ERASURE_PREFIX)


def directory(data_dir: str) -> str:
    return os.path.join(data_dir, DIRECTORY)


def queue_requests(data_dir: str, now: float) -> list[str]:
    """Write an erasure request to ``erasures/`` for every kept secret, then delete the secrets; the user IDs."""
    bodies = request_bodies(data_dir)
    if bodies:
        folder = directory(data_dir)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for user_id, body in bodies:
            _queue.atomic_write(os.path.join(folder, request_file_name(now, user_id)), body)
    _queue.remove(os.path.join(data_dir, SECRET_FILE))
    return [user_id for user_id, _ in bodies]


def waiting(data_dir: str) -> list[str]:
    """Paths of the erasure requests waiting to be sent, oldest first (one ``listdir``; none: no directory)."""
    folder = directory(data_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if is_request(n) and n.endswith(".json")]


def sweep(data_dir: str, max_age_seconds: float, now: float) -> int:
    """Delete waiting requests older than ``max_age_seconds`` (by the time in their name); how many."""
    removed = 0
    for path in waiting(data_dir):
        millis = os.path.basename(path)[len(ERASURE_PREFIX) :].partition("-")[0]
        if millis.isdigit() and now - int(millis) / 1000 > max_age_seconds and _queue.remove(path):
            removed += 1
    return removed
