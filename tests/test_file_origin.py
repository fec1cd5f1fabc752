"""The local edge's /files/ origin against moto in-process: keys that need quoting reach
the right object through moto's application, and bytes that no longer match the headers
already chosen are a clean 502, never a wrong body."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.config import Settings
from chalicelib.http.problems import BadGateway
from chalicelib.http.simple import SIMPLE_JSON
from devserver.files import FileOrigin

KEY = "files/demo/abc/demo-1.0+local.2 ~x-py3-none-any.whl"
DATA = bytes(range(256)) * 40


@pytest.fixture
def published(aws: tuple[Any, Any, Any], settings: Settings) -> Any:
    s3 = aws[1]
    s3.put_object(Bucket=settings.bucket_name, Key=KEY, Body=DATA)
    S3BlobStore(s3, settings.bucket_name).mark_public([KEY])
    return s3


def origin(s3: Any, settings: Settings, app: Any = None) -> FileOrigin:
    return FileOrigin(
        s3, settings.bucket_name, app or DomainDispatcherApplication(create_backend_app)
    )


def body(reply: Any) -> bytes:
    return b"".join(reply.body)


def test_a_key_that_needs_quoting_is_served(published: Any, settings: Settings) -> None:
    files = origin(published, settings)
    whole = files.reply("GET", "/" + quote(KEY), {})
    assert (whole.status, body(whole)) == (200, DATA)
    part = files.reply("GET", "/" + quote(KEY), {"range": "bytes=100-199"})
    assert (part.status, body(part)) == (206, DATA[100:200])


def test_an_object_is_served_with_the_headers_it_was_stored_with(
    aws: tuple[Any, Any, Any], settings: Settings
) -> None:
    """As CloudFront passes S3's Content-Type and Cache-Control on (a project page stored
    by the API: it moves with the next publish, so installers must not keep it a year)."""
    key = "files/_pages/demo/0a1b.json"
    blobs = S3BlobStore(aws[1], settings.bucket_name)
    blobs.put_public(key, b"{}", SIMPLE_JSON, "public, max-age=60")
    reply = origin(aws[1], settings).reply("GET", "/" + key, {})
    assert reply.status == 200 and ("Content-Type", SIMPLE_JSON) in reply.headers
    assert ("Cache-Control", "public, max-age=60") in reply.headers
    assert body(reply) == b"{}"


def test_bytes_changed_after_the_headers_are_a_502(published: Any, settings: Settings) -> None:
    moto = DomainDispatcherApplication(create_backend_app)

    def replaced_first(environ: dict[str, Any], start_response: Any) -> Any:
        # The object is overwritten between the HEAD and the GET of one request.
        published.put_object(Bucket=settings.bucket_name, Key=KEY, Body=b"other bytes")
        return moto(environ, start_response)

    with pytest.raises(BadGateway):
        origin(published, settings, replaced_first).reply("GET", "/" + quote(KEY), {})


def test_head_asks_nothing_of_the_origin(published: Any, settings: Settings) -> None:
    def refuse(environ: dict[str, Any], start_response: Any) -> Any:
        raise AssertionError("HEAD fetched the body")

    reply = origin(published, settings, refuse).reply("HEAD", "/" + quote(KEY), {})
    assert reply.status == 200 and reply.body is None
    assert dict(reply.headers)["Content-Length"] == str(len(DATA))
