"""Ports: what the services need from the outside world, and the domain-level failures
adapters report (never an AWS error code; the services never see botocore)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from .records import FileRecord, SessionRecord


class Clock(Protocol):
    def now(self) -> int: ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


@dataclass(frozen=True)
class BlobInfo:
    size: int
    etag: str


class BlobStore(Protocol):
    """Where file bytes live (S3 in production)."""

    def put_new(self, key: str, data: bytes) -> bool:
        """Store `data` at `key` unless something is there; False if it was."""
        ...

    def head(self, key: str) -> BlobInfo | None: ...

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...


class StoreConflict(Exception):
    """A conditional write found the data in another state than it required."""


class AlreadyExists(StoreConflict):
    pass


class LiveSessionExists(StoreConflict):
    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class ProjectTaken(StoreConflict):
    """The project record appeared (or changed) between our read and our write."""


class SessionChanged(StoreConflict):
    """The session is not in a state that allows the write; carries what it is now."""

    def __init__(self, current: SessionRecord | None) -> None:
        super().__init__(current.status if current else "gone")
        self.current = current


class FileChanged(StoreConflict):
    def __init__(self, current: FileRecord | None) -> None:
        super().__init__(current.status if current else "gone")
        self.current = current


class FilenameInUse(StoreConflict):
    def __init__(self, file_id: str) -> None:
        super().__init__(file_id)
        self.file_id = file_id
