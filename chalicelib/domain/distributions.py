"""What an uploaded distribution must contain, checked the way a serious index does.

Both kinds are bounded in how far they inflate: at most MAX_RATIO times the file's size
(every file may reach RATIO_FLOOR * MAX_RATIO), never more than MAX_UNCOMPRESSED. The
bound is judged from the archive's own headers before anything is inflated, and the
inflated stream is counted as well, so a bomb is refused after inflating at most the
limit, not all of it.

Wheels (binary-distribution-format.rst): a zip of stored or deflated members, judged from
the central directory, with exactly one `<name>-<version>.dist-info/` holding METADATA,
WHEEL and RECORD. Every byte belongs to one record in the order the zip format lays them
out (no prepended data, gaps, overlaps or trailing data; local headers that agree with
the central directory) and no name appears twice, so every zip reader sees the same
files; no symlinks or other special members.

Sdists (source-distribution-format.rst): a gzipped tar with one top directory
`<name>-<version>/` holding PKG-INFO; no absolute or `..` paths, no link that leaves the
tree, no devices, no member twice, nothing after the tar's end or the gzip stream.

In both, the core metadata (at most MAX_METADATA bytes) must name the file's and the
session's release with a Metadata-Version this index knows. It is returned so it can be
served next to the file (PEP 658), with whether installers may trust it in place of the
file (always for a wheel; for an sdist only when the core-metadata spec says it is
static).
"""

from __future__ import annotations

import io
import posixpath
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .names import SDIST_SPEC, WHEEL_SPEC, release_key

CORE_METADATA_SPEC = "https://packaging.python.org/en/latest/specifications/core-metadata/"
# core-metadata.rst "Metadata-Version" lists 1.0 to 2.6; 2.0 was never approved but
# old tools wrote it.
KNOWN_METADATA_VERSIONS = frozenset(
    {"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"}
)
# core-metadata.rst "Dynamic": from 2.2 on, an sdist's fields not marked Dynamic are
# what every wheel built from it says; before 2.2 every field may change.
STATIC_SDIST_METADATA = Version("2.2")
MAX_UNCOMPRESSED = 8 * 1024**3
MAX_RATIO = 200  # inflated : file size, over the whole archive
# The ratio is judged against at least this many bytes, so that a small archive whose
# tar padding and headers compress very well is not refused: any file may inflate to
# MAX_RATIO * RATIO_FLOOR (12.5 MiB).
RATIO_FLOOR = 64 * 1024
MAX_MEMBERS = 100_000
# METADATA / PKG-INFO: a few headers plus the long description (the README), which is
# almost all of it. 2 MiB holds a README of some 40,000 lines, changelog included,
# while bounding what one request reads into memory (and what each `.metadata` costs).
MAX_METADATA = 2 * 1024 * 1024
# What tarfile reads into memory between two members: their headers, pax extended
# headers and GNU long names (a path or link name each, normally under a KiB).
MAX_TAR_HEADERS = 1024 * 1024
# What a wheel's walk keeps from where its local records end: its central directory (some
# 100 bytes a member) and end records, for wheels of up to some 40,000 members.
TAIL_KEPT = 4 * 1024 * 1024
# Inflating an sdist: compressed bytes read, and inflated bytes made, at a time.
_INPUT = 16 * 1024
_BLOCK = 64 * 1024


class Refused(Exception):
    """The file is not an acceptable distribution: says what is wrong, links the spec."""

    def __init__(self, reason: str, spec: str) -> None:
        super().__init__(f"{reason} See {spec}")
        self.reason = reason
        self.spec = spec


@dataclass(frozen=True)
class Inspection:
    metadata: bytes
    requires_python: str | None
    # Whether an installer may resolve from `metadata` instead of the file (PEP 658):
    # a wheel's always is its own; an sdist's only when static (STATIC_SDIST_METADATA).
    metadata_is_reliable: bool = True


def inflation_limit(file_size: int) -> int:
    """How many bytes an archive of `file_size` bytes may inflate to."""
    return min(MAX_UNCOMPRESSED, MAX_RATIO * max(file_size, RATIO_FLOOR))


def _size_of(file: IO[bytes]) -> int:
    start = file.tell()
    size = file.seek(0, io.SEEK_END)
    file.seek(start)
    return size


