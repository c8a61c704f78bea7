"""Batect-shaped sessions, stored as sent, load into every warehouse with nothing lost."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from batect_sessions import corpus
from sessions import body
from tallystick.schema import parse_session
from tallystick.storage.layout import encode_json, session_key, stamped_json
from tallystick.storage.local import LocalStore
from tallystick.warehouse import Warehouse
from tallystick.warehouse.dialect import dialect_of
from tallystick.warehouse.loader import Loader


def _store_as_ingest_does(store: LocalStore, tree: dict[str, Any]) -> None:
    raw = body(tree)
    parsed = parse_session(raw)
    text = stamped_json(parsed, raw, datetime(2026, 5, 1, tzinfo=UTC))
    assert store.put_if_absent(session_key(parsed), encode_json(text))


def _attributes(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _micros(text: str) -> datetime:
    """The UTC instant of an RFC 3339 text, cut to microseconds as the warehouse keeps it."""
    return datetime.fromisoformat(re.sub(r"(\.[0-9]{6})[0-9]+", r"\1", text))


def _same_instant(got: datetime, text: str, exact: bool) -> bool:
    """DuckDB keeps microseconds (nanoseconds cut); ClickHouse's DateTime keeps seconds."""
    want = _micros(text).astimezone(UTC)
    got = got.replace(tzinfo=UTC)
    return got == want if exact else got == want.replace(microsecond=0)


def test_corpus_loads_with_every_event_span_and_attribute(
    store: LocalStore, warehouse: Warehouse, warehouse_spec: str
) -> None:
    """Every session, event, span and attribute (stack traces whole) arrives; times as precise as the engine keeps."""
    exact = warehouse_spec.endswith(".duckdb")
    sessions = corpus()
    for tree in sessions:
        _store_as_ingest_does(store, tree)
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.rejected, stats.duplicates) == (len(sessions), 0, 0)
    for tree in sessions:
        sid = tree["sessionId"]
        (row,) = warehouse.query(
            "SELECT applicationVersion, attributes, sessionStartTime FROM sessions WHERE sessionId = ?", [sid]
        ).rows
        assert row[0] == tree["applicationVersion"]
        assert _attributes(row[1]) == tree["attributes"]
        assert _same_instant(row[2], tree["sessionStartTime"], exact)
        events = warehouse.query("SELECT type, time, attributes FROM events WHERE sessionId = ?", [sid]).rows
        got = sorted((r[0], json.dumps(_attributes(r[2]), sort_keys=True)) for r in events)
        assert got == sorted((e["type"], json.dumps(e["attributes"], sort_keys=True)) for e in tree["events"])
        times = {e["type"]: e["time"] for e in tree["events"]}
        assert all(_same_instant(r[1], times[r[0]], exact) for r in events if r[0] != "UnhandledException")
        spans = warehouse.query("SELECT type, attributes, startTime FROM spans WHERE sessionId = ?", [sid]).rows
        got = sorted((r[0], json.dumps(_attributes(r[1]), sort_keys=True)) for r in spans)
        assert got == sorted((s["type"], json.dumps(s["attributes"], sort_keys=True)) for s in tree["spans"])
        starts = {s["type"]: s["startTime"] for s in tree["spans"]}
        assert all(_same_instant(r[2], starts[r[0]], exact) for r in spans)
    traces = warehouse.query("SELECT attributes FROM events WHERE type = 'UnhandledException'").rows
    sent = sorted(e["attributes"]["exception"] for s in sessions for e in s["events"] if "exception" in e["attributes"])
    assert sorted(_attributes(r[0])["exception"] for r in traces) == sent
    assert len(sent) >= 9 and max(map(len, sent)) > 30_000


def test_a_session_re_sent_with_another_start_date_is_one_row(store: LocalStore, warehouse: Warehouse) -> None:
    """Two objects under two keys (Abacus keyed by version, we by start date): one session, its events once."""
    first = corpus()[3]
    _store_as_ingest_does(store, first)
    moved = dict(first, sessionStartTime="2020-07-01T00:00:00.000000001Z")
    _store_as_ingest_does(store, moved)
    assert len(list(store.list("sessions/"))) == 2
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.duplicates) == (1, 1)
    sid = first["sessionId"]
    assert warehouse.query("SELECT count(*) FROM sessions WHERE sessionId = ?", [sid]).rows == [(1,)]
    events = warehouse.query("SELECT count(*) FROM events WHERE sessionId = ?", [sid]).rows
    assert events == [(len(first["events"]),)]


def test_times_far_from_now_load_on_every_engine(store: LocalStore, warehouse: Warehouse, warehouse_spec: str) -> None:
    """Times the contract takes (years 0001-9999) load everywhere: DuckDB keeps them; ClickHouse's DateTime,
    which holds 1970-2106 only, gets one inside that range (docs/warehouse.md)."""
    early, late = dict(corpus()[0]), dict(corpus()[1])
    early["sessionStartTime"] = "1960-03-04T05:06:07Z"
    late["sessionEndTime"] = "2300-01-01T00:00:00Z"
    for tree in (early, late):
        _store_as_ingest_does(store, tree)
    stats = Loader(store, warehouse).run()
    assert (stats.loaded, stats.rejected) == (2, 0)
    (start,) = warehouse.query("SELECT sessionStartTime FROM sessions WHERE sessionId = ?", [early["sessionId"]]).rows
    (end,) = warehouse.query("SELECT sessionEndTime FROM sessions WHERE sessionId = ?", [late["sessionId"]]).rows
    day = dialect_of(warehouse).day('"sessionStartTime"')
    days = [r[0] for r in warehouse.query(f"SELECT {day} FROM sessions").rows]
    assert len(days) == 2 and all(isinstance(d, date) for d in days)  # each a day, also where Date is 0
    if warehouse_spec.endswith(".duckdb"):
        assert (start[0], end[0]) == (datetime(1960, 3, 4, 5, 6, 7), datetime(2300, 1, 1))
    else:
        assert datetime(1970, 1, 1) <= start[0].replace(tzinfo=None) <= datetime(2106, 2, 8)
        assert datetime(1970, 1, 1) <= end[0].replace(tzinfo=None) <= datetime(2106, 2, 8)
