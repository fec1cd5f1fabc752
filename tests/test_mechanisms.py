"""The vendor mechanism's part plan respects S3's limits for every file size."""

import pytest

from chalicelib.domain.mechanisms import (
    MIB,
    MIN_PART_SIZE,
    S3_MAX_PART,
    S3_MAX_PARTS,
    S3_MIN_PART,
    PartPlan,
    multipart_identifier,
)


@pytest.mark.parametrize(
    "size", [1, MIB, MIN_PART_SIZE, MIN_PART_SIZE + 1, 256 * MIB, 1024**3, 80 * 1024**3 + 7]
)
def test_parts_cover_the_file_within_s3_limits(size: int) -> None:
    plan = PartPlan.for_size(size)
    assert plan.part_size >= MIN_PART_SIZE >= S3_MIN_PART
    assert plan.part_size <= S3_MAX_PART
    assert plan.count <= S3_MAX_PARTS
    assert sum(plan.size_of(n) for n in range(1, plan.count + 1)) == size
    assert 0 < plan.size_of(plan.count) <= plan.part_size


def test_part_numbers_outside_the_plan_are_refused() -> None:
    plan = PartPlan.for_size(20 * MIB)
    assert plan.count == 3
    for number in (0, 4, -1):
        with pytest.raises(ValueError):
            plan.size_of(number)


def test_the_identifier_follows_pep_694_vendor_naming() -> None:
    assert multipart_identifier("wharf") == "vnd-wharf-s3multipart-presigned-v1"
