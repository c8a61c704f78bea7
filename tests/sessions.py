"""Building valid sessions for tests, with overrides."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

BASE: dict[str, Any] = {
    "sessionId": "0b8f6a6e-3c1d-4e7a-9a51-2f0c5d8e9b14",
    "userId": "5a1c2e3f-4b5d-4c6e-8f70-8192a3b4c5d6",
    "sessionStartTime": "2026-05-01T10:00:00.000Z",
    "sessionEndTime": "2026-05-01T10:00:01.500Z",
    "applicationId": "demo",
    "applicationVersion": "1.4.0",
    "attributes": {"operatingSystem": "Linux", "shell": "fish", "isCI": False, "projectSize": 12, "ratio": 0.5},
    "events": [
        {"type": "UpdateNudgeShown", "time": "2026-05-01T10:00:00.100Z", "attributes": {"latestVersion": "1.5.0"}}
    ],
    "spans": [
        {
            "type": "LoadConfig",
            "startTime": "2026-05-01T10:00:00.010Z",
            "endTime": "2026-05-01T10:00:00.060Z",
            "attributes": {"cached": True},
        }
    ],
}


def session(**overrides: Any) -> dict[str, Any]:
    """A valid session with a fresh sessionId; keyword arguments replace top-level fields."""
    result = copy.deepcopy(BASE)
    result["sessionId"] = str(uuid.uuid4())
    result.update(overrides)
    return result


def body(value: Any) -> bytes:
    return json.dumps(value).encode()