def _too_large(kind: str, limit: int) -> Refused:
    return Refused(
        f"The {kind} would inflate to more than {limit} bytes: this index accepts "
        f"archives that inflate to at most {MAX_RATIO} times their size (at least "
        f"{MAX_RATIO * RATIO_FLOOR} bytes) and never more than {MAX_UNCOMPRESSED}.",
        WHEEL_SPEC if kind == "wheel" else SDIST_SPEC,
    )


def _same_release(name: str, version: str, project: str, version_key: str) -> bool:
    try:
        return canonicalize_name(name, validate=True) == project and (
            release_key(Version(version)) == version_key
        )
    except (InvalidName, InvalidVersion):
        return False


def _check_metadata(
    data: bytes, project: str, version_key: str, spec: str, *, sdist: bool
) -> Inspection:
    if len(data) > MAX_METADATA:
        raise Refused(
            f"The core metadata is larger than {MAX_METADATA} bytes, the most this index accepts.",
            CORE_METADATA_SPEC,
        )
    # Imported here: packaging.metadata (with the requirement and specifier parsers it
    # loads) was a sixth of the API handler's cold import, and only verification needs it.
    from packaging.metadata import parse_email

    raw, unparsed = parse_email(data)
    where = "the core metadata"
    metadata_version = raw.get("metadata_version")
    if metadata_version not in KNOWN_METADATA_VERSIONS:
        raise Refused(
            f"{where} has Metadata-Version {metadata_version!r}, which this index does not know.",
            CORE_METADATA_SPEC,
        )
    name, version = raw.get("name"), raw.get("version")
    if not name or not version:
        raise Refused(f"{where} lacks Name or Version.", CORE_METADATA_SPEC)
    if not _same_release(name, version, project, version_key):
        raise Refused(f"{where} says {name} {version}, not this file's project and version.", spec)
    reliable = True
    if sdist:
        # A Dynamic field that packaging could not parse still counts as one.
        dynamic = bool(raw.get("dynamic")) or any(k.lower() == "dynamic" for k in unparsed)
        reliable = Version(metadata_version) >= STATIC_SDIST_METADATA and not dynamic
    return Inspection(
        metadata=data,
        requires_python=raw.get("requires_python"),
        metadata_is_reliable=reliable,
    )


def _member_key(name: str) -> str:
    """A member's path as an extractor resolves it (`a//b`, `a/./b` and `a/b/` are all
    `a/b`): two members with one key would overwrite each other."""
    return str(PurePosixPath(name))


