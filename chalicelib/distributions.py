"""What an uploaded distribution must contain, checked the way a serious index does.

Wheels (binary-distribution-format.rst): a zip of stored or deflated members, bounded in
total and in compression ratio (judged from the central directory, so a zip bomb is
refused without inflating it), with exactly one `<name>-<version>.dist-info/` holding
METADATA, WHEEL and RECORD.

Sdists (source-distribution-format.rst): a gzipped tar with one top directory
`<name>-<version>/` holding PKG-INFO; no absolute or `..` paths, no link that leaves the
tree, no devices.

In both, the core metadata's Name and Version must be the file's and the session's, and
its Metadata-Version one this index knows. The metadata is returned so it can be served
next to the file (PEP 658).
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from packaging.metadata import parse_email
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .names import SDIST_SPEC, WHEEL_SPEC, release_key

CORE_METADATA_SPEC = "https://packaging.python.org/en/latest/specifications/core-metadata/"
KNOWN_METADATA_VERSIONS = frozenset({"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5"})
MAX_UNCOMPRESSED = 8 * 1024**3
MAX_RATIO = 200  # uncompressed : compressed, over the whole archive
MAX_MEMBERS = 100_000
MAX_METADATA = 16 * 1024 * 1024


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


def _same_release(name: str, version: str, project: str, version_key: str) -> bool:
    try:
        return canonicalize_name(name, validate=True) == project and (
            release_key(Version(version)) == version_key
        )
    except (InvalidName, InvalidVersion):
        return False


def _check_metadata(data: bytes, project: str, version_key: str, spec: str) -> Inspection:
    raw, _unparsed = parse_email(data)
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
    return Inspection(metadata=data, requires_python=raw.get("requires_python"))


def _safe_member_path(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def inspect_wheel(file: IO[bytes], project: str, version_key: str) -> Inspection:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise Refused("The wheel is not a valid zip archive.", WHEEL_SPEC) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise Refused(f"The wheel has more than {MAX_MEMBERS} members.", WHEEL_SPEC)
        for member in members:
            if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Refused(
                    f"{member.filename!r} is compressed with method {member.compress_type}; "
                    "wheel members are stored or deflated.",
                    WHEEL_SPEC,
                )
            if not _safe_member_path(member.filename):
                raise Refused(
                    f"{member.filename!r} is not a relative path in the wheel.", WHEEL_SPEC
                )
        uncompressed = sum(m.file_size for m in members)
        compressed = sum(m.compress_size for m in members)
        if uncompressed > MAX_UNCOMPRESSED or uncompressed > MAX_RATIO * max(compressed, 1):
            raise Refused(
                f"The wheel would inflate to {uncompressed} bytes from {compressed}; this index "
                f"accepts at most {MAX_UNCOMPRESSED} bytes and a ratio of {MAX_RATIO}.",
                WHEEL_SPEC,
            )
        names = {m.filename for m in members}
        dist_infos = {
            n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")
        }
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
        info = archive.getinfo(f"{dist_info}/METADATA")
        if info.file_size > MAX_METADATA:
            raise Refused("The wheel's METADATA is too large.", WHEEL_SPEC)
        try:
            with archive.open(info) as stream:
                data = stream.read(MAX_METADATA + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise Refused("The wheel's METADATA cannot be read.", WHEEL_SPEC) from None
        return _check_metadata(data, project, version_key, WHEEL_SPEC)


def _link_stays_inside(member: tarfile.TarInfo, top: str) -> bool:
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
    else:  # hard links name a member of the archive
        target = posixpath.normpath(member.linkname)
    return not posixpath.isabs(member.linkname) and (target == top or target.startswith(top + "/"))


def inspect_sdist(file: IO[bytes], project: str, version_key: str) -> Inspection:
    try:
        archive = tarfile.open(fileobj=file, mode="r:gz")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError, EOFError):
        raise Refused("The sdist is not a gzip-compressed tar archive.", SDIST_SPEC) from None
    with archive:
        top: str | None = None
        pkg_info: tarfile.TarInfo | None = None
        total = 0
        try:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise Refused(f"The sdist has more than {MAX_MEMBERS} members.", SDIST_SPEC)
                name = member.name.rstrip("/")
                if not _safe_member_path(name) or not name:
                    raise Refused(
                        f"{member.name!r} is not a relative path in the sdist.", SDIST_SPEC
                    )
                first = name.split("/", 1)[0]
                top = top or first
                if first != top:
                    raise Refused(
                        f"An sdist has a single top directory; found {top!r} and {first!r}.",
                        SDIST_SPEC,
                    )
                if member.isdev() or member.isfifo():
                    raise Refused(f"{member.name!r} is a device or FIFO.", SDIST_SPEC)
                if (member.issym() or member.islnk()) and not _link_stays_inside(member, top):
                    raise Refused(f"{member.name!r} links outside the sdist's tree.", SDIST_SPEC)
                total += member.size
                if total > MAX_UNCOMPRESSED:
                    raise Refused("The sdist unpacks to too many bytes.", SDIST_SPEC)
                if name == f"{top}/PKG-INFO" and member.isfile():
                    pkg_info = member
        except (tarfile.TarError, OSError, EOFError):
            raise Refused("The sdist archive is corrupt.", SDIST_SPEC) from None
        if top is None:
            raise Refused("The sdist is empty.", SDIST_SPEC)
        name, sep, version = top.rpartition("-")
        if not sep or not _same_release(name, version, project, version_key):
            raise Refused(f"The top directory {top!r} is not '<name>-<version>'.", SDIST_SPEC)
        if pkg_info is None:
            raise Refused(f"The sdist lacks {top}/PKG-INFO.", SDIST_SPEC)
        if pkg_info.size > MAX_METADATA:
            raise Refused("The sdist's PKG-INFO is too large.", SDIST_SPEC)
        stream = archive.extractfile(pkg_info)
        if stream is None:
            raise Refused("The sdist's PKG-INFO cannot be read.", SDIST_SPEC)
        return _check_metadata(stream.read(MAX_METADATA + 1), project, version_key, SDIST_SPEC)


def inspect_distribution(
    filename: str, file: IO[bytes], project: str, version_key: str
) -> Inspection:
    if filename.endswith(".whl"):
        return inspect_wheel(file, project, version_key)
    return inspect_sdist(file, project, version_key)
