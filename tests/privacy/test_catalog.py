"""The client's catalog names exactly what the client collects, so the privacy listing cannot drift."""

from __future__ import annotations

import io
import subprocess
import sys

from tallystick.client import _collection
from tallystick.client._session import describe
from tallystick.testing import capture


def test_catalog_names_every_environment_attribute() -> None:
    """describe() sets exactly the catalog's environment attributes (all of them on Linux)."""
    collected = set(describe({"SHELL": "/bin/bash", "CI": "true"}, io.StringIO(), io.StringIO()))
    assert collected == {name for name, _, _ in _collection.ENVIRONMENT_ATTRIBUTES}


def test_catalog_types_match_collected_values() -> None:
    """Each collected value has the catalog's type (or is null)."""
    types = {name: kind for name, kind, _ in _collection.ENVIRONMENT_ATTRIBUTES}
    for name, value in describe({"SHELL": "/bin/zsh"}, io.StringIO(), io.StringIO()).items():
        if value is not None:
            expected = {bool: "boolean", str: "string", int: "number", float: "number"}[type(value)]
            assert types[name] == expected, name


def test_catalog_names_the_clients_own_attributes() -> None:
    """Every attribute of a sealed session is an environment or client attribute of the catalog."""
    with capture() as telemetry:
        pass
    attributes = set(telemetry.session()["attributes"])
    names = {n for n, _, _ in (*_collection.ENVIRONMENT_ATTRIBUTES, *_collection.CLIENT_ATTRIBUTES)}
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    unknown = {a for a in attributes if a not in names and not a.startswith(prefixes)}
    assert not unknown
    assert {"telemetryMs", "telemetryQueueDepth", "telemetryQueuedBytes"} <= attributes


def test_catalog_names_the_clients_own_events() -> None:
    """Errors recorded by the client are events the catalog lists, with the listed attributes."""
    import tallystick.client as telemetry_api

    events = {name: {a for a, _, _ in attributes} for name, _, attributes in _collection.EVENTS}
    with capture() as telemetry:
        try:
            raise ValueError("secret message")
        except ValueError as exc:
            telemetry_api.record_exception(exc)
    [event] = telemetry.events
    assert event["type"] in events
    assert set(event["attributes"]) <= events[event["type"]]


def test_the_catalog_costs_the_client_nothing_at_start() -> None:
    """Importing the client does not import the catalog (``_collection``: for the listing and a stored choice)."""
    code = "import sys, tallystick.client; print('tallystick.client._collection' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
