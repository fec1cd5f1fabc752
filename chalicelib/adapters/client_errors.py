"""botocore's ClientError, read the same way by every AWS adapter."""

from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(exc: ClientError) -> str:
    """The AWS error code ("NoSuchKey", "ConditionalCheckFailedException", ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
