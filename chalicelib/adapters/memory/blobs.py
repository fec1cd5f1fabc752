"""The blob store in memory: the fake of the BlobStore port for unit tests, held to the
same contract as S3 on moto (tests/test_blob_contract.py)."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from ...domain.ports import BlobGone, BlobInfo, Fetched, Listed, StoredPart, UploadGone


class MemoryBlobStore:
    def __init__(self, now: Callable[[], int] = lambda: int(time.time())) -> None:
        self._now = now
        self._written: dict[str, int] = {}
        self._objects: dict[str, bytes] = {}
        self._checked: dict[str, str] = {}  # key -> the SHA-256 its PUT was checked against
        self._uploads: dict[str, tuple[str, dict[int, bytes]]] = {}
        self._public: set[str] = set()
        self._lock = threading.Lock()

    def put_new(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = bytes(data)
            self._written[key] = self._now()
            return True

    def replace(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects[key] = bytes(data)
            self._written[key] = self._now()
            self._checked.pop(key, None)
            self._public.discard(key)

    def head(self, key: str) -> BlobInfo | None:
        data = self._objects.get(key)
        if data is None:
            return None
        return BlobInfo(size=len(data), etag='"' + hashlib.md5(data).hexdigest() + '"')

    def fetch(self, key: str, size: int) -> Fetched | None:
        data = self._objects.get(key)
        if data is None:
            return None
        if len(data) != size:
            return Fetched(b"", None, len(data))
        return Fetched(data, self._checked.get(key), size)

    def listed(self, prefix: str) -> list[Listed]:
        return [
            Listed(key, self._written.get(key, 0))
            for key in sorted(self._objects)
            if key.startswith(prefix)
        ]

    def read_range(self, key: str, start: int, length: int) -> bytes:
        data = self._objects.get(key)
        if data is None:
            raise BlobGone(key)
        return data[start : start + length]

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        data = self._objects.get(key)
        if data is None:
            raise BlobGone(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)
            self._checked.pop(key, None)
            self._written.pop(key, None)

    def keys(self) -> list[str]:
        return sorted(self._objects)

    def start_multipart(self, key: str) -> str:
        upload_id = f"upload-{len(self._uploads) + 1}"
        self._uploads[upload_id] = (key, {})
        return upload_id

    def stored_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        if upload_id not in self._uploads:
            raise UploadGone(upload_id)
        _, parts = self._uploads[upload_id]
        return [
            StoredPart(number=n, size=len(d), etag=hashlib.md5(d).hexdigest(), sha256=None)
            for n, d in sorted(parts.items())
        ]

    def presign_part(
        self, key: str, upload_id: str, number: int, size: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        signed = {"Content-Length": str(size), "x-amz-checksum-sha256": sha256_b64}
        return f"memory://{upload_id}/{number}", signed

    def presign_put(
        self, key: str, size: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        signed = {
            "Content-Length": str(size),
            "If-None-Match": "*",
            "x-amz-checksum-sha256": sha256_b64,
        }
        return f"memory://put/{key}", signed

    def put_part(self, url: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        """What a client's PUT to a presigned URL with `headers` does; the HTTP status S3
        would answer (400 for bytes other than the signed SHA-256's, as S3's BadDigest)."""
        target = url.removeprefix("memory://")
        length = (headers or {}).get("Content-Length")
        if length is not None and int(length) != len(data):
            return 403  # S3: the signed length is not the length sent
        stated = (headers or {}).get("x-amz-checksum-sha256")
        digest = hashlib.sha256(data).digest()
        if stated is not None and stated != base64.b64encode(digest).decode():
            return 400
        if target.startswith("put/"):
            key = target.removeprefix("put/")
            if not self.put_new(key, data):
                return 412
            if stated is not None:
                self._checked[key] = digest.hex()
            return 200
        upload_id, number = target.split("/")
        self._uploads[upload_id][1][int(number)] = data
        return 200

    def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        if upload_id not in self._uploads:
            raise UploadGone(upload_id)
        _, stored = self._uploads.pop(upload_id)
        self._objects[key] = b"".join(stored[p.number] for p in parts)
        self._written[key] = self._now()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)

    def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        return f"memory://get/{key}"

    def mark_public(self, keys: Sequence[str]) -> None:
        self._public.update(k for k in keys if k in self._objects)

    def put_public(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        with self._lock:
            if key not in self._objects:  # as S3's IfNoneMatch: an existing object stays
                self._objects[key] = bytes(data)
                self._written[key] = self._now()
                self._public.add(key)

    def is_public(self, key: str) -> bool:
        return key in self._public and key in self._objects

    def all_public(self, keys: Sequence[str]) -> bool:
        return all(map(self.is_public, keys))