def _safe_member_path(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


# -- wheels ---------------------------------------------------------------------------------

# Zip records (APPNOTE.TXT 4.3): local file header, central directory header, zip64 end
# of central directory record and locator, end of central directory record.
# signature, flags, method, CRC-32, compressed and uncompressed size, name and extra length
_LOCAL = struct.Struct("<4s2xHH4xIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CENTRAL = struct.Struct("<4s24xHHH12x")  # signature, name/extra/comment length
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_ZIP64_END = struct.Struct("<4sQ")  # signature, size of the rest of the record
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_END = struct.Struct("<4s16xH")  # signature, comment length
_END_SIGNATURE = b"PK\x05\x06"
_ENCRYPTED_FLAG = 0x01
_DATA_DESCRIPTOR_FLAG = 0x08
_UTF8_FLAG = 0x800
_ZIP64_EXTRA = 0x0001
_ZIP64_MARK = 0xFFFFFFFF


def _confused(what: str) -> Refused:
    return Refused(
        f"The wheel's zip structure is ambiguous ({what}), so different tools would read "
        "different files; rebuild it with a standard zip writer.",
        WHEEL_SPEC,
    )


def _read_exactly(file: IO[bytes], size: int, what: str) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise _confused(f"{what} is cut short")
    return data


def _local_sizes(compressed: int, uncompressed: int, extra: bytes) -> tuple[int, int]:
    """The sizes a local header states, with zip64's (APPNOTE.TXT 4.5.3: the extra field
    holds the uncompressed, then the compressed size, each only if marked)."""
    while len(extra) >= 4:
        kind, length = struct.unpack_from("<HH", extra)
        body, extra = extra[4 : 4 + length], extra[4 + length :]
        if kind != _ZIP64_EXTRA:
            continue
        values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
        if uncompressed == _ZIP64_MARK and values:
            uncompressed = values.pop(0)
        if compressed == _ZIP64_MARK and values:
            compressed = values.pop(0)
    return compressed, uncompressed


@dataclass(frozen=True)
class LocalRecord:
    """A member's local record as its local header states it."""

    offset: int
    flags: int
    method: int
    crc: int
    compressed: int
    uncompressed: int
    raw_name: bytes
    length: int  # header, name, extra field and data


class LocalWalk:
    """The local records a streaming reader meets: from offset 0, each right after the
    one before (its header's sizes say where it ends), until something that is not a
    local header, which must be where the central directory starts.

    Fed the file's bytes in order, a chunk at a time, it walks in the same pass that
    hashes the file. With `keep`, it also keeps what inspecting the wheel reads after
    the walk (`kept`, as (offset, bytes)): the records of .dist-info/METADATA files and
    the first TAIL_KEPT bytes from where the walk ended (the central directory and end
    records), so that a wheel is read once, whatever its size."""

    def __init__(self, *, keep: bool = False) -> None:
        self.records: list[LocalRecord] = []
        self.end: int | None = None  # where the walk stopped, once it has
        self.kept: list[tuple[int, bytearray]] = []
        self._keep = keep
        self._keeping: bytearray | None = None  # the kept region being filled
        self._kept_metadata = False  # one METADATA is kept (a wheel has one .dist-info)
        self._skip = 0  # data of the current record still to pass
        self._header = bytearray()  # a local header being gathered
        self._header_at = 0

    @classmethod
    def of(cls, file: IO[bytes]) -> LocalWalk:
        """The walk of a whole seekable file, read from its start."""
        walk = cls()
        file.seek(0)
        while walk.end is None and (chunk := file.read(_BLOCK)):
            walk.feed(chunk)
        walk.finish()
        return walk

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view and self.end is None:
            if self._skip:
                count = min(self._skip, len(view))
                self._skip -= count
                if self._keeping is not None:
                    self._keeping += view[:count]
            else:
                count = min(self._header_length() - len(self._header), len(view))
                self._header += view[:count]
            view = view[count:]
            if len(self._header) >= 4 and self._header[:4] != _LOCAL_SIGNATURE:
                self._ended()  # not a local header: the walk ends here
            elif not self._skip and len(self._header) == self._header_length():
                self._header_read()
        if view and self._keeping is not None and len(self._keeping) < TAIL_KEPT:
            self._keeping += view[: TAIL_KEPT - len(self._keeping)]

    def _ended(self) -> None:
        self.end = self._header_at
        self._keeping = None
        if self._keep:
            self._keeping = bytearray(self._header)  # the directory's first bytes
            self.kept.append((self._header_at, self._keeping))

    def finish(self) -> None:
        """The file ended: the walk stops where it stands (a header cut short is none)."""
        if self.end is None:
            self._ended()

    def _header_length(self) -> int:
        if len(self._header) < _LOCAL.size:
            return _LOCAL.size
        *_, name_length, extra_length = _LOCAL.unpack_from(self._header)
        return int(_LOCAL.size + name_length + extra_length)

    def _header_read(self) -> None:
        fields = _LOCAL.unpack_from(self._header)
        _, flags, method, crc, compressed, uncompressed, name_length, _ = fields
        if len(self.records) > MAX_MEMBERS:  # the directory's count is refused anyway
            self.end = self._header_at
            self._keeping = None
            return
        name_end = _LOCAL.size + name_length
        extra = bytes(self._header[name_end:])
        compressed, uncompressed = _local_sizes(compressed, uncompressed, extra)
        length = len(self._header) + compressed
        raw_name = bytes(self._header[_LOCAL.size : name_end])
        self.records.append(
            LocalRecord(
                self._header_at, flags, method, crc, compressed, uncompressed, raw_name, length
            )
        )
        self._keeping = None
        if flags & _DATA_DESCRIPTOR_FLAG:
            # Where the data ends only the descriptor after it says: the walk stops, and
            # the check refuses this record.
            self.end = self._header_at + length
            return
        is_metadata = raw_name.count(b"/") == 1 and raw_name.endswith(b".dist-info/METADATA")
        if self._keep and is_metadata and compressed <= MAX_METADATA and not self._kept_metadata:
            self._kept_metadata = True
            self._keeping = bytearray(self._header)
            self.kept.append((self._header_at, self._keeping))
        self._skip = compressed
        self._header = bytearray()
        self._header_at += length


def _check_zip_layout(
    file: IO[bytes], archive: zipfile.ZipFile, size: int, walk: LocalWalk
) -> None:
    """Require the local records a streaming reader meets (`walk`) to agree with the
    central directory that zipfile reads from the end.

    zipfile tolerates data before the archive (it shifts every offset by it), trailing
    data after the end record and local headers that disagree with the directory; tools
    that read differently then install different files. Like PyPI, refuse all of them,
    and data descriptors (whose sizes a streaming reader must guess)."""
    members = sorted(archive.infolist(), key=lambda m: m.header_offset)
    position = _check_local_records(walk, members)
    if archive.start_dir != position or walk.end != position:
        raise _confused("data between the members and the central directory")
    position = _skip_central_directory(file, position, len(members))
    _check_end_records(file, position, size)


def _check_local_records(walk: LocalWalk, members: list[zipfile.ZipInfo]) -> int:
    """Each member's local record, one right after the other from offset 0 in the order
    of `members`; returns where the last one ends."""
    position = 0
    for index, member in enumerate(members):
        if member.header_offset < position:
            raise _confused(f"{member.filename!r} overlaps the member before it")
        if member.header_offset > position:
            where = "before the first member" if position == 0 else "between members"
            raise _confused(f"{member.header_offset - position} bytes {where}")
        record = walk.records[index] if index < len(walk.records) else None
        if record is None or record.offset != position:
            raise _confused(f"no local header where {member.filename!r} starts")
        _check_local_header(record, member)
        position += record.length
    return position


def _check_local_header(record: LocalRecord, member: zipfile.ZipInfo) -> None:
    """The local header at the member's offset must say what the central directory says."""
    if record.flags & _DATA_DESCRIPTOR_FLAG:
        raise _confused(f"{member.filename!r} has a data descriptor")
    encoding = "utf-8" if record.flags & _UTF8_FLAG else "cp437"
    name = record.raw_name.decode(encoding, errors="replace")
    if name != member.orig_filename:
        raise _confused(f"local name {name!r} differs from {member.filename!r}")
    if (record.method, record.crc, record.compressed, record.uncompressed) != (
        member.compress_type,
        member.CRC,
        member.compress_size,
        member.file_size,
    ):
        raise _confused(f"the local header of {member.filename!r} differs from the directory")


def _skip_central_directory(file: IO[bytes], position: int, count: int) -> int:
    """Step over the `count` central directory headers that must start at `position`;
    returns where they end."""
    file.seek(position)
    for _ in range(count):
        header = _read_exactly(file, _CENTRAL.size, "the central directory")
        signature, *lengths = _CENTRAL.unpack(header)
        if signature != _CENTRAL_SIGNATURE:
            raise _confused("the central directory is not where its end record says")
        position += _CENTRAL.size + sum(lengths)
        file.seek(position)
    return position


def _check_end_records(file: IO[bytes], position: int, size: int) -> None:
    """After the central directory (the file stands at `position`): an optional zip64
    end record and its locator, then the end record, whose comment ends the file."""
    signature = _read_exactly(file, 4, "the end record")
    if signature == _ZIP64_END_SIGNATURE:
        file.seek(position)
        _, rest = _ZIP64_END.unpack(_read_exactly(file, _ZIP64_END.size, "the end record"))
        position += 12 + rest
        file.seek(position)
        if _read_exactly(file, 4, "the end record") != _ZIP64_LOCATOR_SIGNATURE:
            raise _confused("a zip64 end record without its locator")
        position += _ZIP64_LOCATOR_SIZE
    file.seek(position)
    end = _read_exactly(file, _END.size, "the end record")
    signature, comment_length = _END.unpack(end)
    if signature != _END_SIGNATURE:
        raise _confused("data after the central directory")
    if position + _END.size + comment_length != size:
        raise _confused("data after the end of the archive")


def inspect_wheel(
    file: IO[bytes], project: str, version_key: str, walk: LocalWalk | None = None
) -> Inspection:
    """`file` is read from its end (the central directory, METADATA); `walk`, the local
    records met by a pass over the whole file, is made here when not given."""
    size = _size_of(file)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        raise Refused("The wheel is not a valid zip archive.", WHEEL_SPEC) from None
    with archive:
        members = archive.infolist()
        _check_wheel_members(members)
        uncompressed = sum(m.file_size for m in members)
        limit = inflation_limit(size)
        if uncompressed > limit:
            raise _too_large("wheel", limit)
        try:
            _check_zip_layout(file, archive, size, walk or LocalWalk.of(file))
        except (OSError, struct.error):
            raise _confused("its records cannot be read") from None
        dist_info = _wheel_dist_info({m.filename for m in members}, project, version_key)
        data = _read_wheel_metadata(archive, dist_info)
        return _check_metadata(data, project, version_key, WHEEL_SPEC, sdist=False)


def _check_wheel_members(members: list[zipfile.ZipInfo]) -> None:
    """At most MAX_MEMBERS members, each one every zip reader and installer sees as the
    same file."""
    if len(members) > MAX_MEMBERS:
        raise Refused(f"The wheel has more than {MAX_MEMBERS} members.", WHEEL_SPEC)
    seen: set[str] = set()
    for member in members:
        _check_wheel_member(member, seen)


def _check_wheel_member(member: zipfile.ZipInfo, seen: set[str]) -> None:
    """One member: stored or deflated, a relative path no member in `seen` has (it is
    added), a regular file or a directory."""
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Refused(
            f"{member.filename!r} is compressed with method {member.compress_type}; "
            "wheel members are stored or deflated.",
            WHEEL_SPEC,
        )
    if member.flag_bits & _ENCRYPTED_FLAG:
        raise Refused(f"{member.filename!r} is encrypted.", WHEEL_SPEC)
    if not _safe_member_path(member.filename):
        raise Refused(f"{member.filename!r} is not a relative path in the wheel.", WHEEL_SPEC)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in member.orig_filename):
        # zipfile cuts a name at NUL; other readers do not.
        raise Refused(f"{member.orig_filename!r} has control characters.", WHEEL_SPEC)
    key = _member_key(member.filename)
    if key in seen:
        # zipfile reads the last of two same-named members, other tools the first.
        raise Refused(f"{member.filename!r} appears twice in the wheel.", WHEEL_SPEC)
    seen.add(key)
    kind = stat.S_IFMT(member.external_attr >> 16)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        # Installers write a symlink's target path as the file's content; an
        # extractor makes a link. Neither is a file the wheel spec describes.
        what = "a symlink" if kind == stat.S_IFLNK else "not a regular file"
        raise Refused(f"{member.filename!r} is {what}.", WHEEL_SPEC)


def _wheel_dist_info(names: set[str], project: str, version_key: str) -> str:
    """The wheel's one .dist-info directory, named for this release and holding
    METADATA, WHEEL and RECORD."""
    dist_infos = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise Refused(
            f"A wheel has exactly one .dist-info directory; this one has {len(dist_infos)}.",
            WHEEL_SPEC,
        )
    dist_info = dist_infos.pop()
    name, sep, version = dist_info.removesuffix(".dist-info").partition("-")
    if not sep or not _same_release(name, version, project, version_key):
        raise Refused(f"{dist_info!r} is not this release's .dist-info directory.", WHEEL_SPEC)
    for required in ("METADATA", "WHEEL", "RECORD"):
        if f"{dist_info}/{required}" not in names:
            raise Refused(f"The wheel lacks {dist_info}/{required}.", WHEEL_SPEC)
    return dist_info


def _read_wheel_metadata(archive: zipfile.ZipFile, dist_info: str) -> bytes:
    """METADATA's bytes, never more than MAX_METADATA + 1."""
    info = archive.getinfo(f"{dist_info}/METADATA")
    if info.file_size > MAX_METADATA:
        raise Refused(
            f"The wheel's METADATA has {info.file_size} bytes; this index accepts at "
            f"most {MAX_METADATA}.",
            CORE_METADATA_SPEC,
        )
    try:
        with archive.open(info) as stream:
            return stream.read(MAX_METADATA + 1)
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        ValueError,
        zlib.error,
        NotImplementedError,  # a zip version zipfile cannot read
        RuntimeError,  # encrypted
    ):
        raise Refused("The wheel's METADATA cannot be read.", WHEEL_SPEC) from None


