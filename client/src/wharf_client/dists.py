"""The files to upload: what release each belongs to (from its filename, as the wheel
and sdist specs name them) and its digest, read from disk in chunks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .errors import UsageError


@dataclass(frozen=True)
class Dist:
    path: Path
    filename: str
    project: str  # normalized
    version: Version
    size: int

    @cached_property
    def sha256(self) -> str:
        """Read when the file's turn comes, in the thread that uploads it: the files of a
        release are hashed in parallel with each other's uploads rather than all before
        the first request (hashlib releases the interpreter lock while it hashes)."""
        return sha256_of(self.path)

    @classmethod
    def read(cls, path: Path) -> Dist:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        filename = path.name
        try:
            if filename.endswith(".whl"):
                name, version, _build, _tags = parse_wheel_filename(filename)
            elif filename.endswith(".tar.gz"):
                name, version = parse_sdist_filename(filename)
            else:
                raise UsageError(
                    f"{filename}: not a distribution (a wheel .whl or an sdist .tar.gz)"
                )
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
            raise UsageError(f"{filename}: not a valid distribution filename: {exc}") from None
        size = path.stat().st_size
        if size == 0:
            raise UsageError(f"{filename}: the file is empty")
        return cls(path, filename, canonicalize_name(name), version, size)


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


@dataclass
class Release:
    project: str
    version: Version
    dists: list[Dist] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(d.size for d in self.dists)


def releases(paths: Iterable[str | Path]) -> list[Release]:
    """The files grouped by release (normalized name, and version as PEP 440 compares
    it), in the order given. Two files with one name are a usage error."""
    grouped: dict[tuple[str, Version], Release] = {}
    seen: set[str] = set()
    for raw in paths:
        dist = Dist.read(Path(raw))
        if dist.filename in seen:
            raise UsageError(f"{dist.filename} is given twice")
        seen.add(dist.filename)
        release = grouped.setdefault(
            (dist.project, dist.version), Release(dist.project, dist.version)
        )
        release.dists.append(dist)
    if not grouped:
        raise UsageError("no files to upload")
    return list(grouped.values())
