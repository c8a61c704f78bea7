"""Where and how a session is kept in object storage.

The key is derived from the session's own fields only, so a retry of the same
session always lands on the same key and the create-only write turns it into a
harmless duplicate::

    sessions/v1/app=<applicationId>/date=<UTC date of sessionStartTime>/<sessionId>.json.gz

Partitions by application and start date let a loader list a bounded window of
dates (clients discard sessions after 30 days) instead of the whole bucket.
Objects hold the session as the client sent it (``stamped_json``): its timestamps exactly as
written (a JVM's nanoseconds and offsets included; the warehouse may round them to
microseconds), plus the server's ``ingestionTime``, with an absent or null ``attributes``,
``events`` or ``spans`` written as empty. They are a gzip stream: below 4 KiB
(nearly every session) the stream stores the JSON uncompressed: such an object takes one
filesystem block either way, and deflate would cost about 15 us of the ingest's per-request
budget of 150. Larger sessions are deflated at level 1. Readers just gunzip.
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from tallystick.schema import Session

PREFIX = "sessions/v1/"
SUFFIX = ".json.gz"

_encoder = msgspec.json.Encoder()
_STORED_BELOW = 4096
_GZIP_WBITS = 31  # zlib's gzip container (header with mtime 0, CRC-32 and size trailer)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_STORED_BLOCK = struct.Struct("<BHH")
_GZIP_TRAILER = struct.Struct("<II")
_decoder = msgspec.json.Decoder(Session)


def partition_prefix(application_id: str, day: date) -> str:
    return f"{PREFIX}app={application_id}/date={day.isoformat()}/"


def session_key(session: Session) -> str:
    start = session.session_start_time.astimezone(UTC).date()
    return f"{partition_prefix(session.application_id, start)}{session.session_id}{SUFFIX}"


_EMPTY: tuple[tuple[str, bytes, Any], ...] = (("attributes", b"{}", {}), ("events", b"[]", []), ("spans", b"[]", []))


def stamped_json(session: Session, sent: bytes | dict[str, Any] | None, ingestion_time: datetime) -> bytes:
    """The JSON text to store for ``session``: what the client sent, with ``ingestionTime`` set.

    ``sent`` is the body the fast path vouched for (``schema.fastpath``: no duplicate keys, no
    null field) or the tree the full validator accepted; with neither, the Struct is encoded
    (its timestamps then hold microseconds). Absent or null collections are written as empty.
    """
    if isinstance(sent, bytes) and session.ingestion_time is None:
        # Splice into the body as sent: it has no ingestionTime key, and any collection the
        # session lacks is absent from it (a null one would have sent it to the full validator).
        # The body is an object with required fields: only whitespace before its '{', never empty.
        parts: list[bytes | memoryview] = [b'{"ingestionTime":', _encoder.encode(ingestion_time), b","]
        for name, empty, _ in _EMPTY:
            if getattr(session, name) is None:
                parts += (b'"', name.encode(), b'":', empty, b",")
        parts.append(memoryview(sent)[sent.index(b"{") + 1 :])
        return b"".join(parts)
    if isinstance(sent, bytes):
        sent = json.loads(sent)
    if isinstance(sent, dict):
        tree = dict(sent)
        tree["ingestionTime"] = _encoder.encode(ingestion_time).decode()[1:-1]
        for name, _, empty in _EMPTY:
            if tree.get(name) is None:
                tree[name] = empty
        return json.dumps(tree, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    stamped = msgspec.structs.replace(
        session,
        ingestion_time=ingestion_time,
        attributes={} if session.attributes is None else session.attributes,
        events=[] if session.events is None else session.events,
        spans=[] if session.spans is None else session.spans,
    )
    return _encoder.encode(stamped)


def encode_session(session: Session) -> bytes:
    """The stored object of a Struct (timestamps in microseconds; see ``stamped_json`` for ingest's)."""
    return encode_json(_encoder.encode(session))


def encode_json(raw: bytes) -> bytes:
    """The stored object holding the JSON text ``raw``."""
    size = len(raw)
    if size >= _STORED_BELOW:
        return zlib.compress(raw, 1, _GZIP_WBITS)
    # gzip header (no name, mtime 0), one final stored deflate block (length, its complement), CRC-32 and
    # size: what zlib.compress(raw, 0, 31) writes, without the 1.5 us it takes to set up a deflate stream.
    block = _STORED_BLOCK.pack(1, size, size ^ 0xFFFF)
    return b"".join((_GZIP_HEADER, block, raw, _GZIP_TRAILER.pack(zlib.crc32(raw), size)))


def decode_session(data: bytes) -> Session:
    """Parse a stored object (raises msgspec errors or OSError for a damaged one)."""
    return _decoder.decode(gzip.decompress(data))


def parse_key(key: str) -> tuple[str, date, str] | None:
    """(applicationId, date, sessionId) of a session key, or None for other keys."""
    if not key.startswith(PREFIX) or not key.endswith(SUFFIX):
        return None
    parts = key[len(PREFIX) :].split("/")
    if len(parts) != 3 or not parts[0].startswith("app=") or not parts[1].startswith("date="):
        return None
    try:
        day = date.fromisoformat(parts[1][5:])
    except ValueError:
        return None
    return parts[0][4:], day, parts[2][: -len(SUFFIX)]