# -- sdists ---------------------------------------------------------------------------------


class _BoundedGunzip(io.BufferedIOBase):
    """The tar inside a gzip file (RFC 1952), for tarfile, inflated only as far as it is
    read (plus one block), and never past `limit` bytes.

    tarfile (mode "r:") reads headers and seeks over member data. A seek names its target
    before anything is inflated, so a member that declares too many bytes is refused
    from its header; every inflated byte is counted as well, so neither padding nor
    trailing data inflates past the limit. tarfile reads pax headers, GNU long names and
    sparse maps whole into memory: between two `judged()` calls it may read at most
    MAX_TAR_HEADERS bytes. It only moves forward, so it never inflates a byte twice."""

    def __init__(self, compressed: IO[bytes], limit: int) -> None:
        super().__init__()
        self._source = compressed
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
        self._limit = limit
        self._inflated = 0
        self._block = b""  # inflated, from `_offset` on not yet read
        self._offset = 0
        self._unjudged = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inflated - (len(self._block) - self._offset)

    def judged(self, then_read: int = 0) -> None:
        """What was read so far belongs to members already judged; `then_read` more
        bytes may be read for the data of the member just judged."""
        self._unjudged = -then_read

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._limit + 1 - self.tell()
        self._unjudged += size
        if self._unjudged > MAX_TAR_HEADERS:
            raise Refused(
                f"The sdist's tar headers between two members exceed {MAX_TAR_HEADERS} bytes.",
                SDIST_SPEC,
            )
        return self._take(size, keep=True)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if whence == io.SEEK_CUR:
            offset += self.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("the sdist is read forwards only")
        if offset < self.tell():
            # Only a negative size in a header makes tarfile go back.
            raise Refused("The sdist's tar headers are corrupt.", SDIST_SPEC)
        if offset > self._limit:
            raise _too_large("sdist", self._limit)
        self._take(offset - self.tell(), keep=False)
        return self.tell()

    def _take(self, size: int, *, keep: bool) -> bytes:
        """The next `size` bytes (fewer at the end of the stream)."""
        out: list[bytes] = []
        while size > 0 and (self._offset < len(self._block) or self._inflate_block()):
            count = min(size, len(self._block) - self._offset)
            if keep:
                out.append(self._block[self._offset : self._offset + count])
            self._offset += count
            size -= count
        return b"".join(out)

    def _inflate_block(self) -> bool:
        """Inflate up to _BLOCK more bytes into the block; False at the stream's end.
        (Bounded output per call: zlib never inflates a bomb further than asked.)"""
        while not self._inflater.eof:
            data = self._inflater.unconsumed_tail or self._source.read(_INPUT)
            if not data:
                raise Refused(
                    "The sdist archive is corrupt: its gzip stream is cut short.", SDIST_SPEC
                )
            try:
                block = self._inflater.decompress(data, _BLOCK)
            except zlib.error:
                raise Refused(
                    "The sdist is not a gzip-compressed tar archive.", SDIST_SPEC
                ) from None
            if block:
                self._inflated += len(block)
                if self._inflated > self._limit:
                    raise _too_large("sdist", self._limit)
                self._block, self._offset = block, 0
                return True
        return False

    def finish(self) -> None:
        """After the tar's end-of-archive block: only zero padding may follow, then the
        gzip stream's end, then nothing (a second gzip member or trailing bytes would be
        read by some tools and not by others)."""
        while self._offset < len(self._block) or self._inflate_block():
            if self._block[self._offset :].strip(b"\0"):
                raise Refused("The sdist has data after the tar archive's end.", SDIST_SPEC)
            self._offset = len(self._block)
        if self._inflater.unused_data or self._source.read(1):
            raise Refused("The sdist has data after its gzip stream.", SDIST_SPEC)


