"""Invalidating index pages at the edge after a publish, so a new release is visible
within seconds rather than after the pages' cache lifetime."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient


class CloudFrontCache:
    def __init__(self, client: CloudFrontClient, distribution_id: str) -> None:
        self._cloudfront = client
        self._distribution = distribution_id

    def invalidate(self, paths: list[str]) -> None:
        self._cloudfront.create_invalidation(
            DistributionId=self._distribution,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": uuid.uuid4().hex,
            },
        )


class NoEdgeCache:
    """Locally the edge caches nothing; tests read what would have been invalidated."""

    def __init__(self) -> None:
        self.invalidated: list[str] = []

    def invalidate(self, paths: list[str]) -> None:
        self.invalidated.extend(paths)
