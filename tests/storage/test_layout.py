"""The stored form of a session: canonical JSON in a gzip stream any gunzip reads."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import zlib

import msgspec
import pytest

from sessions import session
from tallystick.schema import session_from_tree
from tallystick.storage.layout import decode_session, encode_session


@pytest.mark.parametrize("padding", [0, 1, 1000, 3000, 3100, 4000])
def test_stored_object_is_a_valid_gzip_stream_of_the_canonical_json(padding: int) -> None:
    """Small sessions are stored uncompressed inside gzip, large ones deflated; both check out byte for byte."""
    parsed = session_from_tree(session(attributes={"note": "x" * padding, "more": "y" * padding}))
    data = encode_session(parsed)
    canonical = msgspec.json.encode(parsed)
    assert gzip.decompress(data) == canonical
    assert zlib.decompress(data, 31) == canonical  # checks the header, the CRC-32 and the size trailer
    assert decode_session(data) == parsed
    if len(canonical) >= 4096:
        assert len(data) < len(canonical)
    gunzip = shutil.which("gzip")
    if gunzip:
        assert subprocess.run([gunzip, "-dc"], input=data, capture_output=True, check=True).stdout == canonical
