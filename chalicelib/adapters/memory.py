"""In-memory stand-ins for ports, for unit tests. The contract tests run the same suite
against these and against the real adapters on moto."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator

from ..ports import BlobInfo


class MemoryBlobStore:
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_new(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = bytes(data)
            return True

    def head(self, key: str) -> BlobInfo | None:
        data = self._objects.get(key)
        if data is None:
            return None
        return BlobInfo(size=len(data), etag='"' + hashlib.md5(data).hexdigest() + '"')

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        data = self._objects[key]
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def keys(self) -> list[str]:
        return sorted(self._objects)


class FixedClock:
    def __init__(self, now: int = 1_800_000_000) -> None:
        self.value = now

    def now(self) -> int:
        return self.value

    def advance(self, seconds: int) -> None:
        self.value += seconds
