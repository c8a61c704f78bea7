"""The installation's erasure secret, and the erasure request ``forget`` queues.

Beside ``user-id`` the client keeps ``erasure-secret`` (mode 0600): one line
``<userId> <secret> <commitment>``. The secret is 32 random bytes as hex, made
with the user ID it belongs to; the commitment (``_rules.erasure_commitment``)
is computed once then and kept, so a run reads one small file and hashes nothing.
A file for another user ID (the ID was rotated, or the file predates it) is
replaced by a new secret for the current ID: sessions sent before carry no
commitment and cannot be erased this way (the maintainer's ``delete-user`` can).

``forget`` queues ``{"userId", "secret"}`` as an *erasure request* file in the
upload queue (``ERASURE_PREFIX``), then the caller deletes ``user-id`` and
``erasure-secret``: the secret leaves the machine exactly once, in that request.
The uploader sends erasure requests before any session and keeps each until
the server answers 202 (see ``_uploader.py``).
"""

from __future__ import annotations

import os

from tallystick.client import _files
from tallystick.schema import _rules

SECRET_FILE = "erasure-secret"  # noqa: S105  (a file name, not a password)
ERASURE_PREFIX = "erasure-"


def commitment_for(data_dir: str, user_id: str) -> str | None:
    """The commitment to this installation's secret for ``user_id``, made (with the secret) on first use."""
    path = os.path.join(data_dir, SECRET_FILE)
    known = read(path)
    if known is not None and known[0] == user_id:
        return known[2]
    secret = os.urandom(32).hex()
    commitment = _rules.erasure_commitment(user_id, secret)
    try:
        _files.atomic_write(path, f"{user_id} {secret} {commitment}\n".encode())
    except OSError:
        return None  # without a kept secret the commitment would prove nothing later: send none
    return commitment


def read(path: str) -> tuple[str, str, str] | None:
    """(user ID, secret, commitment) from a secret file, if it holds a well-formed line."""
    data = _files.read_bytes(path, 512)
    if data is None:
        return None
    parts = data.decode("ascii", "replace").split()
    if len(parts) != 3 or not _rules.is_erasure_secret(parts[1]) or not _rules.is_erasure_secret(parts[2]):
        return None
    return parts[0], parts[1], parts[2]


def request_body(data_dir: str, user_id: str | None) -> bytes | None:
    """The erasure request for the installation's current user ID and secret; None if there is no secret for it."""
    known = read(os.path.join(data_dir, SECRET_FILE))
    if known is None or user_id is None or known[0] != user_id:
        return None
    return f'{{"userId":"{known[0]}","secret":"{known[1]}"}}'.encode()


def request_file_name(now: float, user_id: str) -> str:
    """Queue file name of an erasure request (the uploader picks these out and sends them first)."""
    return f"{ERASURE_PREFIX}{int(now * 1000):013d}-{user_id}.json"


def is_request(name: str) -> bool:
    return name.startswith(ERASURE_PREFIX)
