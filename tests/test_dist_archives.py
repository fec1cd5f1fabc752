"""Archives that would read differently in different tools, or cost far more to read
than their size: bounded inflation of sdists, zip and tar confusion, the core metadata's
size, and when an sdist's metadata may stand in for it (issue 10)."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile

import pytest

from chalicelib.domain.distributions import (
    MAX_METADATA,
    MAX_RATIO,
    MAX_TAR_HEADERS,
    RATIO_FLOOR,
    Inspection,
    Refused,
    inflation_limit,
    inspect_distribution,
)
from tests.dists import (
    metadata,
    sdist,
    sdist_bomb,
    streamed,
    symlink_entry,
    tar_entry,
    wheel,
    with_zip64_end,
    with_zip_entries,
)

WHEEL = "demo_pkg-1.0-py3-none-any.whl"
SDIST = "demo_pkg-1.0.tar.gz"
MIB = 1024 * 1024


class CountingReader(io.BytesIO):
    """The uploaded file, counting how many of its bytes were read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def inspect(filename: str, data: bytes) -> Inspection:
    return inspect_distribution(filename, io.BytesIO(data), "demo-pkg", "1")


def refused(filename: str, data: bytes, why: str) -> Refused:
    with pytest.raises(Refused, match=why) as caught:
        inspect(filename, data)
    assert caught.value.spec.startswith("https://packaging.python.org/")
    return caught.value


# -- 1. sdists inflate a bounded amount ----------------------------------------------------


def test_the_limit_is_a_ratio_of_the_file_size_with_a_floor_and_a_ceiling() -> None:
    assert inflation_limit(1) == inflation_limit(RATIO_FLOOR) == MAX_RATIO * RATIO_FLOOR
    assert inflation_limit(3 * MIB) == MAX_RATIO * 3 * MIB
    assert inflation_limit(100 * 1024 * MIB) == 8 * 1024 * MIB


def test_an_sdist_inflating_a_thousandfold_is_refused_from_its_header() -> None:
    bomb = sdist_bomb(SDIST, 300)  # 300 MiB of zeros in one member, ~300 KiB gzipped
    assert 900 * len(bomb) < 300 * MIB
    upload = CountingReader(bomb)
    with pytest.raises(Refused, match="inflate to more than") as caught:
        inspect_distribution(SDIST, upload, "demo-pkg", "1")
    assert str(inflation_limit(len(bomb))) in caught.value.reason
    # Judged from the member's header: the rest of the file was never even read, so
    # nothing of it was inflated.
    assert upload.bytes_read < len(bomb) // 10


def test_zeros_no_header_declares_stop_inflating_at_the_limit() -> None:
    # 300 MiB of zeros after the tar's end-of-archive blocks: padding in form, a bomb in
    # effect. Only the inflated stream's own count can stop it.
    bomb = sdist_bomb(SDIST, 300, declared=False)
    upload = CountingReader(bomb)
    with pytest.raises(Refused, match="inflate to more than"):
        inspect_distribution(SDIST, upload, "demo-pkg", "1")
    # Stopped at the limit (200 times the file), well before the end of the file.
    assert upload.bytes_read < len(bomb) // 2


def test_an_sdist_within_the_ratio_passes() -> None:
    found = inspect(SDIST, sdist_bomb(SDIST, 3))  # 1000-fold, but only 3 MiB: the floor
    assert b"Name: demo-pkg" in found.metadata


def test_a_huge_pax_header_is_refused_before_it_is_read() -> None:
    # tarfile would read a pax header's data whole into memory.
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 100 * MIB
    header = pax.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    data = gzip.compress(tar_entry("demo_pkg-1.0/PKG-INFO", metadata("demo-pkg", "1.0")) + header)
    refused(SDIST, data, "tar headers between two members")


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (b"garbage", "after its gzip stream"),
        (gzip.compress(b"a second gzip member"), "after its gzip stream"),
    ],
)
def test_nothing_may_follow_the_gzip_stream(tail: bytes, why: str) -> None:
    refused(SDIST, sdist(SDIST) + tail, why)


def test_nothing_may_hide_after_the_tar_end() -> None:
    tar = gzip.decompress(sdist(SDIST))
    hidden = tar + tar_entry("demo_pkg-1.0/hidden.py", b"import os\n")
    refused(SDIST, gzip.compress(hidden), "after the tar archive's end")


def test_a_truncated_sdist_is_refused() -> None:
    data = sdist(SDIST)
    refused(SDIST, data[: len(data) - 12], "cut short|corrupt")


