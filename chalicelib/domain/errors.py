"""The one error hierarchy. Each error knows its HTTP status; `app.py` renders every one
as an RFC 9457 problem (PEP 694 "Errors") in a single middleware.

Services raise these; nothing matches errors by message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_TYPE_BASE = "https://wharf.readthedocs.io/errors#"
SPEC_PEP694 = "https://peps.python.org/pep-0694/"


@dataclass(frozen=True)
class FieldError:
    """One entry of the problem's `errors` member: where, and what is wrong."""

    source: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "message": self.message}


@dataclass
class WharfError(Exception):
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    status = 500
    title = "Internal server error"
    slug = "internal-error"

    def __post_init__(self) -> None:
        """Subclasses add the headers their status requires."""

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"

    def problem(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "status": self.status,
            "title": self.title,
            "detail": self.detail,
            "meta": {"api-version": "2.0"},
            "errors": [e.as_dict() for e in self.errors],
        }


class BadRequest(WharfError):
    status = 400
    title = "Bad request"
    slug = "bad-request"


class Unauthorized(WharfError):
    status = 401
    title = "Authentication required"
    slug = "unauthorized"

    def __post_init__(self) -> None:
        # RFC 7235: a 401 names the schemes the server accepts.
        self.headers.setdefault("WWW-Authenticate", 'Basic realm="wharf", Bearer realm="wharf"')


class Forbidden(WharfError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(WharfError):
    status = 404
    title = "Not found"
    slug = "not-found"


class MethodNotAllowed(WharfError):
    status = 405
    title = "Method not allowed"
    slug = "method-not-allowed"


class NotAcceptable(WharfError):
    status = 406
    title = "Not acceptable"
    slug = "not-acceptable"


class Conflict(WharfError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class ContentTooLarge(WharfError):
    status = 413
    title = "Content too large"
    slug = "content-too-large"


class UnsupportedMediaType(WharfError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class UnprocessableContent(WharfError):
    status = 422
    title = "Unprocessable content"
    slug = "unprocessable-content"


class BadGateway(WharfError):
    """The origin behind the edge failed (CloudFront's 502 in AWS)."""

    status = 502
    title = "Bad gateway"
    slug = "bad-gateway"


class ServiceUnavailable(WharfError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"


def error_for_status(status: int, detail: str) -> WharfError:
    """The error to report for a status produced outside our code (chalice's own
    405/415/400, an unmatched route)."""
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        NotAcceptable,
        Conflict,
        ContentTooLarge,
        UnsupportedMediaType,
        UnprocessableContent,
        BadGateway,
        ServiceUnavailable,
    ):
        if cls.status == status:
            return cls(detail)
    return WharfError(detail)
