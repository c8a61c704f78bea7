"""BigQuery: the table schema and the hourly load job, generated from the msgspec Structs.

Like the reference design, BigQuery loads the stored objects as they are: one
gzip JSON session per object, under ``sessions/v1/app=…/date=…/``. So the table
is nested (``events`` and ``spans`` are repeated records) rather than the three
flat tables DuckDB and ClickHouse get, and ``attributes`` are JSON columns.

Nothing here talks to BigQuery (there is none in this environment, and the tests
do not pretend otherwise): ``python -m tallystick.warehouse.bigquery [DIR]`` writes

- ``sessions.schema.json``: the schema for ``bq mk --table`` / ``bq load --schema``;
- ``sessions.table.json``: the table, partitioned by day of ``sessionStartTime``,
  clustered by application and version;
- ``sessions.transfer.json``: a BigQuery Data Transfer Service configuration that
  loads new objects from a Cloud Storage bucket every hour (placeholders
  ``BUCKET`` and ``DATASET``);
- ``sessions_dedup.sql``: a view keeping one row per session ID (the transfer
  loads each object once, but a session stored under two keys would appear twice).

A test regenerates these files and compares, so they never drift from the Structs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi

from tallystick.schema import Session
from tallystick.storage.layout import PREFIX
from tallystick.warehouse.tables import unwrap

HERE = Path(__file__).parent / "bigquery"


def _fields(struct: mi.StructType) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in struct.fields:
        t, nullable = unwrap(f.type)
        mode = "NULLABLE" if nullable or not f.required else "REQUIRED"
        field: dict[str, Any] = {"name": f.encode_name}
        if isinstance(t, mi.ListType):
            item, _ = unwrap(t.item_type)
            assert isinstance(item, mi.StructType)
            field.update(type="RECORD", mode="REPEATED", fields=_fields(item))
        elif isinstance(t, mi.StrType):
            field.update(type="STRING", mode=mode)
        elif isinstance(t, mi.DateTimeType):
            field.update(type="TIMESTAMP", mode=mode)
        elif isinstance(t, mi.DictType):
            field.update(type="JSON", mode=mode)
        else:
            raise TypeError(f"no BigQuery type for {f.encode_name}: {t!r}")
        out.append(field)
    return out


def schema() -> list[dict[str, Any]]:
    """The BigQuery schema of one stored session, field for field."""
    info = mi.type_info(Session)
    assert isinstance(info, mi.StructType)
    return _fields(info)


def table(dataset: str = "DATASET", name: str = "sessions") -> dict[str, Any]:
    return {
        "tableReference": {"datasetId": dataset, "tableId": name},
        "schema": {"fields": schema()},
        "timePartitioning": {"type": "DAY", "field": "sessionStartTime"},
        "clustering": {"fields": ["applicationId", "applicationVersion"]},
    }


def transfer(bucket: str = "BUCKET", dataset: str = "DATASET", name: str = "sessions") -> dict[str, Any]:
    """A Data Transfer Service config: every hour, append the objects added since the last run."""
    return {
        "displayName": "tallystick: load sessions hourly",
        "dataSourceId": "google_cloud_storage",
        "destinationDatasetId": dataset,
        "schedule": "every 1 hours",
        "params": {
            "data_path_template": f"gs://{bucket}/{PREFIX}*",
            "destination_table_name_template": name,
            "file_format": "JSON",
            "write_disposition": "APPEND",
            "max_bad_records": "0",
            "ignore_unknown_values": "false",
            "delete_source_files": "false",
        },
    }


def dedup_view(dataset: str = "DATASET", name: str = "sessions") -> str:
    return (
        f"CREATE OR REPLACE VIEW `{dataset}.{name}_dedup` AS\n"
        f"SELECT * FROM `{dataset}.{name}`\n"
        "WHERE TRUE\nQUALIFY ROW_NUMBER() OVER (PARTITION BY sessionId ORDER BY sessionStartTime) = 1\n"
    )


def files() -> dict[str, str]:
    """Name → content of every generated file."""

    def dump(value: Any) -> str:
        return json.dumps(value, indent=2) + "\n"

    return {
        "sessions.schema.json": dump(schema()),
        "sessions.table.json": dump(table()),
        "sessions.transfer.json": dump(transfer()),
        "sessions_dedup.sql": dedup_view(),
    }


def write(directory: Path = HERE) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files().items():
        (directory / name).write_text(content)


def struct_names(struct: type[msgspec.Struct]) -> list[str]:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return [f.encode_name for f in info.fields]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tallystick.warehouse.bigquery [DIR]``: write the files; a bad argument or path is one line."""
    parser = argparse.ArgumentParser(
        prog="python -m tallystick.warehouse.bigquery",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write the BigQuery table schema, table definition, hourly Data Transfer config and\n"
        "deduplicating view for Tallystick's sessions, generated from the session Structs.\n"
        "Nothing talks to BigQuery: the files are for `bq` (placeholders BUCKET and DATASET).",
        epilog="example:\n"
        "  python -m tallystick.warehouse.bigquery bq-files\n"
        "  bq mk --table --schema bq-files/sessions.schema.json --time_partitioning_field sessionStartTime \\\n"
        "      --clustering_fields applicationId,applicationVersion DATASET.sessions",
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=HERE,
        metavar="DIR",
        help=f"where to write {', '.join(files())} (created if missing; "
        "default: the copies kept in the package, which a test compares with the Structs)",
    )
    args = parser.parse_args(argv)
    try:
        write(args.directory)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot write to {args.directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
