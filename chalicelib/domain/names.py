"""Project names, versions and distribution filenames, validated with `packaging`.

Specs: name-normalization.rst, version specifiers, binary-distribution-format.rst
(wheel filenames) and source-distribution-format.rst (PEP 625 sdist filenames).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from packaging.tags import Tag
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


# binary-distribution-format.rst "File name convention" and "Escaping and Unicode": the
# tags are PEP 425's (python, abi and platform; each a '.'-separated compressed set whose
# members have every '-' and '.' replaced by '_'), and a build tag starts with a digit.
# `packaging` parses any characters there, so `<`, `;`, '"', '?', '#' or spaces would
# pass into a URL and an HTML page.
_TAG_SET = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_BUILD_TAG = re.compile(r"[0-9]+[A-Za-z0-9_]*")


def _check_wheel_tags(filename: str) -> None:
    parts = filename.removesuffix(".whl").split("-")
    build, tags = parts[2:-3], parts[-3:]
    if any(_BUILD_TAG.fullmatch(b) is None for b in build):
        raise InvalidInput(
            f"{filename!r} has build tag {build[0]!r}: a build tag is digits followed by "
            f"letters, digits or '_'. See {WHEEL_SPEC}"
        )
    for tag in tags:
        if _TAG_SET.fullmatch(tag) is None:
            raise InvalidInput(
                f"{filename!r} has compatibility tag {tag!r}: a tag is letters, digits and "
                f"'_', several joined by '.'. See {WHEEL_SPEC}"
            )


def sdist_filename(project: str, version: Version) -> str:
    """The one PEP 625 name of an sdist (source-distribution-format.rst "Source
    distribution file name"): the normalized name with `-` escaped to `_`, and the
    normalized version."""
    return f"{canonicalize_name(project).replace('-', '_')}-{version}.tar.gz"


def _parse(filename: str) -> tuple[str, Version, tuple[()] | tuple[int, str], frozenset[Tag]]:
    """Name, version, build tag and tags of a wheel or sdist filename (no tags for an
    sdist), or InvalidInput saying which rule it breaks."""
    _check_filename_characters(filename)
    try:
        if filename.endswith(".whl"):
            name, version, build, tags = parse_wheel_filename(filename)
            _check_wheel_tags(filename)
            return name, version, build, tags
        if filename.endswith(".tar.gz"):
            name, version = parse_sdist_filename(filename)
            # packaging takes any text before the last '-' as the name.
            canonicalize_name(filename.rpartition("-")[0], validate=True)
            return name, version, (), frozenset()
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion, InvalidName) as exc:
        spec = WHEEL_SPEC if filename.endswith(".whl") else SDIST_SPEC
        raise InvalidInput(
            f"{filename!r} is not a valid distribution filename: {exc}. See {spec}"
        ) from None
    raise InvalidInput(
        f"{filename!r} is neither a wheel (.whl) nor a source distribution "
        f"(.tar.gz, PEP 625). See {WHEEL_SPEC} and {SDIST_SPEC}"
    )


def check_distribution_filename(filename: str, project: str, version_key: str) -> None:
    """Refuse a filename that is not a wheel or a `.tar.gz` sdist of this release."""
    name, parsed_version, _build, _tags = _parse(filename)
    is_sdist = filename.endswith(".tar.gz")
    spec = SDIST_SPEC if is_sdist else WHEEL_SPEC
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
    # PEP 625 gives an sdist exactly one name. (Wheels with an unnormalized name stay
    # accepted, as PyPI does: the wheel spec tells consumers to accept '.' and upper case.)
    if is_sdist and filename != (expected := sdist_filename(name, parsed_version)):
        raise InvalidInput(
            f"{filename!r} is not a normalized sdist filename: name it {expected!r}. See {spec}"
        )


@functools.lru_cache(maxsize=4096)  # a pure function, asked for each key of each file
def filename_key(filename: str) -> str:
    """The identity of a distribution filename within its release: two filenames with
    the same key name the same distribution to an installer, so a release holds at most
    one of them.

    A wheel's key is its normalized name, release key (`1.0` and `1.0.0` are one
    release), build tag (`01` and `1` sort alike) and tag set. The tag set of a
    filename is the product of its python, abi and platform sets, so those three sorted,
    deduplicated, lower-cased sets (packaging compares tags in lower case) identify it
    as its expansion would, in at most the filename's length. An sdist's key is its
    normalized name and release key. The key reads as a filename: ASCII, printable and
    short enough for a DynamoDB sort key. InvalidInput for a filename `_parse` refuses.
    """
    name, version, build, tags = _parse(filename)
    stem = f"{name.replace('-', '_')}-{release_key(version)}"
    if filename.endswith(".tar.gz"):
        return f"{stem}.tar.gz"
    sets = (
        {t.interpreter for t in tags},
        {t.abi for t in tags},
        {t.platform for t in tags},
    )
    tag_text = "-".join(".".join(sorted(s)) for s in sets)
    build_text = f"-{build[0]}{build[1]}" if build else ""
    return f"{stem}{build_text}-{tag_text}.whl"
