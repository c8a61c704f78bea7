"""Bad configuration found by a hostile review: each gets one line saying what to fix, never a traceback.

Run in this process (``main``), so a traceback would fail the test as an exception; only the
environment variables a case names are set, by ``monkeypatch.setenv``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tallystick.cli import main
from tallystick.privacy.errors import DeclarationError
from tallystick.privacy.gate import read_applications
from tallystick.warehouse import WarehouseUnavailable
from tallystick.warehouse.duckdb import DuckDBWarehouse

NOT_UTF8 = b'applications = ["demo"]\n# caf\xe9\n'
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        pytest.param(["serve", "--config", "{tmp}/latin1.toml"], {}, "is not UTF-8 text (byte 29)", id="config-latin1"),
        pytest.param(["serve", "--port", "70000"], {}, "'70000' is not a port: use 0-65535", id="port-too-big"),
        pytest.param(["dashboard", "--port", "-1"], {}, "'-1' is not a port", id="port-negative"),
        pytest.param(
            ["load", "--storage", "s3://bucket/p", "--warehouse", "{tmp}/w.duckdb"],
            {"AWS_ENDPOINT_URL": "notaurl", **CREDENTIALS},
            "$AWS_ENDPOINT_URL 'notaurl' is not a URL: use http(s)://host:port",
            id="s3-endpoint-env",
        ),
        pytest.param(
            ["load", "--storage", "s3://bucket/p?endpoint=http://u:pw@h:99999", "--warehouse", "{tmp}/w.duckdb"],
            CREDENTIALS,
            "the URL's endpoint 'http://***@h:99999' is not a URL",
            id="s3-endpoint-port",
        ),
        pytest.param(["load", "--retention-days", "99999999999"], {}, "at most 36500 days", id="retention-huge"),
        pytest.param(["load", "--batch-size", "0"], {}, "'0': use 1 or more", id="batch-size-zero"),
        pytest.param(["load", "--workers", "-1"], {}, "'-1': use 0 or more", id="workers-negative"),
        pytest.param(["load", "--storage", "file://"], {}, "'file://' names no directory", id="storage-file-empty"),
        pytest.param(["load", "--storage", ""], {}, "--storage is empty: give a value", id="storage-empty"),
        pytest.param(["query", "--warehouse", " ", "SELECT 1"], {}, "--warehouse is empty", id="warehouse-empty"),
        pytest.param(["load", "--warehouse", "chdb://"], {}, "name chDB's data directory", id="chdb-no-dir"),
        pytest.param(
            ["load", "--warehouse", "chdb://{tmp}/latin1.toml/x"],
            {},
            "latin1.toml/x as chDB's data directory (Not a directory)",
            id="chdb-unusable-dir",
        ),
        pytest.param(
            ["load", "--warehouse", "clickhouse://u:secretpw@127.0.0.1:99999/db"],
            {},
            "the port in 'clickhouse://u:***@127.0.0.1:99999/db' is not a port",
            id="clickhouse-port",
        ),
        pytest.param(
            ["load", "--warehouse", "clickhouse://127.0.0.1:0/db"],
            {},
            "the port in 'clickhouse://127.0.0.1:0/db' is not a port: use 1-65535",
            id="clickhouse-port-zero",
        ),
    ],
)
def test_bad_configuration_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    """The setting's mistake and its fix in one line on stderr (exit 1, or argparse's 2); no secret echoed."""
    (tmp_path / "latin1.toml").write_bytes(NOT_UTF8)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--data-dir" not in args and args[0] == "load":
        args += ["--data-dir", str(tmp_path)]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage error
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code in (1, 2), err
    assert message in err and err.strip().splitlines()[-1].count("error:") == 1, err
    if code == 1:
        assert len(err.strip().splitlines()) == 1, err
    assert "secretpw" not in err and ":pw@" not in err


def test_a_declarations_file_saved_in_another_encoding_keeps_the_old_declarations(tmp_path: Path) -> None:
    """The reload's reader says the file is not UTF-8 (a DeclarationError the server logs in one line)."""
    path = tmp_path / "server.toml"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(DeclarationError, match="not UTF-8 text"):
        read_applications(str(path))


def test_a_publish_config_in_another_encoding_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`publish --config` with a Latin-1 file: one line naming the file."""
    path = tmp_path / "publish.toml"
    path.write_bytes(b"# caf\xe9\n")
    code = main(["publish", "--config", str(path), "--out", str(tmp_path / "site"), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "publish.toml is not UTF-8 text" in err and len(err.strip().splitlines()) == 1, err


def test_a_duckdb_file_another_process_holds_says_to_run_again(tmp_path: Path) -> None:
    """delete-user (or load) while another process holds the DuckDB file: after the wait, one line saying what to do."""
    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path).close()
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)"
    with subprocess.Popen([sys.executable, "-c", hold, str(path)], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            with pytest.raises(WarehouseUnavailable, match="in use by another process") as info:
                DuckDBWarehouse(path, wait_seconds=0.3)
        finally:
            holder.kill()
    assert "run this again once it lets go" in str(info.value) and "\n" not in str(info.value)
