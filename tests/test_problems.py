"""The one table from refusal to RFC 9457 problem (chalicelib/http/problems.py)."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.errors import (
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
    filenames_taken,
    files_unfinished,
)
from chalicelib.domain.ports import StoreBusy
from chalicelib.domain.records import FileRecord, SessionRecord
from chalicelib.domain.states import FileStatus, SessionStatus
from chalicelib.http.links import Links
from chalicelib.http.problems import (
    PROBLEM_JSON,
    MethodNotAllowed,
    as_problem,
    problem_for,
    problem_for_status,
    problem_response,
)

LINKS = Links("https://index.example")
SESSION = SessionRecord(
    id="s1",
    token="tok",
    project="demo",
    version="1.0",
    version_key="1",
    status=SessionStatus.OPEN,
    created_at=0,
    expires_at=60,
    created_by="alice",
    first_release=True,
)
FILE = FileRecord(
    id="f1",
    session_id="s1",
    filename="demo-1.0.tar.gz",
    size=1,
    hashes={},
    mechanism="http-post-bytes",
    status=FileStatus.PENDING,
    key="files/demo/f1/demo-1.0.tar.gz",
    created_at=0,
)


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (Invalid("x"), 400, "Bad request"),
        (NotAuthenticated("x"), 401, "Authentication required"),
        (NotPermitted("x"), 403, "Forbidden"),
        (NotFound("x"), 404, "Not found"),
        (MethodNotAllowed("x"), 405, "Method not allowed"),
        (Conflict("x"), 409, "Conflict"),
        (SessionInProgress("x", SESSION), 409, "Conflict"),
        (filenames_taken(["a.whl"]), 409, "Conflict"),
        (TooLarge("x"), 413, "Content too large"),
        (Unsupported("x"), 422, "Unprocessable content"),
        (StoreBusy(), 503, "Service unavailable"),
        (WharfError("x"), 500, "Internal server error"),
        (RuntimeError("x"), 500, "Internal server error"),
    ],
)
def test_each_kind_of_refusal_has_one_status_found_by_class(
    error: Exception, status: int, title: str
) -> None:
    problem = problem_for(error, LINKS)
    body = problem.body()
    assert (problem.status, body["status"], body["title"]) == (status, status, title)
    assert body["meta"] == {"api-version": "2.0"}


def test_an_unexpected_error_says_nothing_of_its_message() -> None:
    assert "secret" not in problem_for(RuntimeError("secret"), LINKS).detail


def test_the_headers_come_from_the_errors_data() -> None:
    assert "Bearer" in problem_for(NotAuthenticated("x"), LINKS).headers["WWW-Authenticate"]
    assert problem_for(SessionInProgress("x", SESSION), LINKS).headers == {
        "Location": LINKS.session(SESSION)
    }
    assert problem_for(FileInProgress("x", FILE), LINKS).headers == {"Location": LINKS.file(FILE)}
    assert problem_for(StoreBusy(), LINKS).headers == {"Retry-After": "1"}
    assert problem_for(MethodNotAllowed("x", headers={"Allow": "GET"}), LINKS).headers == {
        "Allow": "GET"
    }


def test_a_refused_publish_names_each_file_with_why() -> None:
    unfinished = files_unfinished({"b.whl": FileStatus.ERROR, "a.whl": FileStatus.PENDING})
    assert unfinished.reasons == {"a.whl": "status is pending", "b.whl": "status is error"}
    assert unfinished.errors == [
        FieldError("files.a.whl", "status is pending"),
        FieldError("files.b.whl", "status is error"),
    ]
    assert filenames_taken(["x.whl"]).reasons == {"x.whl": "already published"}


@pytest.mark.parametrize(
    ("status", "title"),
    [
        (400, "Bad request"),
        (408, "Request timeout"),
        (411, "Length Required"),
        (429, "Too Many Requests"),
    ],
)
def test_a_status_from_outside_keeps_its_number_and_its_own_title(status: int, title: str) -> None:
    """A status no refusal class has (the stdlib's, chalice's) was once answered as a
    500 "Internal server error"; it keeps its status and gets that status's title."""
    problem = problem_for_status(status, "detail")
    assert (problem.status, problem.body()["status"], problem.body()["title"]) == (
        status,
        status,
        title,
    )


def test_chalices_own_errors_become_problems_keeping_allow() -> None:
    from chalice.app import Response

    answer = as_problem(
        Response(body={"Message": "Method Not Allowed"}, status_code=405, headers={"Allow": "GET"})
    )
    assert answer.status_code == 405
    assert answer.headers["Content-Type"] == PROBLEM_JSON
    assert answer.headers["Allow"] == "GET"
    assert json.loads(answer.body)["detail"] == "Method Not Allowed"
    assert (
        problem_response(problem_for(Conflict("x"), LINKS)).headers["Cache-Control"] == "no-store"
    )
