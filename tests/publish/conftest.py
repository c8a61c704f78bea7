"""Demo data with planted values around the minimum cell count, in a DuckDB warehouse, published once.

Planted on top of the demo's users (each value its own users, on the demo's last days):
one user with a rare shell, operating system and version; exactly ``K`` users with one
shell; a tail of small shells that together reach ``K`` (so "other" needs no secondary
suppression); and ``K`` + 2 users whose shell is an HTML payload.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tallystick import demo
from tallystick.schema import Session
from tallystick.storage.layout import encode_session, session_key
from tallystick.storage.memory import MemoryStore
from tallystick.warehouse.base import Warehouse
from tallystick.warehouse.duckdb import DuckDBWarehouse
from tallystick.warehouse.loader import Loader

K = 10
NOW = datetime(2025, 7, 1, tzinfo=UTC)  # "published" on the page
END = datetime(2025, 6, 30, tzinfo=UTC)
RARE = {"shell": "zqxrareshell", "operatingSystem": "ZqxRareOS", "applicationVersion": "9.9.9-zqxrare"}
EXACTLY_K_SHELL = "kexactshell"
TAIL_SHELLS = ("tailshella", "tailshellb", "tailshellc")  # 4 users each: 12 in "other"
PAYLOAD_SHELL = '<img src=x onerror="window.__pwned=1">'


def planted(template: dict[str, Any], n_users: int, *, day: int, **fields: str) -> list[dict[str, Any]]:
    """``n_users`` new users, one session each, on the demo's ``day``-th last day, with ``fields`` set."""
    out = []
    for i in range(n_users):
        s = json.loads(json.dumps(template))
        start = END - timedelta(days=day, hours=i % 20 + 1)
        s.update(
            sessionId=str(uuid.uuid4()),
            userId=str(uuid.uuid4()),
            sessionStartTime=start.isoformat().replace("+00:00", "Z"),
            sessionEndTime=(start + timedelta(seconds=2)).isoformat().replace("+00:00", "Z"),
            events=[],
            spans=[],
        )
        s.pop("ingestionTime", None)
        for key, value in fields.items():
            if key == "applicationVersion":
                s[key] = value
            else:
                s["attributes"][key] = value
        out.append(s)
    return out


def sessions() -> list[dict[str, Any]]:
    """The demo's sessions plus the planted ones."""
    out = list(demo.generate(6000, users=300, days=60, seed=5, end=END))
    template = out[-1]
    out += planted(template, 1, day=2, **RARE)
    out += planted(template, K, day=3, shell=EXACTLY_K_SHELL)
    for j, shell in enumerate(TAIL_SHELLS):
        out += planted(template, 4, day=4 + j, shell=shell)
    out += planted(template, K + 2, day=8, shell=PAYLOAD_SHELL)
    return out


def load(warehouse: Warehouse, sessions: list[dict[str, Any]]) -> None:
    """Through storage and the real loader."""
    store = MemoryStore()
    decoder = msgspec.json.Decoder(Session)
    for s in sessions:
        session = decoder.decode(json.dumps(s))
        store.put_if_absent(session_key(session), encode_session(session))
    assert Loader(store, warehouse).run().loaded == len(sessions)


def build(path: Path) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(path)
    load(warehouse, sessions())
    return warehouse


@pytest.fixture(scope="session")
def planted_sessions() -> list[dict[str, Any]]:
    return sessions()


@pytest.fixture(scope="session")
def planted_warehouse(
    planted_sessions: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path_factory.mktemp("publish") / "planted.duckdb")
    load(warehouse, planted_sessions)
    yield warehouse
    warehouse.close()


CONFIG = f"""
title = "How people use {{app}}"
k = {K}
round_to = 1

[[chart]]
analysis = "adoption"
title = "Versions in use"

[[chart]]
analysis = "breakdown"
params = {{ attribute = "operatingSystem" }}
title = "Operating systems"

[[chart]]
analysis = "breakdown"
params = {{ attribute = "shell" }}
title = "Shells"

[[chart]]
analysis = "breakdown"
params = {{ attribute = "shell", every = "week" }}
chart = "lines"
title = "Shells over time"

[[chart]]
analysis = "feature-impact"
params = {{ feature = "tabCompletion", outcome = "UnknownCommand" }}
title = "Tab completion"

[[chart]]
analysis = "distribution"
params = {{ attribute = "projectTasks" }}
title = "Project sizes"
"""


@pytest.fixture(scope="session")
def planted_site(planted_warehouse: DuckDBWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind of chart over the planted data, counts not rounded (the strictest case for the grep)."""
    from tallystick.publish import parse_config, publish

    out = tmp_path_factory.mktemp("site")
    publish(planted_warehouse, parse_config(CONFIG), out, now=NOW)
    return out
