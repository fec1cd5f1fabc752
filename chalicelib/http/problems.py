"""Every refusal as an RFC 9457 problem (PEP 694 "Errors"): the one table from error
kind to status, title and problem type, looked up along the error's class hierarchy, and
the headers a kind's data calls for. The routes, chalice's own errors and the local edge
all answer through it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from chalice.app import Response

from ..domain.errors import (
    Conflict,
    FieldError,
    FileInProgress,
    Invalid,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    SessionInProgress,
    TooLarge,
    Unsupported,
    WharfError,
)
from ..domain.ports import StoreBusy
from .links import Links

PROBLEM_TYPE_BASE = "https://wharf.readthedocs.io/errors#"
PROBLEM_JSON = "application/problem+json"


class HttpRefusal(WharfError):
    """A refusal of the HTTP layer itself (how a request was sent, not what it asks),
    with the headers its status requires."""

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, errors)
        self.headers = dict(headers or {})


class MethodNotAllowed(HttpRefusal):
    pass


class NotAcceptable(HttpRefusal):
    pass


class BodyTooLarge(HttpRefusal):
    pass


class UnsupportedMediaType(HttpRefusal):
    pass


class BadGateway(HttpRefusal):
    """The origin behind the edge failed (CloudFront's 502 in AWS)."""


@dataclass(frozen=True)
class Kind:
    status: int
    title: str
    slug: str


KINDS: dict[type[Exception], Kind] = {
    Invalid: Kind(400, "Bad request", "bad-request"),
    NotAuthenticated: Kind(401, "Authentication required", "unauthorized"),
    NotPermitted: Kind(403, "Forbidden", "forbidden"),
    NotFound: Kind(404, "Not found", "not-found"),
    MethodNotAllowed: Kind(405, "Method not allowed", "method-not-allowed"),
    NotAcceptable: Kind(406, "Not acceptable", "not-acceptable"),
    Conflict: Kind(409, "Conflict", "conflict"),
    TooLarge: Kind(413, "Content too large", "content-too-large"),
    BodyTooLarge: Kind(413, "Content too large", "content-too-large"),
    UnsupportedMediaType: Kind(415, "Unsupported media type", "unsupported-media-type"),
    Unsupported: Kind(422, "Unprocessable content", "unprocessable-content"),
    BadGateway: Kind(502, "Bad gateway", "bad-gateway"),
    # Nothing was written (ports.StoreBusy): the client may simply retry.
    StoreBusy: Kind(503, "Service unavailable", "unavailable"),
}
INTERNAL = Kind(500, "Internal server error", "internal-error")
# Statuses only the HTTP machinery produces (chalice, the local edge), by number.
_BY_STATUS = {
    **{kind.status: kind for kind in reversed(list(KINDS.values()))},
    408: Kind(408, "Request timeout", "request-timeout"),
    414: Kind(414, "URI too long", "uri-too-long"),
    431: Kind(431, "Request header fields too large", "header-fields-too-large"),
    500: INTERNAL,
    501: Kind(501, "Not implemented", "not-implemented"),
    505: Kind(505, "HTTP version not supported", "http-version-not-supported"),
}
# RFC 7235: a 401 names the schemes the server accepts.
CHALLENGE = 'Basic realm="wharf", Bearer realm="wharf"'


@dataclass(frozen=True)
class Problem:
    kind: Kind
    detail: str
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return self.kind.status

    def body(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.kind.slug,
            "status": self.kind.status,
            "title": self.kind.title,
            "detail": self.detail,
            "meta": {"api-version": "2.0"},
            "errors": [e.as_dict() for e in self.errors],
        }

    def encode(self) -> bytes:
        return json.dumps(self.body()).encode()


def kind_of(error: Exception) -> Kind:
    return next((KINDS[c] for c in type(error).__mro__ if c in KINDS), INTERNAL)


def problem_for(error: Exception, links: Links | None) -> Problem:
    """The problem that answers `error`: its kind, and the headers its data calls for
    (a Location needs `links`; only answers outside the routes go without)."""
    kind = kind_of(error)
    if isinstance(error, StoreBusy):
        return Problem(kind, error.detail, headers={"Retry-After": str(error.retry_after)})
    if not isinstance(error, WharfError):
        return Problem(INTERNAL, "The server failed unexpectedly; retry later.")
    headers: dict[str, str] = {}
    if isinstance(error, HttpRefusal):
        headers.update(error.headers)
    if isinstance(error, NotAuthenticated):
        headers["WWW-Authenticate"] = CHALLENGE
    if links is not None and isinstance(error, SessionInProgress):
        headers["Location"] = links.session(error.session)
    if links is not None and isinstance(error, FileInProgress):
        headers["Location"] = links.file(error.file)
    return Problem(kind, error.detail, error.errors, headers)


def problem_for_status(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Problem:
    """The problem for a status produced outside Wharf's code (chalice's own 405 or 415,
    the stdlib's 400 for a malformed request line)."""
    kind = _BY_STATUS.get(status)
    if kind is None:
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        kind = Kind(status, phrase, phrase.lower().replace(" ", "-"))
    out = dict(headers or {})
    if status == 401:
        out.setdefault("WWW-Authenticate", CHALLENGE)
    return Problem(kind, detail, headers=out)


def problem_response(problem: Problem) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": PROBLEM_JSON,
        "Cache-Control": "no-store",
        **problem.headers,
    }
    return Response(body=json.dumps(problem.body()), status_code=problem.status, headers=headers)


def as_problem(response: Response) -> Response:
    """A 4xx/5xx that chalice produced itself (405, 415, ...) rendered as a problem."""
    if response.status_code < 400:
        return response
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
    if isinstance(content_type, str) and content_type.startswith(PROBLEM_JSON):
        return response
    detail = "The request failed."
    if isinstance(response.body, dict):
        detail = str(response.body.get("Message") or response.body.get("message") or detail)
    kept = {
        k: v
        for k, v in response.headers.items()
        if k.lower() in ("allow", "www-authenticate") and isinstance(v, str)
    }
    return problem_response(problem_for_status(response.status_code, detail, kept))
