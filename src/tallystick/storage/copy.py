"""Moving a Tallystick store into another (``tallystick import`` of a directory or bucket Tallystick wrote).

What a maintainer runs to move an install off one machine: the sessions of
``~/.local/share/tallystick/sessions`` into a bucket that ingest replicas share (or from one
bucket to another). The warehouse is not copied: it is rebuilt from the store by the loader.

Design note
-----------
Steps of one run:

1. ``source.settle()``: a local directory's write-ahead log becomes objects first (a running
   server's writer empties it within a second; segments a stopped or killed server left are
   replayed), so no acknowledged session is left behind in ``.wal/``.
2. List ``privacy/v1/`` (tombstones, pending erasure requests, rejection counts and samples),
   then ``sessions/v1/``, in key order, after the checkpoint's last key; ``privacy/v1/`` whole
   again once the checkpoint is past it (a few objects: a tombstone written since the last run
   is copied too). Privacy records come first, so that replicas already serving the destination
   refuse a deleted user's old sessions before those sessions could be sent to them again.
3. Copy each object's bytes as they are, with a create-only write under the same key: session
   objects were validated by ingest when they were stored (the loader validates them again),
   keys derive from the session, so a key already present holds that session (an earlier run,
   or a client that sent it to the new replicas too) and is counted, not rewritten. A key under
   ``sessions/v1/`` that is not a session key is skipped and counted; so is a session ingest
   would refuse as a deleted user's (``refused``: the destination's tombstones, such as a user's
   erasure that reached the new replicas before the copy), or a deletion would be undone.
4. The checkpoint, the readers and the window are ``abacus.run_import``'s: a crash or a second
   run writes nothing twice (create-only), a key is in the checkpoint only once it and every
   key before it are copied.

Keys whose first segment starts with ``.`` (``.wal/``, ``.tmp/``, probes) are the stores' own
and never listed, so never copied.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from tallystick.storage.abacus import (
    ALREADY,
    CHECKPOINT_EVERY,
    DELETED_USER,
    IMPORTED,
    READERS,
    RECORD,
    Checkpoint,
    ImportStats,
    Refused,
    run_import,
)
from tallystick.storage.base import ObjectNotFound, Store
from tallystick.storage.layout import PREFIX, decode_session, parse_key

PRIVACY_PREFIX = "privacy/v1/"  # reserved for the privacy records (storage.md); listed before sessions/v1/


def is_tallystick_store(store: Store) -> bool:
    """True if ``store`` holds at least one object of Tallystick's layout (``sessions/v1/...``)."""
    return next(iter(store.list(PREFIX)), None) is not None


def _copy(source: Store, dest: Store, key: str, refused: Refused | None) -> str:
    if key.startswith(PREFIX) and parse_key(key) is None:
        return "not a session key (sessions/v1/app=<app>/date=<day>/<sessionId>.json.gz)"
    try:
        data = source.get(key)
    except ObjectNotFound:
        return "deleted while importing"
    if refused is not None and key.startswith(PREFIX):
        try:
            session = decode_session(data)
        except (OSError, EOFError, ValueError, zlib.error):  # damaged: copied as it is, the loader sets it aside
            session = None
        if session is not None and refused(session):
            return DELETED_USER
    created = dest.put_if_absent(key, data)
    if key.startswith(PRIVACY_PREFIX):
        return RECORD
    return IMPORTED if created else ALREADY


def copy_store(
    source: Store,
    dest: Store,
    *,
    checkpoint: Checkpoint | None = None,
    restart: bool = False,
    progress: Callable[[ImportStats], None] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    readers: int = READERS,
    refused: Refused | None = None,
) -> ImportStats:
    """Copy every session and privacy record of the Tallystick store ``source`` into ``dest``
    (steps in the design note above); a session ``refused`` says no to (a deleted user's) is
    skipped, counted with its reason."""
    source.settle()
    return run_import(
        source,
        (PRIVACY_PREFIX, PREFIX),
        lambda key: _copy(source, dest, key, refused),
        checkpoint=checkpoint,
        restart=restart,
        progress=progress,
        checkpoint_every=checkpoint_every,
        readers=readers,
    )


__all__ = ["PRIVACY_PREFIX", "copy_store", "is_tallystick_store"]
