"""Sending a file's bytes with the mechanism its file upload session names.

`http-post-bytes` (PEP 694's required mechanism): the whole file in one POST to
`mechanism.file_url`. `vnd-wharf-s3multipart-presigned-v1`: the file in parts of
`part_size` bytes, each PUT straight to storage through a presigned URL that signs the
part's SHA-256 in; the server lists which parts it has, so a rerun sends only the others."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from .api import Api, backoff, describe
from .dists import Dist
from .errors import NetworkError, Problem, Refused

HTTP_POST_BYTES = "http-post-bytes"
S3_MULTIPART = "-s3multipart-presigned-v1"  # vnd-<operator>-s3multipart-presigned-v1
PART_ATTEMPTS = 6


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
    """The file's bytes in one request (http-post-bytes files are small: the server caps
    them). Sent again after a crash, the server answers 409: the bytes are there."""
    data = dist.path.read_bytes()
    answer = api.call(
        "POST",
        mechanism["file_url"],
        content=data,
        content_type="application/octet-stream",
        idempotent=True,
        expect=(200, 201, 202, 204, 409),
        context=f"{dist.filename}: sending its bytes",
    )
    if answer.status == 409 and "already" not in str(answer.body).lower():
        raise Refused(Problem.from_answer(409, answer.body, "Conflict"), dist.filename)
    progress(len(data))


@dataclass
class Parts:
    """The multipart mechanism for one file: `parallel` parts in flight at once, so memory
    is bounded by parallel x part_size, never by the file's size."""

    api: Api
    dist: Dist
    mechanism: dict[str, Any]
    parallel: int
    progress: Progress

    def send(self) -> int:
        """Upload every part the server does not hold yet; returns how many were sent."""
        listed = self.api.get(self.mechanism["parts_url"], context=self._where("listing parts"))
        parts = listed.body.get("parts", []) if isinstance(listed.body, dict) else []
        missing = [p["number"] for p in parts if not p.get("uploaded")]
        held = sum(p["size"] for p in parts if p.get("uploaded"))
        if held:
            self.progress(held)
        errors: list[BaseException] = []
        stop = threading.Event()

        def one(number: int) -> None:
            if stop.is_set():
                return
            try:
                self._part(number)
            except BaseException as exc:
                stop.set()
                errors.append(exc)

        with ThreadPoolExecutor(max(1, self.parallel)) as pool:
            list(pool.map(one, missing))
        if errors:
            raise errors[0]
        return len(missing)

    def _where(self, what: str) -> str:
        return f"{self.dist.filename}: {what}"

    def _read(self, number: int) -> bytes:
        size = int(self.mechanism["part_size"])
        with self.dist.path.open("rb") as stream:
            stream.seek((number - 1) * size)
            return stream.read(size)

    def _sign(self, number: int, digest: str) -> dict[str, Any]:
        # Signing twice is harmless: asked again, the server signs a fresh URL.
        answer = self.api.call(
            "POST",
            self.mechanism["parts_url"],
            {"parts": [{"number": number, "sha256": digest}]},
            idempotent=True,
            context=self._where(f"signing part {number}"),
        )
        signed: dict[str, Any] = answer.body["parts"][0]
        return signed

    def _part(self, number: int) -> None:
        """Sign and PUT one part; a cut connection or a 5xx is retried with backoff (a
        part PUT again replaces itself), an expired URL is signed anew."""
        data = self._read(number)
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        signed = self._sign(number, digest)
        for attempt in range(PART_ATTEMPTS):
            last = attempt == PART_ATTEMPTS - 1
            try:
                reply = self.api.storage.put(signed["url"], content=data, headers=signed["headers"])
            except httpx.TransportError as exc:
                if last:
                    raise NetworkError(self._where(f"part {number}: {describe(exc)}")) from None
                self.api.sleep(backoff(attempt))
                continue
            if reply.status_code < 300:
                self.progress(len(data))
                return
            if reply.status_code == 403 and not last:  # expired: sign again
                signed = self._sign(number, digest)
                continue
            if (reply.status_code >= 500 or reply.status_code == 429) and not last:
                self.api.sleep(backoff(attempt))
                continue
            raise Refused(
                Problem(reply.status_code, f"storage refused part {number}", reply.text[:300]),
                self.dist.filename,
            )
