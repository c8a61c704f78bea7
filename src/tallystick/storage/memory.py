"""An in-process store for tests and demos: nothing survives the process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from tallystick.storage.base import ObjectInfo, ObjectNotFound, Store, check_key


class MemoryStore(Store):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._objects: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()

    def put_if_absent(self, key: str, data: bytes) -> bool:
        check_key(key)
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = (bytes(data), datetime.now(UTC))
            return True

    def get(self, key: str) -> bytes:
        with self._lock:
            try:
                return self._objects[key][0]
            except KeyError:
                raise ObjectNotFound(key) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = sorted((k, v) for k, v in self._objects.items() if k.startswith(prefix))
        for key, (data, modified) in items:
            yield ObjectInfo(key, len(data), modified)

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._objects.pop(key, None) is not None

    def check(self) -> None:
        return None