def _link_stays_inside(member: tarfile.TarInfo, top: str) -> bool:
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
    else:  # hard links name a member of the archive
        target = posixpath.normpath(member.linkname)
    return not posixpath.isabs(member.linkname) and (target == top or target.startswith(top + "/"))


def inspect_sdist(
    file: IO[bytes], project: str, version_key: str, size: int | None = None
) -> Inspection:
    """`file` is read forwards only, once, to its end: it may be a stream of `size` bytes
    (the pass that hashes the file inspects it too)."""
    limit = inflation_limit(_size_of(file) if size is None else size)
    stream = _BoundedGunzip(file, limit)
    try:
        archive = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError, EOFError, ValueError):
        raise Refused("The sdist is not a gzip-compressed tar archive.", SDIST_SPEC) from None
    with archive:
        try:
            top, metadata = _walk_sdist(archive, stream, limit)
            stream.finish()
        except (tarfile.TarError, OSError, EOFError, ValueError):
            raise Refused("The sdist archive is corrupt.", SDIST_SPEC) from None
        if top is None:
            raise Refused("The sdist is empty.", SDIST_SPEC)
        name, sep, version = top.rpartition("-")
        if not sep or not _same_release(name, version, project, version_key):
            raise Refused(f"The top directory {top!r} is not '<name>-<version>'.", SDIST_SPEC)
        if metadata is None:
            raise Refused(f"The sdist lacks {top}/PKG-INFO.", SDIST_SPEC)
        return _check_metadata(metadata, project, version_key, SDIST_SPEC, sdist=True)


