"""Where and how a session is kept in object storage.

The key is derived from the session's own fields only, so a retry of the same
session always lands on the same key and the create-only write turns it into a
harmless duplicate::

    sessions/v1/app=<applicationId>/date=<UTC date of sessionStartTime>/<sessionId>.json.gz

Partitions by application and start date let a loader list a bounded window of
dates (clients discard sessions after 30 days) instead of the whole bucket.
Objects are the canonical JSON of the validated session in a gzip stream. Below 4 KiB
(nearly every session) the stream stores the JSON uncompressed: such an object takes one
filesystem block either way, and deflate would cost about 15 us of the ingest's per-request
budget of 150. Larger sessions are deflated at level 1. Readers just gunzip.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from datetime import UTC, date, datetime

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


def encode_session(session: Session) -> bytes:
    raw = _encoder.encode(session)
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


def utc_now() -> datetime:
    return datetime.now(UTC)
