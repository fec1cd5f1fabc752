"""How the verifier reads stored bytes (services/verification.py, issue 13): a file sent
whole in one request, hashed only when the store did not check its SHA-256; a larger one
streamed once (hashed, and walked or inspected in the same pass, a wheel's METADATA and
central directory kept as they pass), what a walk did not keep read by range; never a
second whole read. On the in-memory blob store, counting its calls."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from collections import Counter
from typing import Any

import pytest
from packaging.version import Version

from chalicelib.adapters.memory.blobs import MemoryBlobStore
from chalicelib.adapters.memory.clock import FixedClock
from chalicelib.domain.distributions import LocalWalk
from chalicelib.domain.mechanisms import HTTP_POST_BYTES
from chalicelib.domain.names import release_key
from chalicelib.domain.records import FileRecord, SessionRecord
from chalicelib.domain.states import FileStatus, SessionStatus
from chalicelib.services.verification import IN_MEMORY_MAX, Unverified, Verifier
from tests.dists import metadata, sdist, wheel

BIG = IN_MEMORY_MAX + 1024 * 1024  # streamed, not fetched whole


class Counted(MemoryBlobStore):
    """The in-memory store, counting each read and the bytes each returns."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.bytes_read = 0

    def fetch(self, key: str, size: int) -> Any:
        self.calls["fetch"] += 1
        fetched = super().fetch(key, size)
        self.bytes_read += len(fetched.data) if fetched else 0
        return fetched

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Any:
        self.calls["stream"] += 1
        for chunk in super().stream(key, chunk_size):
            self.bytes_read += len(chunk)
            yield chunk

    def read_range(self, key: str, start: int, length: int) -> bytes:
        self.calls["read_range"] += 1
        data = super().read_range(key, start, length)
        self.bytes_read += len(data)
        return data

    def head(self, key: str) -> Any:
        self.calls["head"] += 1
        return super().head(key)


def session() -> SessionRecord:
    return SessionRecord(
        id="s",
        token="t",
        project="demo",
        version="1.0",
        version_key=release_key(Version("1.0")),
        status=SessionStatus.OPEN,
        created_at=0,
        expires_at=10**10,
        created_by="someone",
        first_release=True,
    )


def record(filename: str, data: bytes, **hashes: str) -> FileRecord:
    return FileRecord(
        id="f",
        session_id="s",
        filename=filename,
        size=len(data),
        hashes=hashes or {"sha256": hashlib.sha256(data).hexdigest()},
        mechanism=HTTP_POST_BYTES,
        status=FileStatus.PROCESSING,
        key=f"files/{filename}",
        created_at=0,
    )


