"""Sending a file's bytes with the mechanism its file upload session names.

`http-post-bytes` (PEP 694's required mechanism): the whole file in one POST to
`mechanism.file_url`. `vnd-wharf-s3multipart-presigned-v1`: the file in parts of
`part_size` bytes, each PUT straight to storage through a presigned URL that signs the
part's SHA-256 in; the server lists which parts it has, so a rerun sends only the others."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from .api import Api, backoff, describe
from .dists import Dist
from .errors import NetworkError, Problem, Refused, UsageError

HTTP_POST_BYTES = "http-post-bytes"
S3_MULTIPART = "-s3multipart-presigned-v1"  # vnd-<operator>-s3multipart-presigned-v1
PART_ATTEMPTS = 6
STREAM_CHUNK = 1024 * 1024


def supported(identifier: str) -> bool:
    return identifier == HTTP_POST_BYTES or (
        identifier.startswith("vnd-") and identifier.endswith(S3_MULTIPART)
    )


def choose(offered: list[str]) -> str:
    """The server's most preferred mechanism this client speaks (PEP 694 "mechanisms"
    lists them in the server's order of preference)."""
    for identifier in offered:
        if supported(identifier):
            return identifier
    return HTTP_POST_BYTES  # every PEP 694 server supports it


Progress = Callable[[int], None]


def post_bytes(api: Api, dist: Dist, mechanism: dict[str, Any], progress: Progress) -> None:
    """The file's bytes in one request, streamed from disk. Sent again after a crash,
    the server may answer 409 (bytes already there): `complete` then decides."""
    api.call(
        "POST",
        mechanism["file_url"],
        content=lambda: _chunks(dist, 0, dist.size),
        content_type="application/octet-stream",
        headers={"Content-Length": str(dist.size)},
        idempotent=True,
        expect=(200, 201, 202, 204, 409),
        context=f"{dist.filename}: sending its bytes",
    )
    progress(dist.size)


def _chunks(dist: Dist, offset: int, length: int) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, a chunk at a time (a fresh iterator for
    each attempt: a retried request sends them again)."""
    with dist.path.open("rb") as stream:
        stream.seek(offset)
        while length > 0:
            chunk = stream.read(min(STREAM_CHUNK, length))
            if not chunk:
                raise UsageError(f"{dist.filename} became shorter on disk during the upload")
            length -= len(chunk)
            yield chunk


SIGN_BATCH = 100  # parts signed per request: URLs are used within minutes of signing


@dataclass
class Parts:
    """The multipart mechanism for one file: `parallel` parts in flight at once, each
    hashed and sent from disk in chunks, so memory stays flat whatever the file's size."""

    api: Api
    dist: Dist
    mechanism: dict[str, Any]
    parallel: int
    progress: Progress

    @property
    def _size(self) -> int:
        return int(self.mechanism["part_size"])

    def _length(self, number: int) -> int:
        return min(self._size, self.dist.size - (number - 1) * self._size)

    def send(self, *, fresh: bool = False) -> int:
        """Upload every part the server does not hold yet; returns how many were sent.
        A `fresh` file upload session holds none: no need to ask."""
        count = int(self.mechanism["part_count"])
        missing = list(range(1, count + 1))
        if not fresh:
            listed = self.api.get(self.mechanism["parts_url"], context=self._where("listing"))
            parts = listed.body.get("parts", []) if isinstance(listed.body, dict) else []
            held = {int(p["number"]) for p in parts if p.get("uploaded")}
            missing = [n for n in missing if n not in held]
            self.progress(sum(self._length(n) for n in held))
        errors: list[BaseException] = []
        stop = threading.Event()
        # Parts the server signed when it created the file (a file of one part whose
        # SHA-256 was declared): no need to hash and ask.
        presigned = {int(p["number"]): p for p in self.mechanism.get("parts") or []}

        def batch(numbers: list[int]) -> None:
            if stop.is_set():
                return
            try:
                signed = {n: presigned[n] for n in numbers if n in presigned}
                unsigned = [n for n in numbers if n not in signed]
                if unsigned:
                    signed |= self._sign({n: self._digest(n) for n in unsigned})
                for number in numbers:
                    if stop.is_set():
                        return
                    self._put(number, signed[number])
            except BaseException as exc:
                stop.set()
                errors.append(exc)

        # Each worker signs a small batch just before sending it, so no URL waits long.
        size = max(1, min(SIGN_BATCH, -(-len(missing) // max(1, self.parallel))))
        batches = [missing[i : i + size] for i in range(0, len(missing), size)]
        with ThreadPoolExecutor(max(1, self.parallel)) as pool:
            list(pool.map(batch, batches))
        if errors:
            raise errors[0]
        return len(missing)

    def _where(self, what: str) -> str:
        return f"{self.dist.filename}: {what}"

    def _chunks(self, number: int) -> Iterator[bytes]:
        return _chunks(self.dist, (number - 1) * self._size, self._length(number))

    def _digest(self, number: int) -> str:
        digest = hashlib.sha256()
        for chunk in self._chunks(number):
            digest.update(chunk)
        return base64.b64encode(digest.digest()).decode()

    def _sign(self, digests: dict[int, str]) -> dict[int, dict[str, Any]]:
        # Signing again is harmless: the server signs fresh URLs.
        answer = self.api.call(
            "POST",
            self.mechanism["parts_url"],
            {"parts": [{"number": n, "sha256": d} for n, d in digests.items()]},
            idempotent=True,
            context=self._where(f"signing parts {min(digests)}-{max(digests)}"),
        )
        return {int(p["number"]): p for p in answer.body["parts"]}

    def _put(self, number: int, signed: dict[str, Any]) -> None:
        """PUT one part, streamed from disk; a cut connection or a 5xx is retried with
        backoff (a part PUT again replaces itself), an expired URL is signed anew. A file
        of one part is PUT whole, once: 412 says an earlier attempt stored it (the URL
        signs the SHA-256 in, and `complete` checks the bytes anyway)."""
        length = self._length(number)
        for attempt in range(PART_ATTEMPTS):
            last = attempt == PART_ATTEMPTS - 1
            headers = {**signed["headers"], "Content-Length": str(length)}
            try:
                reply = self.api.storage.put(
                    signed["url"], content=self._chunks(number), headers=headers
                )
            except httpx.TransportError as exc:
                if last:
                    raise NetworkError(self._where(f"part {number}: {describe(exc)}")) from None
                self.api.sleep(backoff(attempt))
                continue
            if reply.status_code < 300 or reply.status_code == 412:
                self.progress(length)
                return
            if reply.status_code == 403 and not last:  # expired: sign again
                signed = self._sign({number: self._digest(number)})[number]
                continue
            if (reply.status_code >= 500 or reply.status_code == 429) and not last:
                self.api.sleep(backoff(attempt))
                continue
            raise Refused(
                Problem(reply.status_code, f"storage refused part {number}", reply.text[:300]),
                self.dist.filename,
            )
