"""Real (small) wheels and sdists for tests, and the crafted bad ones."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

from packaging.utils import parse_sdist_filename, parse_wheel_filename


def metadata(name: str, version: str, *, metadata_version: str = "2.1", extra: str = "") -> bytes:
    return (
        f"Metadata-Version: {metadata_version}\nName: {name}\nVersion: {version}\n"
        f"Requires-Python: >=3.9\n{extra}\n"
    ).encode()


def _record(files: dict[str, bytes | None], record: str) -> bytes:
    """A RECORD listing every member with its hash and size, as installers check it."""
    lines = []
    for member, data in files.items():
        if data is None or member == record:
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{member},sha256={digest},{len(data)}")
    lines.append(f"{record},,")
    return ("\n".join(lines) + "\n").encode()


def wheel(
    filename: str,
    *,
    salt: str = "",
    members: Mapping[str, bytes | None] | None = None,  # None drops a member
    meta: bytes | None = None,
    dist_info: str | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    name, version, _, _ = parse_wheel_filename(filename)
    stem = filename.split("-")[0]
    info = dist_info if dist_info is not None else f"{stem}-{version}.dist-info"
    files: dict[str, bytes | None] = {
        f"{stem}/__init__.py": f"# {salt}\nVERSION = {str(version)!r}\n".encode(),
        f"{info}/METADATA": meta if meta is not None else metadata(str(name), str(version)),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": b"",
    }
    if members is not None:
        files = {**files, **members}
    if files.get(f"{info}/RECORD") == b"":
        files[f"{info}/RECORD"] = _record(files, f"{info}/RECORD")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for member, data in files.items():
            if data is not None:
                # A fixed timestamp: the same arguments give the same bytes.
                entry = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
                archive.writestr(entry, data, compress_type=compression)
    return buffer.getvalue()


def sdist(
    filename: str,
    *,
    salt: str = "",
    top: str | None = None,
    meta: bytes | None = None,
    extra: list[tarfile.TarInfo] | None = None,
) -> bytes:
    name, version = parse_sdist_filename(filename)
    root = top if top is not None else filename.removesuffix(".tar.gz")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for member, data in (
            (f"{root}/PKG-INFO", meta if meta is not None else metadata(str(name), str(version))),
            (f"{root}/setup.py", f"# {salt}\n".encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def dist(filename: str, salt: str = "") -> bytes:
    """A valid distribution for `filename`."""
    return wheel(filename, salt=salt) if filename.endswith(".whl") else sdist(filename, salt=salt)


# -- crafted archives -----------------------------------------------------------------------


def with_zip_entries(data: bytes, entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    """`data` (a zip) with `entries` appended, same-named ones included (zipfile warns
    about those but writes them)."""
    buffer = io.BytesIO(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(buffer, "a") as archive:
            for info, content in entries:
                archive.writestr(info, content)
    return buffer.getvalue()


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.create_system = 3  # Unix: the mode in the high bits is meaningful
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


class _Unseekable(io.RawIOBase):
    """A write-only stream that cannot seek, so zipfile writes data descriptors."""

    def __init__(self) -> None:
        self.written = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self.written.write(b)


def streamed(data: bytes) -> bytes:
    """The same zip rewritten the way a streaming writer does (sizes in data descriptors
    after each member's data)."""
    out = _Unseekable()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info), compress_type=info.compress_type)
    return out.written.getvalue()


def tar_entry(name: str, data: bytes = b"", *, size: int | None = None) -> bytes:
    """A tar header (and its data, padded to 512 bytes) as a tar writer lays it out."""
    info = tarfile.TarInfo(name)
    info.size = len(data) if size is None else size
    info.mtime = 0
    header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    return header + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def gzip_around_zeros(before: bytes, zeros_mib: int, after: bytes) -> bytes:
    """A valid gzip file of `before`, `zeros_mib` MiB of zero bytes and `after`.

    Deflating hundreds of MiB takes seconds; a full flush resets the compressor, so one
    deflated MiB of zeros repeated is the same stream as deflating them all (only the
    CRC-32 has to see every byte)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(before) + compressor.flush(zlib.Z_FULL_FLUSH)
    mib = bytes(1024 * 1024)
    zeros = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(after) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(before)
    for _ in range(zeros_mib):
        crc = zlib.crc32(mib, crc)
    crc = zlib.crc32(after, crc)
    size = len(before) + zeros_mib * len(mib) + len(after)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # RFC 1952: deflate, no name, mtime 0
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + head + zeros * zeros_mib + tail + trailer


def sdist_bomb(filename: str, zeros_mib: int, *, declared: bool = True) -> bytes:
    """A real sdist that inflates to `zeros_mib` MiB: one member of that many zeros
    (`declared`), or as many zeros after the tar's end, where no header declares them."""
    name, version = parse_sdist_filename(filename)
    root = filename.removesuffix(".tar.gz")
    members = tar_entry(f"{root}/PKG-INFO", metadata(str(name), str(version)))
    members += tar_entry(f"{root}/setup.py", b"# setup\n")
    end = bytes(2 * tarfile.BLOCKSIZE)
    if declared:
        zeros_header = tar_entry(f"{root}/zeros.bin", size=zeros_mib * 1024 * 1024)
        return gzip_around_zeros(members + zeros_header, zeros_mib, end)
    return gzip_around_zeros(members + end, zeros_mib, b"")


def with_zip64_end(data: bytes) -> bytes:
    """`data` (a zip without a comment) with the zip64 end of central directory record
    and locator that writers add past 65,535 members or 4 GiB (APPNOTE.TXT 4.3.14-15),
    the classic end record then pointing to them."""
    end = len(data) - 22
    _, _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<4sHHHHIIH", data[end:])
    zip64_end = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
    )
    return data[:end] + zip64_end + locator + classic
