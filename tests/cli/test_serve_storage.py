"""`tallystick serve` against a bucket that is set up wrongly, as an operator meets it (moto server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from fixtures.common import wait_until
from fixtures.objectstores import S3Server


def test_a_missing_bucket_stops_serve_with_one_line(s3_server: S3Server) -> None:
    """A replica whose bucket does not exist says what to fix and exits, instead of answering every upload 503."""
    url = s3_server.url("no-such-bucket-here", "sessions")
    result = subprocess.run(
        [sys.executable, "-m", "tallystick.cli", "serve", "--app", "demo", "--port", "0", "--storage", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "S3 bucket 'no-such-bucket-here'" in lines[0] and "create it" in lines[0]
    assert s3_server.secret_access_key not in result.stderr


def test_the_banner_hides_the_secret_in_the_storage_url(s3_server: S3Server, tmp_path: Path) -> None:
    """The line saying where sessions go shows the storage URL with its secret as ``***``."""
    bucket = s3_server.create_bucket("banner-secret")
    secret = "not-for-logs-4d1f"  # moto accepts any key
    url = s3_server.url(bucket, "sessions").replace(
        f"secret_access_key={s3_server.secret_access_key}", f"secret_access_key={secret}"
    )
    argv = [sys.executable, "-m", "tallystick.cli", "serve", "--app", "demo", "--port", "0", "--storage", url]
    argv += ["--data-dir", str(tmp_path)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as server:
        try:
            assert server.stdout is not None
            banner = server.stdout.readline()
        finally:
            server.kill()
    assert f"storage s3://{bucket}/sessions?" in banner, banner
    assert secret not in banner and "secret_access_key=***" in banner


def test_an_unreachable_bucket_is_a_json_warning_in_serves_log(tmp_path: Path) -> None:
    """serve starts on a bucket it cannot reach yet, and says so in a JSON log line like all the others."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"s3://later/sessions?endpoint=http://127.0.0.1:{port}&access_key_id=a&secret_access_key=b"
    argv = [sys.executable, "-m", "tallystick.cli", "serve", "--app", "demo", "--port", "0", "--storage", url]
    log = tmp_path / "serve.log"
    with log.open("w") as err, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True) as server:
        try:
            assert server.stdout is not None
            assert "ingest listening on " in server.stdout.readline()
            wait_until(lambda: "Started server process" in log.read_text(), timeout=30, what="uvicorn's start line")
        finally:
            server.terminate()
            server.stdout.close()
    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON
    warning = next(r for r in records if r["level"] == "warning")
    assert warning["logger"] == "tallystick.server"
    assert f"at http://127.0.0.1:{port} cannot be reached" in warning["message"]
    assert warning["message"].endswith("; /readyz answers 503 until it is reachable")
