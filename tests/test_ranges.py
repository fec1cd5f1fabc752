"""Byte-range parsing of the local edge (RFC 9110 section 14), without a server."""

import pytest

from devserver.files import parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=100-200", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=9-5", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=abc", None),
    ],
)
def test_ranges(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected
