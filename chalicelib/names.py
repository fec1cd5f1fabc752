"""Project names, versions and distribution filenames, validated with `packaging`.

Specs: name-normalization.rst, version specifiers, binary-distribution-format.rst
(wheel filenames) and source-distribution-format.rst (PEP 625 sdist filenames).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

NAME_SPEC = "https://packaging.python.org/en/latest/specifications/name-normalization/"
VERSION_SPEC = "https://packaging.python.org/en/latest/specifications/version-specifiers/"
WHEEL_SPEC = "https://packaging.python.org/en/latest/specifications/binary-distribution-format/"
SDIST_SPEC = "https://packaging.python.org/en/latest/specifications/source-distribution-format/"
MAX_FILENAME_LENGTH = 255
# Far above any real project name, and keeps every key built from a name within
# DynamoDB's key size limits.
MAX_NAME_LENGTH = 200


class InvalidInput(ValueError):
    """A value that does not conform to its spec; the message says why and links it."""


def normalize_name(name: str) -> str:
    """The normalized project name (PEP 503), or InvalidInput."""
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a project name has at most {MAX_NAME_LENGTH} characters")
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise InvalidInput(
            f"{name!r} is not a valid project name: names consist of ASCII letters, digits, "
            f"'.', '_' and '-', and start and end with a letter or digit. See {NAME_SPEC}"
        ) from None


@dataclass(frozen=True)
class ReleaseVersion:
    """A version as published (`text`, PEP 440 normalized) and as a release key (`key`):
    `1.0` and `1.0.0` are one release, so the key strips trailing zeros."""

    text: str
    key: str


def parse_version(version: str) -> ReleaseVersion:
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise InvalidInput(f"{version!r} is not a valid version. See {VERSION_SPEC}") from None
    return ReleaseVersion(text=str(parsed), key=release_key(parsed))


def release_key(version: Version) -> str:
    return canonicalize_version(version, strip_trailing_zero=True)


def _check_filename_characters(filename: str) -> None:
    if not filename or len(filename) > MAX_FILENAME_LENGTH:
        raise InvalidInput(f"a filename has 1 to {MAX_FILENAME_LENGTH} characters")
    if "/" in filename or "\\" in filename:
        raise InvalidInput("a filename must not contain a path separator")
    if any(unicodedata.category(ch).startswith("C") for ch in filename):
        raise InvalidInput("a filename must not contain control or format characters")
    if not filename.isascii():
        raise InvalidInput("a distribution filename is ASCII")


def check_distribution_filename(filename: str, project: str, version_key: str) -> None:
    """Refuse a filename that is not a wheel or a `.tar.gz` sdist of this release."""
    _check_filename_characters(filename)
    try:
        if filename.endswith(".whl"):
            name, parsed_version, _build, _tags = parse_wheel_filename(filename)
            spec = WHEEL_SPEC
        elif filename.endswith(".tar.gz"):
            name, parsed_version = parse_sdist_filename(filename)
            spec = SDIST_SPEC
        else:
            raise InvalidInput(
                f"{filename!r} is neither a wheel (.whl) nor a source distribution "
                f"(.tar.gz, PEP 625). See {WHEEL_SPEC} and {SDIST_SPEC}"
            )
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise InvalidInput(f"{filename!r} is not a valid distribution filename: {exc}") from None
    if name != project:
        raise InvalidInput(
            f"{filename!r} is for project {name!r}, but this session publishes {project!r}. "
            f"See {spec}"
        )
    if release_key(parsed_version) != version_key:
        raise InvalidInput(
            f"{filename!r} is for version {parsed_version}, which is not this session's "
            f"release. See {spec}"
        )
