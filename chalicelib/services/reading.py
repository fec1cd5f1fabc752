"""Stored objects as the files archive readers expect, read without holding them whole.

`HashingReader`: a stream read forwards once (an sdist's tar), every byte also hashed,
so one pass both inspects and hashes. `RangedFile`: a seekable file made of the regions
already read (what a wheel's walk kept: its central directory, METADATA), fetching by
range only what they lack."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence

from ..domain.hashes import MultiHasher
from ..domain.ports import BlobStore

# What one ranged read fetches at least: a wheel's end holds its end records, central
# directory and, as wheel builders write them last, its .dist-info files; for most
# wheels all of it is in the last MiB, so inspecting it takes one request.
RANGE_BLOCK = 1024 * 1024


class ReadFailed(Exception):
    """Reading the stored object failed (its cause says how): no verdict on the file.
    Not an OSError, so that archive readers, which take an OSError for a corrupt
    archive, let it through."""


class HashingReader(io.RawIOBase):
    """The chunks of `source` as a forward-only file; what is read is hashed."""

    def __init__(self, source: Iterable[bytes], hasher: MultiHasher) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(source)
        self._hasher = hasher
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                chunk = next(self._chunks, None)
            except Exception as exc:
                raise ReadFailed() from exc
            if chunk is None:
                return 0
            self._hasher.update(chunk)
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def drain(self) -> None:
        """Hash what was not read: the hash is always of the whole file."""
        self._pending = memoryview(b"")
        for chunk in self._chunks:
            self._hasher.update(chunk)


class RangedFile(io.RawIOBase):
    """The object at `key`, `size` bytes long, read by ranges, each kept once fetched;
    `known` are (offset, bytes) regions already read (a wheel's walk keeps them)."""

    def __init__(
        self,
        blobs: BlobStore,
        key: str,
        size: int,
        known: Sequence[tuple[int, bytes | bytearray]] = (),
    ) -> None:
        super().__init__()
        self._blobs = blobs
        self._key = key
        self._size = size
        self._position = 0
        self._windows: list[tuple[int, bytes | bytearray]] = list(known)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        data = self._bytes_at(self._position, wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _bytes_at(self, start: int, length: int) -> bytes | bytearray:
        """Up to `length` bytes from `start`: what a known region holds from there (a
        short read: the buffered reader asks again for the rest), else a fetched block."""
        for offset, data in self._windows:
            if offset <= start < offset + len(data):
                return data[start - offset : start - offset + length]
        # At least a block, taken so that a read near the end fetches the whole end.
        span = max(length, RANGE_BLOCK)
        offset = max(0, min(start, self._size - span))
        try:
            data = self._blobs.read_range(self._key, offset, min(span, self._size - offset))
        except Exception as exc:
            raise ReadFailed() from exc
        self._windows.append((offset, data))
        return data[start - offset : start - offset + length]