def big_wheel(metadata_last: bool = True) -> bytes:
    """A wheel over IN_MEMORY_MAX: incompressible payload, then the small wheel's members
    (dist-info last, as wheel builders write them), or the other way round."""
    small = zipfile.ZipFile(io.BytesIO(wheel("demo-1.0-py3-none-any.whl")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if metadata_last:
            archive.writestr("demo/blob.bin", os.urandom(BIG))
        for member in small.infolist():
            archive.writestr(member, small.read(member))
        if not metadata_last:
            archive.writestr("demo/blob.bin", os.urandom(BIG))
    return buffer.getvalue()


def big_sdist() -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for name, data in (
            ("demo-1.0/PKG-INFO", metadata("demo", "1.0")),
            ("demo-1.0/blob.bin", os.urandom(BIG)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def stored(blobs: MemoryBlobStore, file: FileRecord, data: bytes) -> None:
    assert blobs.put_new(file.key, data)


@pytest.mark.parametrize("kind", ["wheel", "wheel with dist-info first", "sdist"])
def test_a_large_file_is_read_once(kind: str) -> None:
    blobs = Counted()
    data = big_sdist() if kind == "sdist" else big_wheel(metadata_last=kind == "wheel")
    filename = "demo-1.0.tar.gz" if kind == "sdist" else "demo-1.0-py3-none-any.whl"
    file = record(filename, data)
    stored(blobs, file, data)
    verified = Verifier(blobs, FixedClock()).verify(session(), file)
    assert verified.requires_python == ">=3.9"  # inspected: read from its METADATA
    assert blobs.calls["stream"] == 1 and blobs.calls["fetch"] == 0
    # A wheel's METADATA and central directory were kept as the stream passed them.
    assert blobs.calls["read_range"] == 0
    assert blobs.bytes_read == len(data)


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_a_large_file_with_other_bytes_than_declared_is_refused(kind: str) -> None:
    blobs = Counted()
    data = big_wheel() if kind == "wheel" else big_sdist()
    filename = "demo-1.0-py3-none-any.whl" if kind == "wheel" else "demo-1.0.tar.gz"
    file = record(filename, data, sha256="0" * 64)
    stored(blobs, file, data)
    with pytest.raises(Unverified) as refused:
        Verifier(blobs, FixedClock()).verify(session(), file)
    assert [p.source for p in refused.value.problems] == ["hashes.sha256"]


def test_a_broken_large_sdist_is_refused_after_its_hash_is_checked() -> None:
    blobs = Counted()
    data = big_sdist()[:-4096]  # cut short: the gzip stream does not end
    file = record("demo-1.0.tar.gz", data)
    stored(blobs, file, data)
    with pytest.raises(Unverified) as refused:
        Verifier(blobs, FixedClock()).verify(session(), file)
    assert [p.source for p in refused.value.problems] == ["file"]


def test_a_whole_file_is_one_request_and_a_checked_sha256_is_not_hashed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blobs = Counted()
    data = wheel("demo-1.0-py3-none-any.whl")
    file = record("demo-1.0-py3-none-any.whl", data)
    url, headers = blobs.presign_put(
        file.key, len(data), base64.b64encode(hashlib.sha256(data).digest()).decode(), 900
    )
    assert blobs.put_part(url, data, headers) == 200  # the store checked the SHA-256
    hashed: list[str] = []
    real = hashlib.new

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        hashed.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(hashlib, "new", counted)
    Verifier(blobs, FixedClock()).verify(session(), file)
    assert blobs.calls == Counter({"fetch": 1})
    assert hashed == []
    # Another declared hash is computed: the store checked only the SHA-256.
    blobs.delete(file.key + ".metadata")
    other = record(
        file.filename,
        data,
        sha256=hashlib.sha256(data).hexdigest(),
        blake2b=hashlib.blake2b(data).hexdigest(),
    )
    Verifier(blobs, FixedClock()).verify(session(), other)
    assert hashed == ["blake2b"]


def test_a_whole_file_not_checked_by_the_store_is_hashed() -> None:
    blobs = Counted()
    data = sdist("demo-1.0.tar.gz")
    file = record("demo-1.0.tar.gz", data, sha256=hashlib.sha256(b"other").hexdigest())
    stored(blobs, file, data)  # the service's own PutObject: no checksum checked
    with pytest.raises(Unverified) as refused:
        Verifier(blobs, FixedClock()).verify(session(), file)
    assert [p.source for p in refused.value.problems] == ["hashes.sha256"]


@pytest.mark.parametrize("chunk", [1, 7, 30, 4096])
def test_a_wheel_walked_in_any_chunks_is_walked_alike(chunk: int) -> None:
    data = wheel("demo-1.0-py3-none-any.whl", members={"demo/data.bin": b"x" * 5000})
    whole = LocalWalk.of(io.BytesIO(data))
    walk = LocalWalk()
    for start in range(0, len(data), chunk):
        walk.feed(data[start : start + chunk])
    walk.finish()
    assert walk.records == whole.records and walk.end == whole.end
    assert len(whole.records) == 5 and whole.end is not None
    assert data[whole.end : whole.end + 4] == b"PK\x01\x02"  # the central directory


def test_what_the_walk_did_not_keep_is_read_by_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """A central directory larger than the walk keeps: its end is fetched by range."""
    monkeypatch.setattr("chalicelib.domain.distributions.TAIL_KEPT", 64)
    blobs = Counted()
    data = big_wheel()
    file = record("demo-1.0-py3-none-any.whl", data)
    stored(blobs, file, data)
    Verifier(blobs, FixedClock()).verify(session(), file)
    assert blobs.calls["stream"] == 1 and blobs.calls["read_range"] == 1


class Failing(Counted):
    """A store whose stream breaks after its first chunk (a connection reset)."""

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Any:
        chunks = super().stream(key, chunk_size)
        yield next(chunks)
        raise ConnectionResetError("the connection to storage was reset")


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_a_read_that_fails_is_no_verdict_on_the_file(kind: str) -> None:
    """The error reaches the caller (the worker's job is delivered again), rather than
    a refusal that would fail the file for good."""
    blobs = Failing()
    data = big_sdist() if kind == "sdist" else big_wheel()
    file = record("demo-1.0.tar.gz" if kind == "sdist" else "demo-1.0-py3-none-any.whl", data)
    stored(blobs, file, data)
    with pytest.raises(ConnectionResetError):
        Verifier(blobs, FixedClock()).verify(session(), file)


def test_a_walk_keeps_one_metadata_however_many_the_wheel_has() -> None:
    """A wheel of many .dist-info/METADATA files (refused: one .dist-info only) cannot
    make the walk keep them all in memory."""
    members = {f"x{n}.dist-info/METADATA": os.urandom(64 * 1024) for n in range(20)}
    data = wheel("demo-1.0-py3-none-any.whl", members=members, compression=0)
    walk = LocalWalk(keep=True)
    walk.feed(data)
    walk.finish()
    kept = sum(len(region) for _, region in walk.kept)
    assert walk.end is not None
    assert kept < 2 * 64 * 1024 + len(data) - walk.end  # one METADATA and the tail
