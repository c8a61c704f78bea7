"""Hints in messages (`` `tallystick query ...` ``) run as printed: same program, same data."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import msgspec

from tallystick import demo
from tallystick.cli import build_parser
from tallystick.cli.common import PLACE_OPTIONS, TAKES_PLACE, runnable
from tallystick.schema import Session
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.local import LocalStore
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader


def test_which_commands_take_which_place_options_matches_the_parser() -> None:
    """TAKES_PLACE says exactly which of --data-dir, --storage, --warehouse each command accepts."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    actual = {
        name: tuple(flag for flag in PLACE_OPTIONS if flag in parser._option_string_actions)
        for name, parser in sub.choices.items()
    }
    assert {k: v for k, v in actual.items() if v} == TAKES_PLACE


def test_hints_repeat_the_place_options_the_hinted_command_takes() -> None:
    """A hint gets the --warehouse and --data-dir the user gave, quoted; options its command lacks are left out."""
    args = argparse.Namespace(data_dir="/srv/my data", warehouse="clickhouse://ch:8123/t", storage="s3://b/p")
    text = runnable('see `tallystick query "SELECT 1"` or `tallystick rejects`', args)
    assert "query --data-dir '/srv/my data' --warehouse clickhouse://ch:8123/t \"SELECT 1\"`" in text
    assert "rejects --data-dir '/srv/my data' --storage s3://b/p`" in text
    plain = runnable('see `tallystick query "SELECT 1"`', argparse.Namespace(data_dir=None, warehouse=None))
    assert plain.endswith('query "SELECT 1"`')


def test_an_analysis_hint_reads_the_warehouse_the_report_read(tmp_path: Path) -> None:
    """`report --warehouse W` with an unknown attribute suggests a query on W, not on the default warehouse."""
    store = LocalStore(tmp_path / "sessions", fsync=False)
    decoder = msgspec.json.Decoder(Session)
    for tree in demo.generate(40, seed=3):
        session = decoder.decode(msgspec.json.encode(tree))
        store.put_if_absent(session_key(session), encode_session(session))
    path = tmp_path / "elsewhere.duckdb"
    warehouse = DuckDBWarehouse(path)
    Loader(store, warehouse).run()
    warehouse.close()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tallystick.cli",
            "report",
            "breakdown",
            "--warehouse",
            str(path),
            "--attribute",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"TALLYSTICK_DATA_DIR": str(tmp_path / "default"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert f"query --warehouse {path} " in result.stderr, result.stderr
