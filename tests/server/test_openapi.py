"""The OpenAPI document: checked in, served, and true of the running service (schemathesis)."""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fixtures.api import Api
from tallystick.server.openapi import OPENAPI_FILE, render


def test_checked_in_openapi_is_current() -> None:
    """openapi.json matches what the Structs generate (run python -m tallystick.server.openapi)."""
    assert OPENAPI_FILE.read_text() == render()


def test_openapi_is_served(api: Api) -> None:
    """GET /openapi.json serves the checked-in document."""
    answer = api.request("GET", "/openapi.json")
    assert answer.status == 200
    assert answer.json() == json.loads(OPENAPI_FILE.read_text())


# Loaded from the checked-in file, which the test above shows is what the service serves
# (schemathesis' fixture loader does not work with this pytest).
schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_FILE.read_text()))


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(api: Api, case: schemathesis.Case) -> None:
    """Generated requests (valid and not) never get a 5xx, and every answer matches the document."""
    case.call_and_validate(
        base_url=api.url,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
