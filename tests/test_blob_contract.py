"""One contract, three blob stores: the in-memory fake, S3 on moto in-process, and S3 on
the local stack's embedded AWS (moto behind its guard, over HTTP), which also checks a
PUT's signed SHA-256 as S3 does."""

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.memory.blobs import MemoryBlobStore
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.adapters.schema import create_bucket
from chalicelib.config import Settings
from chalicelib.domain.ports import BlobGone, BlobStore, UploadGone
from devserver.moto_guard import EmbeddedAws

# Stores that refuse bytes other than the SHA-256 signed into a presigned URL, as S3 does
# (moto in-process stores whatever it is sent).
CHECKING = ("memory", "s3-local")


@pytest.fixture(params=["memory", "s3", "s3-local"])
def blobs(request: pytest.FixtureRequest, settings: Settings) -> Iterator[BlobStore]:
    if request.param == "memory":
        yield MemoryBlobStore()
    elif request.param == "s3":
        aws: tuple[Any, Any, Any] = request.getfixturevalue("aws")
        yield S3BlobStore(aws[1], settings.bucket_name)
    else:
        embedded: EmbeddedAws = request.getfixturevalue("embedded")
        s3 = boto3.client(
            "s3",
            endpoint_url=embedded.url,
            region_name="us-east-1",
            aws_access_key_id="wharf-local",
            aws_secret_access_key="wharf-local",
        )
        bucket = f"contract-{uuid.uuid4().hex[:12]}"
        create_bucket(s3, bucket, "us-east-1")
        yield S3BlobStore(s3, bucket)


def checking(request: pytest.FixtureRequest) -> bool:
    return request.node.callspec.params["blobs"] in CHECKING


def test_a_key_is_written_once(blobs: BlobStore) -> None:
    assert blobs.put_new("p/1/f.whl", b"first")
    assert not blobs.put_new("p/1/f.whl", b"second")
    assert b"".join(blobs.stream("p/1/f.whl")) == b"first"


def test_replace_stores_whatever_is_there_and_privately(blobs: BlobStore) -> None:
    """Only for the index's own objects (listings): a file's key is written once."""
    blobs.replace("files/_listings/v2/p.json", b"first")
    blobs.replace("files/_listings/v2/p.json", b"second")
    assert b"".join(blobs.stream("files/_listings/v2/p.json")) == b"second"
    blobs.put_public("files/_pages/p/abc.json", b"page", "application/json", "max-age=60")
    blobs.replace("files/_pages/p/abc.json", b"other")
    assert not blobs.is_public("files/_pages/p/abc.json")


def test_a_public_object_is_written_once_and_served_at_once(blobs: BlobStore) -> None:
    blobs.put_public("files/_pages/p/abc.json", b"first", "application/json", "max-age=60")
    blobs.put_public("files/_pages/p/abc.json", b"second", "application/json", "max-age=60")
    assert blobs.is_public("files/_pages/p/abc.json")
    assert b"".join(blobs.stream("files/_pages/p/abc.json")) == b"first"


def test_head_reports_size_and_a_stable_etag(blobs: BlobStore) -> None:
    assert blobs.head("missing") is None
    blobs.put_new("k", b"abc")
    info = blobs.head("k")
    assert info is not None and info.size == 3
    assert info.etag and blobs.head("k") == info