# -- 2. zip and tar confusion ------------------------------------------------------------------


def test_a_second_metadata_in_a_wheel_is_refused() -> None:
    info = zipfile.ZipInfo("demo_pkg-1.0.dist-info/METADATA")
    data = with_zip_entries(wheel(WHEEL), [(info, metadata("demo-pkg", "1.0", extra="X: y"))])
    refused(WHEEL, data, "appears twice")


def test_a_second_module_in_a_wheel_is_refused() -> None:
    data = with_zip_entries(wheel(WHEEL), [(zipfile.ZipInfo("demo_pkg/__init__.py"), b"evil")])
    refused(WHEEL, data, "appears twice")


def test_names_that_extract_to_one_path_are_duplicates() -> None:
    data = with_zip_entries(wheel(WHEEL), [(zipfile.ZipInfo("demo_pkg/./__init__.py"), b"x")])
    refused(WHEEL, data, "appears twice")


@pytest.mark.parametrize(
    "prefix", [b"#!/bin/sh\nexec python3 -c 'print(1)'\n", b"PK\x03\x04" + b"\0" * 26]
)
def test_data_prepended_to_a_wheel_is_refused(prefix: bytes) -> None:
    good = wheel(WHEEL)
    assert zipfile.ZipFile(io.BytesIO(prefix + good)).testzip() is None  # zipfile copes
    refused(WHEEL, prefix + good, "ambiguous .*before the first member")


def test_a_zip_appended_to_other_data_is_refused() -> None:
    # A polyglot whose directory counts the prefix (what `zip -A` makes): offsets are
    # right, yet the first bytes are something else.
    buffer = io.BytesIO(b"GIF89a polyglot")
    buffer.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buffer, "a") as archive, zipfile.ZipFile(io.BytesIO(wheel(WHEEL))) as src:
        for info in src.infolist():
            archive.writestr(info, src.read(info))
    refused(WHEEL, buffer.getvalue(), "ambiguous")


def test_data_appended_to_a_wheel_is_refused() -> None:
    refused(WHEEL, wheel(WHEEL) + b"trailing", "ambiguous .*after the end")


def test_a_local_name_that_differs_from_the_directory_is_refused() -> None:
    data = wheel(WHEEL, members={"demo_pkg/a.py": b"a", "demo_pkg/b.py": b"b"})
    # The first occurrence is the local header; the central directory keeps a.py.
    patched = data.replace(b"demo_pkg/a.py", b"demo_pkg/b.py", 1)
    refused(WHEEL, patched, "local name 'demo_pkg/b.py' differs")


def test_a_local_size_that_differs_from_the_directory_is_refused() -> None:
    data = bytearray(wheel(WHEEL))
    # The first local header's uncompressed size (offset 22) says one byte more.
    (size,) = struct.unpack_from("<I", data, 22)
    struct.pack_into("<I", data, 22, size + 1)
    refused(WHEEL, bytes(data), "differs from the directory")


def test_data_descriptors_are_refused() -> None:
    data = streamed(wheel(WHEEL))
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    refused(WHEEL, data, "data descriptor")


@pytest.mark.parametrize(
    ("flag", "version", "why"),
    [
        (0x01, 20, "encrypted"),  # zipfile asks for a password: was a 500
        (0x00, 99, "cannot be read|not a valid zip"),  # a zip version zipfile cannot read
    ],
)
def test_members_zipfile_cannot_read_are_refused_not_failed(
    flag: int, version: int, why: str
) -> None:
    data = bytearray(wheel(WHEEL))
    # The METADATA member's flags or needed version, in its local header and in the
    # central directory alike (so the layout check agrees with itself).
    name = b"demo_pkg-1.0.dist-info/METADATA"
    for signature, name_at, flags_at, version_at in (
        (b"PK\x03\x04", 30, 6, 4),  # local header
        (b"PK\x01\x02", 46, 8, 6),  # central directory header
    ):
        at = data.find(signature)
        while at >= 0 and data[at + name_at : at + name_at + len(name)] != name:
            at = data.find(signature, at + 4)
        assert at >= 0
        struct.pack_into("<H", data, at + flags_at, flag)
        struct.pack_into("<H", data, at + version_at, version)
    refused(WHEEL, bytes(data), why)


def test_symlinks_in_a_wheel_are_refused() -> None:
    data = with_zip_entries(wheel(WHEEL), [(symlink_entry("demo_pkg/link"), b"/etc/passwd")])
    refused(WHEEL, data, "symlink")


