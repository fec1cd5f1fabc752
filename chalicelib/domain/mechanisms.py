"""File upload mechanisms (PEP 694 "File Upload Mechanisms") and the part arithmetic of
Wharf's vendor mechanism, `vnd-<operator>-s3multipart-presigned-v1` (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass

HTTP_POST_BYTES = "http-post-bytes"
MIB = 1024 * 1024
# S3 multipart limits: every part but the last is 5 MiB to 5 GiB, at most 10,000 parts.
S3_MIN_PART = 5 * MIB
S3_MAX_PART = 5 * 1024 * MIB
S3_MAX_PARTS = 10_000
# Wharf's floor is above S3's: fewer, larger parts cost fewer signing round trips.
MIN_PART_SIZE = 8 * MIB
# Presigned part URLs are short-lived: one part of one upload, for 15 minutes.
PART_URL_SECONDS = 900
# As many parts as one request body can name within the API's JSON limit (64 KiB), even
# pretty-printed with the largest part numbers (tests/test_api_multipart.py proves it).
MAX_PARTS_PER_REQUEST = 500


def multipart_identifier(operator: str) -> str:
    return f"vnd-{operator}-s3multipart-presigned-v1"


@dataclass(frozen=True)
class PartPlan:
    """How a file of `size` bytes is cut into parts: all `part_size` but the last."""

    size: int
    part_size: int

    @classmethod
    def for_size(cls, size: int) -> PartPlan:
        needed = -(-size // S3_MAX_PARTS)  # ceil: no file needs more than 10,000 parts
        part_size = max(MIN_PART_SIZE, -(-needed // MIB) * MIB)
        if part_size > S3_MAX_PART:
            raise ValueError(f"{size} bytes cannot be uploaded in {S3_MAX_PARTS} S3 parts")
        return cls(size=size, part_size=part_size)

    @property
    def whole(self) -> bool:
        """A file of one part is sent whole, through one presigned PutObject rather than
        a multipart upload: one S3 request instead of three, nothing to assemble or list,
        and S3 checks the SHA-256 of the whole file (issue 13). The client sees the same
        mechanism: part 1's URL and the headers to send with it."""
        return self.count == 1

    @property
    def count(self) -> int:
        return max(1, -(-self.size // self.part_size))

    def size_of(self, number: int) -> int:
        if not 1 <= number <= self.count:
            raise ValueError(f"part {number} is not between 1 and {self.count}")
        if number < self.count:
            return self.part_size
        return self.size - self.part_size * (self.count - 1)