def test_stream_yields_bounded_chunks(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 40
    blobs.put_new("k", data)
    chunks = list(blobs.stream("k", chunk_size=1000))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 1000


def test_streaming_a_missing_object_is_blob_gone(blobs: BlobStore) -> None:
    with pytest.raises(BlobGone):
        list(blobs.stream("files/never/written.whl"))
    blobs.put_new("files/a/x.whl", b"x")
    blobs.delete("files/a/x.whl")
    with pytest.raises(BlobGone):
        list(blobs.stream("files/a/x.whl"))


def test_delete_is_idempotent(blobs: BlobStore) -> None:
    blobs.put_new("k", b"x")
    blobs.delete("k")
    blobs.delete("k")
    assert blobs.head("k") is None
    assert blobs.put_new("k", b"y")


def put_part(
    blobs: BlobStore, url: str, headers: dict[str, str], data: bytes, expect: int = 200
) -> None:
    """The client's side: PUT the bytes to the presigned URL with exactly `headers`."""
    if isinstance(blobs, MemoryBlobStore):
        assert blobs.put_part(url, data, headers) == expect
        return
    import requests  # moto intercepts requests to AWS endpoints in-process

    response = requests.put(url, data=data, headers=headers, timeout=30)
    assert response.status_code == expect, response.text


def _b64sha256(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_multipart_upload_through_presigned_urls(blobs: BlobStore) -> None:
    key = "p/2/big.whl"
    upload = blobs.start_multipart(key)
    first, last = b"a" * (5 * 1024 * 1024), b"tail"
    for number, data in ((2, last), (1, first)):
        url, headers = blobs.presign_part(key, upload, number, len(data), _b64sha256(data), 900)
        assert headers == {
            "Content-Length": str(len(data)),
            "x-amz-checksum-sha256": _b64sha256(data),
        }
        put_part(blobs, url, headers, data)
    parts = blobs.stored_parts(key, upload)
    assert [(p.number, p.size) for p in parts] == [(1, len(first)), (2, len(last))]
    assert blobs.head(key) is None  # nothing is visible before completion
    blobs.complete_multipart(key, upload, parts)
    assert b"".join(blobs.stream(key)) == first + last


def test_a_whole_file_through_one_presigned_put_is_written_once(blobs: BlobStore) -> None:
    key = "p/6/small.whl"
    data = b"a wheel's bytes"
    url, headers = blobs.presign_put(key, len(data), _b64sha256(data), 900)
    assert headers["x-amz-checksum-sha256"] == _b64sha256(data)
    assert headers["If-None-Match"] == "*"
    put_part(blobs, url, headers, data)
    assert b"".join(blobs.stream(key)) == data
    # The same URL sent again (a retry after a lost answer, or a URL that outlived the
    # upload) cannot replace the object.
    put_part(blobs, url, headers, data, expect=412)
    assert b"".join(blobs.stream(key)) == data


def test_fetch_answers_the_whole_object_and_only_a_checked_sha256(
    blobs: BlobStore, request: pytest.FixtureRequest
) -> None:
    assert blobs.fetch("p/7/none.whl", 1) is None
    assert blobs.put_new("p/7/own.whl", b"written by the service")
    own = blobs.fetch("p/7/own.whl", 22)
    assert own is not None and own.data == b"written by the service" and own.size == 22
    # A PutObject of the service's own states no SHA-256: nothing was checked.
    assert own.sha256 is None
    data = b"a wheel sent whole"
    url, headers = blobs.presign_put("p/7/sent.whl", len(data), _b64sha256(data), 900)
    put_part(blobs, url, headers, data)
    sent = blobs.fetch("p/7/sent.whl", len(data))
    assert sent is not None and sent.data == data
    digest = hashlib.sha256(data).hexdigest()
    # A store that checked the bytes says so; one that did not (moto in-process) says
    # nothing, and the verifier hashes them itself.
    assert sent.sha256 == (digest if checking(request) else None)


def test_an_object_of_another_size_than_asked_is_not_read(blobs: BlobStore) -> None:
    """An uploader who declared a small file and stored a large one cannot make the
    verifier read the large one: only its size is answered."""
    assert blobs.put_new("p/10/f.whl", b"x" * 100)
    fetched = blobs.fetch("p/10/f.whl", 4)
    assert fetched is not None and (fetched.size, fetched.data, fetched.sha256) == (100, b"", None)


def test_bytes_of_another_length_than_signed_are_refused(
    blobs: BlobStore, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["blobs"] != "memory":
        pytest.skip("moto checks no signature: S3 refuses the unsigned length (403)")
    url, headers = blobs.presign_put("p/11/f.whl", 6, _b64sha256(b"signed"), 900)
    put_part(blobs, url, headers, b"signed and more", expect=403)
    assert blobs.fetch("p/11/f.whl", 6) is None


def test_bytes_other_than_the_signed_sha256_are_refused(
    blobs: BlobStore, request: pytest.FixtureRequest
) -> None:
    if not checking(request):
        pytest.skip("moto in-process stores whatever it is sent")
    url, headers = blobs.presign_put("p/8/f.whl", 6, _b64sha256(b"signed"), 900)
    put_part(blobs, url, headers, b"others", expect=400)
    assert blobs.fetch("p/8/f.whl", 5) is None
    upload = blobs.start_multipart("p/8/big.whl")
    url, headers = blobs.presign_part("p/8/big.whl", upload, 1, 6, _b64sha256(b"signed"), 900)
    put_part(blobs, url, headers, b"others", expect=400)
    assert blobs.stored_parts("p/8/big.whl", upload) == []


def test_listed_names_every_object_under_a_prefix_with_when_it_was_written(
    blobs: BlobStore,
) -> None:
    assert blobs.listed("files/_pages/") == []
    for key in ("files/_pages/a/1.json", "files/_pages/a/2.html", "files/a-1.0.tar.gz"):
        assert blobs.put_new(key, b"x")
    listed = blobs.listed("files/_pages/")
    assert [entry.key for entry in listed] == ["files/_pages/a/1.json", "files/_pages/a/2.html"]
    assert all(entry.written_at > 1_700_000_000 for entry in listed)  # epoch seconds


def test_read_range_answers_what_is_there(blobs: BlobStore) -> None:
    assert blobs.put_new("p/9/f.whl", b"0123456789")
    assert blobs.read_range("p/9/f.whl", 2, 3) == b"234"
    assert blobs.read_range("p/9/f.whl", 8, 5) == b"89"
    with pytest.raises(BlobGone):
        blobs.read_range("p/9/none.whl", 0, 1)


def test_abort_discards_the_parts_and_is_idempotent(blobs: BlobStore) -> None:
    key = "p/3/f.whl"
    upload = blobs.start_multipart(key)
    url, headers = blobs.presign_part(key, upload, 1, 1, _b64sha256(b"x"), 900)
    put_part(blobs, url, headers, b"x")
    blobs.abort_multipart(key, upload)
    blobs.abort_multipart(key, upload)
    assert blobs.head(key) is None


def test_a_vanished_upload_is_reported_as_gone(blobs: BlobStore) -> None:
    # What the bucket's lifecycle rule leaves of an abandoned multipart upload.
    key = "p/4/f.whl"
    upload = blobs.start_multipart(key)
    blobs.abort_multipart(key, upload)
    with pytest.raises(UploadGone):
        blobs.stored_parts(key, upload)


def test_many_keys_are_marked_public_at_once(blobs: BlobStore) -> None:
    keys = [f"p/5/{n}.whl" for n in range(40)]
    for key in keys:
        assert blobs.put_new(key, key.encode())
    blobs.mark_public(keys[:39])
    assert [blobs.is_public(k) for k in keys] == [True] * 39 + [False]
    assert blobs.all_public(keys[:39]) and not blobs.all_public(keys)
    assert not blobs.all_public(["p/5/none.whl"]) and blobs.all_public([])
    blobs.mark_public([])


def test_s3_presigns_sigv4_with_the_checksum_signed(settings: Settings, aws: Any) -> None:
    blobs = S3BlobStore(aws[1], settings.bucket_name)
    upload = blobs.start_multipart("k")
    url, headers = blobs.presign_part("k", upload, 1, 1, _b64sha256(b"x"), 900)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    signed = url.split("X-Amz-SignedHeaders=")[1].split("&")[0].split("%3B")
    assert sorted(signed) == sorted(["host", *(h.lower() for h in headers)])
    assert "X-Amz-Expires=900" in url


def test_s3_presigns_a_whole_put_with_its_headers_signed(settings: Settings, aws: Any) -> None:
    blobs = S3BlobStore(aws[1], settings.bucket_name)
    url, headers = blobs.presign_put("k", 1, _b64sha256(b"x"), 900)
    signed = url.split("X-Amz-SignedHeaders=")[1].split("&")[0].split("%3B")
    assert sorted(signed) == sorted(["host", *(h.lower() for h in headers)])
