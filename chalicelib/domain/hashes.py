"""The `hashes` of a file upload session (PEP 694 "Create a File Upload Session").

Any hashlib algorithm that `hashlib.new()` takes without parameters may be given; at least
one must be secure and in `hashlib.algorithms_guaranteed` (sha256 recommended), and every
digest given must match the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

# Guaranteed algorithms that are not good enough on their own: md5 and sha1 are broken,
# shake_* need a length and so cannot be passed to hashlib.new() without parameters.
_WEAK = frozenset({"md5", "sha1"})
SECURE_GUARANTEED = frozenset(
    name
    for name in hashlib.algorithms_guaranteed
    if name not in _WEAK and not name.startswith("shake_")
)
_HEX = re.compile(r"[0-9a-f]+")
MAX_HASHES = 16


class InvalidHashes(ValueError):
    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source


def _digest_size(algorithm: str) -> int | None:
    try:
        hasher = hashlib.new(algorithm)
        return hasher.digest_size if not algorithm.startswith("shake_") else None
    except (ValueError, TypeError):
        return None


def normalize_hashes(hashes: Mapping[str, str]) -> dict[str, str]:
    """Validated hashes with lower-case algorithm names and digests."""
    if not hashes:
        raise InvalidHashes("hashes", "give at least one digest, e.g. {'sha256': '<hex>'}")
    if len(hashes) > MAX_HASHES:
        raise InvalidHashes("hashes", f"at most {MAX_HASHES} digests")
    result: dict[str, str] = {}
    for raw_name, raw_digest in hashes.items():
        name = raw_name.lower()
        source = f"hashes.{raw_name}"
        size = _digest_size(name)
        if size is None:
            raise InvalidHashes(
                source, f"{raw_name!r} is not a hashlib algorithm usable without parameters"
            )
        digest = raw_digest.lower()
        if len(digest) != 2 * size or not _HEX.fullmatch(digest):
            raise InvalidHashes(source, f"a {name} digest is {2 * size} hexadecimal characters")
        if result.get(name, digest) != digest:
            # 'sha256' and 'SHA256' name one algorithm: keeping either digest would
            # silently drop a claim the uploader made.
            raise InvalidHashes(source, f"{name} is given twice with different digests")
        result[name] = digest
    if not SECURE_GUARANTEED.intersection(result):
        raise InvalidHashes(
            "hashes",
            "include at least one secure algorithm from hashlib.algorithms_guaranteed "
            f"(sha256 recommended; one of {', '.join(sorted(SECURE_GUARANTEED))})",
        )
    return result


class MultiHasher:
    """Computes several digests of one stream in a single pass."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashers = {name: hashlib.new(name) for name in algorithms}
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashers.items()}
