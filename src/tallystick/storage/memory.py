"""An in-process store for tests and demos: nothing survives the process.

It is obstore's in-memory store behind the same adapter as S3, GCS and Azure, so the
adapter's create-only, listing and error paths run in every quick test too.
"""

from __future__ import annotations

from tallystick.storage.bucket import MEMORY, BucketStore


class MemoryStore(BucketStore):
    """Objects in a dict inside obstore; ``memory://`` opens a new, empty one each time."""

    def __init__(self, url: str = "memory://") -> None:
        from obstore.store import MemoryStore as InMemory

        super().__init__(InMemory(), url=url, backend=MEMORY, bucket="memory")