def test_a_nul_in_a_member_name_is_refused() -> None:
    entry = zipfile.ZipInfo("demo_pkg/x.py")
    data = with_zip_entries(wheel(WHEEL), [(entry, b"x")])
    # Same length, so the archive stays well formed: zipfile would cut the name at NUL.
    refused(WHEEL, data.replace(b"demo_pkg/x.py", b"demo_pkg/x\0py"), "control characters")


def test_a_zip64_wheel_is_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(wheel(WHEEL))) as src, zipfile.ZipFile(buffer, "w") as dst:
        for info in src.infolist():
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            with dst.open(copy, "w", force_zip64=True) as out:
                out.write(src.read(info))
    assert inspect(WHEEL, buffer.getvalue()).metadata_is_reliable
    with_end = with_zip64_end(buffer.getvalue())
    assert zipfile.ZipFile(io.BytesIO(with_end)).testzip() is None
    assert inspect(WHEEL, with_end).metadata_is_reliable
    refused(WHEEL, with_end + b"x", "after the end")


@pytest.mark.parametrize("member", ["demo_pkg-1.0/PKG-INFO", "demo_pkg-1.0/setup.py"])
def test_an_sdist_member_twice_is_refused(member: str) -> None:
    extra = tarfile.TarInfo(member)
    extra.size = 5
    refused(SDIST, sdist(SDIST, extra=[extra]), "appears twice")


# -- 3. core metadata has a size limit -------------------------------------------------------


def long_metadata(size: int) -> bytes:
    head = metadata("demo-pkg", "1.0")
    return head + b"A long description.\n" * ((size - len(head)) // 20 + 1)


def test_a_wheel_metadata_over_the_limit_is_refused_unread() -> None:
    big = long_metadata(MAX_METADATA + 1)
    reason = refused(WHEEL, wheel(WHEEL, meta=big), "METADATA has").reason
    assert str(MAX_METADATA) in reason


def test_an_sdist_pkg_info_over_the_limit_is_refused() -> None:
    big = long_metadata(MAX_METADATA + 1)
    assert str(MAX_METADATA) in refused(SDIST, sdist(SDIST, meta=big), "PKG-INFO has").reason


def test_metadata_up_to_the_limit_is_accepted() -> None:
    fits = long_metadata(MAX_METADATA - 100)
    assert len(inspect(WHEEL, wheel(WHEEL, meta=fits)).metadata) <= MAX_METADATA
    assert len(inspect(SDIST, sdist(SDIST, meta=fits)).metadata) <= MAX_METADATA
    assert MAX_METADATA > MAX_TAR_HEADERS  # PKG-INFO is read as data, not as a header


# -- 4. sdist metadata stands in for the sdist only when static --------------------------------


@pytest.mark.parametrize(
    ("metadata_version", "extra", "reliable"),
    [
        ("1.0", "", False),
        ("2.1", "", False),
        ("2.2", "", True),
        ("2.4", "", True),
        ("2.6", "", True),
        ("2.4", "Dynamic: Requires-Dist", False),
        ("2.2", "dynamic: license", False),
    ],
)
def test_sdist_metadata_is_reliable_only_when_static(
    metadata_version: str, extra: str, reliable: bool
) -> None:
    meta = metadata("demo-pkg", "1.0", metadata_version=metadata_version, extra=extra)
    found = inspect(SDIST, sdist(SDIST, meta=meta))
    assert found.metadata_is_reliable is reliable
    assert found.requires_python == ">=3.9"


@pytest.mark.parametrize(("metadata_version", "extra"), [("2.1", ""), ("2.4", "Dynamic: Version")])
def test_a_wheel_metadata_is_always_its_own(metadata_version: str, extra: str) -> None:
    meta = metadata("demo-pkg", "1.0", metadata_version=metadata_version, extra=extra)
    assert inspect(WHEEL, wheel(WHEEL, meta=meta)).metadata_is_reliable


def test_overlapping_members_are_refused() -> None:
    # The last directory entry pointed at the member before it: one set of bytes read as
    # two files (and the last member's own bytes hidden).
    data = bytearray(wheel(WHEEL))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        members = archive.infolist()
    (cd_offset,) = struct.unpack_from("<I", data, len(data) - 22 + 16)
    entry = cd_offset
    for _ in members[:-1]:
        entry += 46 + sum(struct.unpack_from("<HHH", data, entry + 28))
    struct.pack_into("<I", data, entry + 42, members[-2].header_offset)
    refused(WHEEL, bytes(data), "overlaps the member before it")
