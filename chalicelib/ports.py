"""Ports: what the services need from the outside world, and the domain-level failures
adapters report (never an AWS error code; the services never see botocore)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
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


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str
    sha256: str | None  # base64, as S3 reports x-amz-checksum-sha256


class BlobStore(Protocol):
    """Where file bytes live (S3 in production)."""

    def start_multipart(self, key: str) -> str:
        """Begin a multipart upload to `key`; its upload id."""
        ...

    def stored_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """Every part stored so far, in part-number order (all pages of ListParts).
        Raises UploadGone when the multipart upload no longer exists."""
        ...

    def presign_part(
        self, key: str, upload_id: str, number: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """A URL for PUTting one part, and the headers the client must send with it."""
        ...

    def presign_put(self, key: str, sha256_b64: str, expires_in: int) -> tuple[str, dict[str, str]]:
        """A URL for PUTting the whole object at `key` with that SHA-256, and the headers
        the client must send with it. It writes only where nothing is: sent again once the
        object exists, it is refused (412), so it can never replace a completed file."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        """Assemble the object from `parts`; UploadGone when the upload no longer exists."""
        ...

    def presign_get(self, key: str, expires_in: int) -> str:
        """A URL that downloads `key` for `expires_in` seconds (staged files)."""
        ...

    def mark_public(self, keys: Sequence[str]) -> None:
        """Let the edge serve every key (an object tag: it keeps the ETag). Many at once:
        an inline publish of up to WHARF_INLINE_PUBLISH_MAX_FILES files must finish well
        within API Gateway's 29 s."""
        ...

    def is_public(self, key: str) -> bool: ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an unfinished multipart upload and its parts (idempotent)."""
        ...

    def put_new(self, key: str, data: bytes) -> bool:
        """Store `data` at `key` unless something is there; False if it was."""
        ...

    def head(self, key: str) -> BlobInfo | None: ...

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's bytes; BlobGone when there is no such object (never was, or was
        deleted meanwhile, e.g. by a cancel racing a verification)."""
        ...

    def delete(self, key: str) -> None: ...


class EdgeCache(Protocol):
    """The CDN in front of the index (CloudFront in AWS; nothing caches locally)."""

    def invalidate(self, paths: list[str]) -> None: ...


class JobQueue(Protocol):
    """Deferred work (SQS in production); delivery is at least once."""

    def send(self, job: dict[str, str]) -> None: ...


class BlobGone(Exception):
    """The object is not in the blob store (any more)."""


class UploadGone(Exception):
    """The multipart upload is not in the blob store any more: aborted by the bucket's
    lifecycle rule for abandoned uploads, or by a cancel. Its parts are lost."""


class StoreBusy(Exception):
    """Writes kept colliding with other transactions on the same items (DynamoDB's
    TransactionConflict) after every retry: nothing was written; the caller may retry
    the whole request later."""

    retry_after = 1


class StoreConflict(Exception):
    """A conditional write found the data in another state than it required."""


class AlreadyExists(StoreConflict):
    pass


class UnknownUser(StoreConflict):
    """The user a token or role was for is not there (never was, or just deleted)."""


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
