"""The BigQuery schema and load job are generated from the Structs and committed up to date."""

from __future__ import annotations

from typing import Any

from tallystick.schema import Event, Session, Span
from tallystick.warehouse import bigquery


def _names(fields: list[dict[str, Any]]) -> list[str]:
    return [f["name"] for f in fields]


def test_schema_matches_the_structs() -> None:
    """Every Struct field is a column with the wire name, and nested records match Event and Span."""
    fields = bigquery.schema()
    assert _names(fields) == bigquery.struct_names(Session)
    by_name = {f["name"]: f for f in fields}
    assert (by_name["events"]["mode"], _names(by_name["events"]["fields"])) == (
        "REPEATED",
        bigquery.struct_names(Event),
    )
    assert (by_name["spans"]["mode"], _names(by_name["spans"]["fields"])) == ("REPEATED", bigquery.struct_names(Span))
    assert by_name["sessionStartTime"] == {"name": "sessionStartTime", "type": "TIMESTAMP", "mode": "REQUIRED"}
    assert by_name["attributes"] == {"name": "attributes", "type": "JSON", "mode": "NULLABLE"}


def test_committed_files_are_current() -> None:
    """The files under warehouse/bigquery/ are what the generator writes (run it after changing the Structs)."""
    for name, content in bigquery.files().items():
        assert (bigquery.HERE / name).read_text() == content, "regenerate: python -m tallystick.warehouse.bigquery"


def test_transfer_reads_the_storage_layout() -> None:
    """The hourly transfer reads the same object layout the ingest service writes."""
    params = bigquery.transfer(bucket="telemetry")["params"]
    assert params["data_path_template"] == "gs://telemetry/sessions/v1/*"
    assert params["file_format"] == "JSON"
