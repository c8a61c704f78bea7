"""The stored form of a session: canonical JSON in a gzip stream any gunzip reads."""

from __future__ import annotations

import gzip
import json
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


def test_stamped_json_keeps_the_body_as_sent_and_adds_what_is_missing() -> None:
    """The vouched-for body is kept byte for byte after an added ingestionTime and empty collections."""
    from datetime import UTC, datetime

    from tallystick.schema.fastpath import fast_session
    from tallystick.storage.layout import stamped_json

    tree = session(sessionStartTime="2026-05-01T10:00:00.000000001+02:00")
    del tree["spans"]
    raw = b"\n " + json.dumps(tree, indent=1).encode()
    parsed = fast_session(raw)
    assert parsed is not None
    at = datetime(2026, 5, 2, tzinfo=UTC)
    text = stamped_json(parsed, raw, at)
    assert text.endswith(raw.lstrip()[1:])
    assert json.loads(text) == {**tree, "ingestionTime": "2026-05-02T00:00:00Z", "spans": []}
    from_tree = stamped_json(parsed, {**tree, "events": None, "ingestionTime": "x"}, at)
    assert json.loads(from_tree) == {**tree, "ingestionTime": "2026-05-02T00:00:00Z", "spans": [], "events": []}
    from_struct = json.loads(stamped_json(parsed, None, at))
    assert from_struct["sessionStartTime"] == "2026-05-01T10:00:00+02:00"  # the Struct holds microseconds
