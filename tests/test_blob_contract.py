"""One contract, two blob stores: the in-memory fake and S3 (on moto)."""

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.memory import MemoryBlobStore
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.config import Settings
from chalicelib.ports import BlobStore


@pytest.fixture(params=["memory", "s3"])
def blobs(request: pytest.FixtureRequest, settings: Settings) -> Iterator[BlobStore]:
    if request.param == "memory":
        yield MemoryBlobStore()
    else:
        aws: tuple[Any, Any] = request.getfixturevalue("aws")
        yield S3BlobStore(aws[1], settings.bucket_name)


def test_a_key_is_written_once(blobs: BlobStore) -> None:
    assert blobs.put_new("p/1/f.whl", b"first")
    assert not blobs.put_new("p/1/f.whl", b"second")
    assert b"".join(blobs.stream("p/1/f.whl")) == b"first"


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


def test_delete_is_idempotent(blobs: BlobStore) -> None:
    blobs.put_new("k", b"x")
    blobs.delete("k")
    blobs.delete("k")
    assert blobs.head("k") is None
    assert blobs.put_new("k", b"y")
