"""`/files/<key>` as CloudFront serves it from S3 in AWS: only objects tagged public at
publish, with their S3 ETag (strong, never changing), Last-Modified, byte ranges
(RFC 9110 section 14), If-Range and If-None-Match.

pip resumes an interrupted download with `Range: bytes=N-` and `If-Range: <ETag>` and
accepts nothing but an exact 206; this is what it talks to locally."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError
from werkzeug.test import EnvironBuilder

from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.http.problems import BadGateway

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from mypy_boto3_s3 import S3Client

IMMUTABLE = "public, max-age=31536000, immutable"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes] | None = None

    def close(self) -> None:
        _release(self.body)


class NotServed(Exception):
    """Nothing public at that key: CloudFront answers 403/404 the same way."""


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) for one satisfiable range; None to ignore the header (absent,
    malformed or several ranges: the whole file is sent); "unsatisfiable" for 416."""
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # malformed: ignored, as RFC 9110 allows
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


class FileOrigin:
    def __init__(self, s3: S3Client, bucket: str, s3_app: WSGIApplication) -> None:
        self._s3 = s3
        self._s3_app = s3_app
        self._bucket = bucket
        self._blobs = S3BlobStore(s3, bucket)

    def reply(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        key = unquote(path.split("?", 1)[0].removeprefix("/"))  # the path is the key
        if not key.startswith("files/") or not self._blobs.is_public(key):
            raise NotServed(key)
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError:
            raise NotServed(key) from None
        size = int(head["ContentLength"])
        etag = str(head["ETag"])
        modified = format_datetime(head["LastModified"].astimezone(UTC), usegmt=True)
        common = [
            ("ETag", etag),
            ("Last-Modified", modified),
            ("Accept-Ranges", "bytes"),
            # As CloudFront passes S3's on: a project page stored with its own (it moves
            # with the next publish); a file's never changes.
            ("Cache-Control", str(head.get("CacheControl") or IMMUTABLE)),
        ]
        if _etag_listed(headers.get("if-none-match"), etag):
            return Reply(304, common)
        wanted = parse_range(headers.get("range", ""), size) if "range" in headers else None
        if_range = headers.get("if-range")
        if wanted is not None and if_range is not None and if_range not in (etag, modified):
            wanted = None  # the file changed since the client's copy: send it whole
        if wanted == "unsatisfiable":
            return Reply(
                416, [*common, ("Content-Range", f"bytes */{size}"), ("Content-Length", "0")]
            )
        # As CloudFront passes it on: what the object was stored with.
        stored_type = str(head.get("ContentType") or "application/octet-stream")
        content = [*common, ("Content-Type", stored_type)]
        if isinstance(wanted, tuple):
            first, last = wanted
            content += [
                ("Content-Range", f"bytes {first}-{last}/{size}"),
                ("Content-Length", str(last - first + 1)),
            ]
            body = None if method == "HEAD" else self._fetch(key, etag, f"bytes={first}-{last}")
            return Reply(206, content, body)
        content.append(("Content-Length", str(size)))
        return Reply(200, content, None if method == "HEAD" else self._fetch(key, etag, None))

    def _fetch(self, key: str, etag: str, byte_range: str | None) -> Iterable[bytes]:
        """S3's GetObject for the bytes, asked before the status line goes out so that a
        failure is still a clean error.

        CloudFront reaches S3 over AWS's network. Here S3 is moto in this same process, so
        the request goes to moto's WSGI application directly: the same presigned GET (with
        Range, and If-Match so the bytes are the ones the headers describe), answered by
        moto's own S3 code, without a loopback hop that copies every byte through the
        kernel twice more and, on a two-core machine, made /files/ a third slower than S3."""
        url = urlsplit(self._blobs.presign_get(key, expires_in=300))
        headers = {"If-Match": etag, **({"Range": byte_range} if byte_range else {})}
        environ = EnvironBuilder(
            path=f"{url.path}?{url.query}",
            base_url=f"{url.scheme}://{url.netloc}",
            headers=list(headers.items()),
        ).get_environ()
        answered: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            answered.append(status)

        body = self._s3_app(environ, start_response)
        if int(answered[0].split()[0]) != (206 if byte_range else 200):
            _release(body)
            raise BadGateway(f"S3 answered {answered[0]} for {key}.")
        return body


def _release(body: Iterable[bytes] | None) -> None:
    """PEP 3333: the server calls the application's iterable's close, if it has one."""
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _etag_listed(header: str | None, etag: str) -> bool:
    if not header:
        return False
    listed = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in listed or etag in listed
