"""The OpenAPI 3.1 document of the ingest API, generated from the schema's Structs.

``python -m tallystick.server.openapi`` rewrites the checked-in ``openapi.json``
(served at ``/openapi.json``); a test fails when the file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec

from tallystick import __version__
from tallystick.schema import _rules
from tallystick.schema.errors import ValidationError
from tallystick.schema.session import Session, Uuid4

OPENAPI_FILE = Path(__file__).with_name("openapi.json")


class Message(msgspec.Struct):
    """An answer that only explains itself."""

    message: str


class ErrorBody(msgspec.Struct, rename="camel", omit_defaults=True):
    """A 400 answer: what is wrong, and every violation with its field path."""

    message: str
    validation_errors: list[ValidationError] | None = None


class ErasureRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Erase the sessions of a user ID that carry the commitment to this secret (docs/privacy.md)."""

    user_id: Uuid4
    secret: Annotated[str, msgspec.Meta(pattern=_rules.ERASURE_SECRET_PATTERN)]


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 100 sessions, each validated and stored on its own."""

    sessions: list[Session]


class BatchResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """What became of one session of a batch: 201 stored, 304 already stored, 400 invalid."""

    session_id: str | None
    status: int
    validation_errors: list[ValidationError] | None = None


class BatchAnswer(msgspec.Struct):
    """One result per session of the batch, in the batch's order."""

    results: list[BatchResult]


def _json_content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def _answer(description: str, schema: str = "Message", retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _json_content(schema)}
    if retry:
        answer["headers"] = _RETRY_AFTER
    return answer


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _ingest_answers() -> dict[str, Any]:
    return {
        "400": _answer("The body is not valid: every violation is listed.", "ErrorBody"),
        "408": _answer("The body did not arrive within the body timeout."),
        "413": _answer(f"The body is larger than the limit ({_rules.MAX_BODY_BYTES} bytes after decompression)."),
        "415": _answer("Content-Type is not application/json, or Content-Encoding is neither identity nor gzip."),
        "429": _answer("Too many requests from this client.", retry=True),
        "503": _answer("Busy, or storage unavailable: retry later.", retry=True),
    }


def document() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    (_, _, _, _, _, _), components = msgspec.json.schema_components(
        [Session, BatchRequest, BatchAnswer, ErrorBody, Message, ErasureRequest],
        ref_template="#/components/schemas/{name}",
    )
    batch_items = components["BatchRequest"]["properties"]["sessions"]
    batch_items["maxItems"] = _rules.MAX_BATCH_SESSIONS
    encoding = {
        "name": "Content-Encoding",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "enum": ["identity", "gzip"]},
        "description": "gzip to send the body compressed; the size limit applies after decompression.",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tallystick ingest API",
            "version": __version__,
            "description": "Wire contract v1 (Abacus-compatible). Generated from tallystick.schema by "
            "`python -m tallystick.server.openapi`; do not edit. Also enforced, not expressible here: "
            "end times not before start times, no duplicate keys, integers within 64 bits, "
            "applicationId registered with the server.",
        },
        "paths": {
            "/v1/sessions": {
                "put": {
                    "summary": "Store one session",
                    "operationId": "putSession",
                    "parameters": [encoding],
                    "requestBody": {"required": True, "content": _json_content("Session")},
                    "responses": {
                        "201": {"description": "Stored durably."},
                        "304": {"description": "A session with this ID is already stored."},
                        **_ingest_answers(),
                    },
                }
            },
            "/v1/batches": {
                "post": {
                    "summary": "Store up to 100 sessions, each on its own",
                    "operationId": "postBatch",
                    "parameters": [encoding],
                    "requestBody": {"required": True, "content": _json_content("BatchRequest")},
                    "responses": {
                        "200": _answer("One result per session, in order.", "BatchAnswer"),
                        **_ingest_answers(),
                    },
                }
            },
            "/v1/erasures": {
                "post": {
                    "summary": "Erase a user's sessions from the user's own machine",
                    "description": "Deletes the sessions of userId that carry the attribute telemetryErasureCommitment "
                    "computed from this secret and started before now, and refuses them if they arrive later. "
                    "Every well-formed request gets the same 202 answer, whether or not such sessions exist.",
                    "operationId": "postErasure",
                    "requestBody": {"required": True, "content": _json_content("ErasureRequest")},
                    "responses": {
                        "202": _answer("Recorded (the same answer for every well-formed request)."),
                        "400": _answer("The body is not a well-formed erasure request.", "ErrorBody"),
                        "408": _answer("The body did not arrive within the body timeout."),
                        "413": _answer("The body is larger than an erasure request can be."),
                        "415": _answer(
                            "Content-Type is not application/json, or Content-Encoding is neither identity nor gzip."
                        ),
                        "429": _answer("Too many erasure requests from this client, or in all.", retry=True),
                        "503": _answer("Busy, or storage unavailable: retry later.", retry=True),
                    },
                }
            },
            "/ping": {"get": {"summary": "Liveness", "operationId": "ping", "responses": {"200": _text("pong")}}},
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": _text("pong")}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness: storage can be written",
                    "operationId": "readyz",
                    "responses": {"200": _text("ready"), "503": _answer("Storage unavailable.", retry=True)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {"200": _text("Prometheus text exposition format.")},
                }
            },
        },
        "components": {"schemas": components},
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OPENAPI_FILE.write_text(render())
    print(f"wrote {OPENAPI_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