def _walk_sdist(
    archive: tarfile.TarFile, stream: _BoundedGunzip, limit: int
) -> tuple[str | None, bytes | None]:
    """Judge each member as tarfile reaches it, and read PKG-INFO when it passes (the
    stream only goes forwards): the top directory and PKG-INFO's bytes, None for what
    the sdist lacks."""
    top: str | None = None
    metadata: bytes | None = None
    seen: set[str] = set()
    for count, member in enumerate(archive, start=1):
        stream.judged()
        if count > MAX_MEMBERS:
            raise Refused(f"The sdist has more than {MAX_MEMBERS} members.", SDIST_SPEC)
        top, key = _check_sdist_member(member, top, seen, limit)
        if key == f"{top}/PKG-INFO" and member.isfile():
            stream.judged(then_read=member.size)
            metadata = _read_pkg_info(archive, member)
            stream.judged()
    return top, metadata


def _check_sdist_member(
    member: tarfile.TarInfo, top: str | None, seen: set[str], limit: int
) -> tuple[str, str]:
    """One member, judged from its header: within the inflation limit, a relative path
    no member in `seen` has (it is added), under the top directory (`top`, or this
    member's if it is the first), no device and no link out of the tree. Returns the
    top directory and the member's key."""
    if member.offset_data + member.size > limit:
        # Judged from the header, before tarfile inflates the member's data.
        raise _too_large("sdist", limit)
    name = member.name.rstrip("/")
    if not _safe_member_path(name) or not name:
        raise Refused(f"{member.name!r} is not a relative path in the sdist.", SDIST_SPEC)
    key = _member_key(name)
    if key in seen:
        # tarfile extracts the last of two, other tools the first.
        raise Refused(f"{member.name!r} appears twice in the sdist.", SDIST_SPEC)
    seen.add(key)
    first = name.split("/", 1)[0]
    top = top or first
    if first != top:
        raise Refused(
            f"An sdist has a single top directory; found {top!r} and {first!r}.", SDIST_SPEC
        )
    if member.isdev() or member.isfifo():
        raise Refused(f"{member.name!r} is a device or FIFO.", SDIST_SPEC)
    if (member.issym() or member.islnk()) and not _link_stays_inside(member, top):
        raise Refused(f"{member.name!r} links outside the sdist's tree.", SDIST_SPEC)
    return top, key


def _read_pkg_info(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """PKG-INFO's bytes, read while tarfile stands at them (the stream only goes
    forwards), never more than MAX_METADATA + 1."""
    if member.size > MAX_METADATA:
        raise Refused(
            f"The sdist's PKG-INFO has {member.size} bytes; this index accepts at most "
            f"{MAX_METADATA}.",
            CORE_METADATA_SPEC,
        )
    stream = archive.extractfile(member)
    if stream is None:
        raise Refused("The sdist's PKG-INFO cannot be read.", SDIST_SPEC)
    with stream:
        return stream.read(MAX_METADATA + 1)


def inspect_distribution(
    filename: str, file: IO[bytes], project: str, version_key: str
) -> Inspection:
    if filename.endswith(".whl"):
        return inspect_wheel(file, project, version_key)
    return inspect_sdist(file, project, version_key)
