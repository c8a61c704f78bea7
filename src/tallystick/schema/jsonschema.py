"""The JSON Schema of a session, generated from the Structs.

``python -m tallystick.schema.jsonschema`` rewrites the checked-in
``session.schema.json``; a test fails when the file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from tallystick.schema.session import Session

SCHEMA_FILE = Path(__file__).with_name("session.schema.json")


def session_schema() -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(Session)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Tallystick session, wire contract v1"
    schema["$comment"] = (
        "Generated from tallystick.schema.session by `python -m tallystick.schema.jsonschema`; do not edit. "
        "Not expressible here, also enforced: sessionEndTime >= sessionStartTime, span endTime >= startTime, "
        "no duplicate keys, integers within 64 bits."
    )
    return schema


def render() -> str:
    return json.dumps(session_schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMA_FILE.write_text(render())
    print(f"wrote {SCHEMA_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
