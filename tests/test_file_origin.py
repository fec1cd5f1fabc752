"""The local edge's /files/ origin against moto: keys that need quoting reach the right
object, and bytes that no longer match the headers already chosen are a clean 502, never a
wrong body."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.config import Settings
from chalicelib.errors import BadGateway
from devserver.files import FileOrigin

KEY = "files/demo/abc/demo-1.0+local.2 ~x-py3-none-any.whl"
DATA = bytes(range(256)) * 40


@pytest.fixture
def published(aws: tuple[Any, Any, Any], settings: Settings) -> Any:
    s3 = aws[1]
    s3.put_object(Bucket=settings.bucket_name, Key=KEY, Body=DATA)
    S3BlobStore(s3, settings.bucket_name).mark_public([KEY])
    return s3


def origin(s3: Any, settings: Settings) -> FileOrigin:
    return FileOrigin(s3, settings.bucket_name)


def body(reply: Any) -> bytes:
    return b"".join(reply.body)


def before_get(s3: Any, hook: Any) -> None:
    """Run `hook` just before each GetObject the origin sends (a before-call handler that
    returns something would answer the call in S3's place)."""

    def handler(**_: Any) -> None:
        hook()

    s3.meta.events.register("before-call.s3.GetObject", handler)


def test_a_key_that_needs_quoting_is_served(published: Any, settings: Settings) -> None:
    files = origin(published, settings)
    whole = files.reply("GET", "/" + quote(KEY), {})
    assert (whole.status, body(whole)) == (200, DATA)
    part = files.reply("GET", "/" + quote(KEY), {"range": "bytes=100-199"})
    assert (part.status, body(part)) == (206, DATA[100:200])


def test_bytes_changed_after_the_headers_are_a_502(published: Any, settings: Settings) -> None:
    # The object is overwritten between the HEAD and the GET of one request.
    before_get(
        published,
        lambda: published.put_object(Bucket=settings.bucket_name, Key=KEY, Body=b"other bytes"),
    )
    with pytest.raises(BadGateway):
        origin(published, settings).reply("GET", "/" + quote(KEY), {})


def test_head_asks_nothing_of_the_origin(published: Any, settings: Settings) -> None:
    def refuse() -> None:
        raise AssertionError("HEAD fetched the body")

    before_get(published, refuse)
    reply = origin(published, settings).reply("HEAD", "/" + quote(KEY), {})
    assert reply.status == 200 and reply.body is None
    assert dict(reply.headers)["Content-Length"] == str(len(DATA))
