"""Wharf's HTTP routes: parse, make one service call, render. Nothing else lives here."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from chalice.app import Rate, Response

from chalicelib.domain.errors import WharfError
from chalicelib.domain.ports import StoreBusy
from chalicelib.domain.records import Principal
from chalicelib.domain.states import FileStatus, SessionStatus
from chalicelib.domain.tokens import is_random_id, token_id_in
from chalicelib.http.parsing import (
    read_bytes,
    read_json,
    read_legacy_form,
    read_upload_json,
    require_edge,
)
from chalicelib.http.problems import as_problem, problem_for, problem_response
from chalicelib.http.rendering import (
    file_body,
    json_response,
    parts_body,
    rfc3339,
    session_body,
    signed_parts_body,
    token_body,
    upload_response,
    user_body,
)
from chalicelib.http.schemas import (
    CreateFile,
    CreateSession,
    CreateToken,
    CreateUser,
    Extend,
    GrantRole,
    SignParts,
)
from chalicelib.http.schemas import UploadRequest as Bare
from chalicelib.http.simple import (
    INDEX_CACHE,
    STAGE_CACHE,
    negotiate,
    page_response,
    redirect,
    root_body,
)
from chalicelib.runtime import services
from chalicelib.services.index import Redirect
from chalicelib.services.views import FileView, SessionView
from chalicelib.wharf_chalice import ThreadSafeChalice

app = ThreadSafeChalice(app_name="wharf")
# Legacy uploads carry wheels in multipart bodies: API Gateway must pass them as binary.
app.api.binary_types.append("multipart/form-data")
# Every content type reaches the views, which answer a wrong one with a 415 problem
# themselves (chalice's own 415 is not RFC 9457).
ANY_CONTENT = ["*/*"]
View = Callable[..., Response]


def route(path: str, methods: list[str]) -> Callable[[View], View]:
    """Register a view whose refusals become RFC 9457 problems (http/problems.py)."""

    def register(view: View) -> View:
        @functools.wraps(view)
        def handled(**params: str) -> Response:
            try:
                with _reading_ahead(params):
                    return view(**params)
            except (WharfError, StoreBusy) as exc:
                return problem_response(problem_for(exc, services().links))

        app.route(path, methods=methods, content_types=ANY_CONTENT)(handled)
        return view

    return register


def _reading_ahead(params: dict[str, str]) -> AbstractContextManager[None]:
    """The request's first reads in one round trip: its token, and the session and file
    its URL names (ids of another shape are never read: the service answers 404)."""
    request = app.current_request
    assert request is not None
    session_id = params.get("session_id", "")
    file_id = params.get("file_id", "")
    return services().store.reading_ahead(
        token_id=token_id_in(request.headers.get("authorization")),
        session_id=session_id if is_random_id(session_id) else None,
        file_id=file_id if is_random_id(file_id) else None,
    )


@app.middleware("http")
def problems_everywhere(event: Any, get_response: Callable[[Any], Response]) -> Response:
    # chalice's own errors (405, an unhandled exception's 500) become problems too.
    return as_problem(get_response(event))


@app.middleware("http")
def through_the_edge_only(event: Any, get_response: Callable[[Any], Response]) -> Response:
    try:
        require_edge(event.headers, services().settings.origin_verify)
    except WharfError as exc:
        return problem_response(problem_for(exc, None))
    return get_response(event)


def _request() -> tuple[dict[str, str], bytes | str | None]:
    request = app.current_request
    assert request is not None
    return dict(request.headers), request.raw_body


def _principal() -> Principal:
    request = app.current_request
    assert request is not None
    return services().access.authenticate(request.headers.get("authorization"))


def _session(status: int, view: SessionView, **headers: str) -> Response:
    body = session_body(view, services().links, services().files.mechanisms)
    return upload_response(status, body, headers)


def _file(status: int, view: FileView, **headers: str) -> Response:
    retry = {"Retry-After": str(services().settings.retry_after)}
    return upload_response(status, file_body(view, services().links), {**retry, **headers})


# -- publishing sessions (PEP 694 "Publishing Session") ------------------------------------


@route("/upload", methods=["POST"])
def create_session() -> Response:
    principal = _principal()
    body = read_upload_json(*_request(), CreateSession)
    view = services().sessions.create_session(principal, body.name, body.version)
    return _session(201, view, Location=services().links.session(view.session))


@route("/upload/sessions/{session_id}", methods=["GET"])
def session_status(session_id: str) -> Response:
    return _session(200, services().sessions.session_status(_principal(), session_id))


@route("/upload/sessions/{session_id}", methods=["DELETE"])
def cancel_session(session_id: str) -> Response:
    services().sessions.cancel_session(_principal(), session_id)
    return upload_response(204, None)


@route("/upload/sessions/{session_id}/publish", methods=["POST"])
def publish_session(session_id: str) -> Response:
    principal = _principal()
    read_upload_json(*_request(), Bare)
    view = services().publishing.publish(principal, session_id)
    # 202 when the release is large enough to be published by the worker.
    status = 202 if view.session.status is SessionStatus.PROCESSING else 201
    return _session(status, view, Location=services().links.session(view.session))


@route("/upload/sessions/{session_id}/extend", methods=["POST"])
def extend_session(session_id: str) -> Response:
    principal = _principal()
    body = read_upload_json(*_request(), Extend)
    return _session(200, services().sessions.extend_session(principal, session_id, body.extend_for))


# -- file upload sessions (PEP 694 "File Upload Session") ----------------------------------


@route("/upload/sessions/{session_id}/files", methods=["POST"])
def create_file(session_id: str) -> Response:
    principal = _principal()
    body = read_upload_json(*_request(), CreateFile)
    view = services().files.create_file(
        principal,
        session_id,
        filename=body.filename,
        size=body.size,
        hashes=body.hashes,
        mechanism=body.mechanism,
    )
    return _file(202, view, Location=services().links.file(view.file))


@route("/upload/sessions/{session_id}/files/{file_id}", methods=["GET"])
def file_status(session_id: str, file_id: str) -> Response:
    return _file(200, services().files.file_status(_principal(), session_id, file_id))


@route("/upload/sessions/{session_id}/files/{file_id}", methods=["DELETE"])
def cancel_file(session_id: str, file_id: str) -> Response:
    services().files.cancel_file(_principal(), session_id, file_id)
    return upload_response(204, None)


@route("/upload/sessions/{session_id}/files/{file_id}/content", methods=["POST"])
def upload_bytes(session_id: str, file_id: str) -> Response:
    principal = _principal()
    data = read_bytes(*_request())
    services().files.upload_bytes(principal, session_id, file_id, data)
    return upload_response(204, None)


@route("/upload/sessions/{session_id}/files/{file_id}/complete", methods=["POST"])
def complete_file(session_id: str, file_id: str) -> Response:
    principal = _principal()
    read_upload_json(*_request(), Bare)
    view = services().completion.complete_file(principal, session_id, file_id)
    # 202 when the file is large enough to be verified by the worker.
    status = 202 if view.status is FileStatus.PROCESSING else 201
    return _file(status, view, Location=services().links.file(view.file))


@route("/upload/sessions/{session_id}/files/{file_id}/extend", methods=["POST"])
def extend_file(session_id: str, file_id: str) -> Response:
    principal = _principal()
    body = read_upload_json(*_request(), Extend)
    return _file(
        200, services().sessions.extend_file(principal, session_id, file_id, body.extend_for)
    )


# -- the vendor mechanism: S3 multipart through presigned URLs (DESIGN.md) ----------------


@route("/upload/sessions/{session_id}/files/{file_id}/parts", methods=["GET"])
def list_parts(session_id: str, file_id: str) -> Response:
    parts = services().parts.list_parts(_principal(), session_id, file_id)
    return upload_response(200, parts_body(parts))


@route("/upload/sessions/{session_id}/files/{file_id}/parts", methods=["POST"])
def sign_parts(session_id: str, file_id: str) -> Response:
    principal = _principal()
    body = read_upload_json(*_request(), SignParts)
    signed = services().parts.sign_parts(
        principal, session_id, file_id, [(p.number, p.sha256) for p in body.parts]
    )
    return upload_response(200, signed_parts_body(signed))


# -- the legacy upload API (twine, uv publish) ------------------------------------------------


@route("/legacy", methods=["POST"])
def legacy_upload() -> Response:
    principal = _principal()
    form = read_legacy_form(*_request(), max_file=services().settings.post_bytes_max)
    services().legacy.upload(principal, form)
    return json_response(200, {"status": "published"})


# -- operator API ----------------------------------------------------------------------------


def _admin() -> None:
    request = app.current_request
    assert request is not None
    services().access.authenticate_admin(request.headers.get("authorization"))


@route("/admin/users", methods=["POST"])
def admin_create_user() -> Response:
    _admin()
    body = read_json(_request()[1], CreateUser)
    services().admin.create_user(body.username)
    return json_response(201, {"username": body.username})


@route("/admin/users", methods=["GET"])
def admin_list_users() -> Response:
    _admin()
    users = services().admin.users()
    return json_response(
        200, {"users": [{"username": u, "created-at": rfc3339(at)} for u, at in users]}
    )


@route("/admin/users/{username}", methods=["GET"])
def admin_show_user(username: str) -> Response:
    _admin()
    return json_response(200, user_body(services().admin.user(username)))


@route("/admin/users/{username}", methods=["DELETE"])
def admin_delete_user(username: str) -> Response:
    _admin()
    services().admin.delete_user(username)
    return json_response(204, None)


@route("/admin/users/{username}/tokens", methods=["POST"])
def admin_issue_token(username: str) -> Response:
    _admin()
    body = read_json(_request()[1], CreateToken)
    issued = services().admin.issue_token(username, body.description, body.projects)
    return json_response(201, {**token_body(issued.record), "token": issued.text})


@route("/admin/tokens/{token_id}", methods=["DELETE"])
def admin_revoke_token(token_id: str) -> Response:
    _admin()
    services().admin.revoke_token(token_id)
    return json_response(204, None)


@route("/admin/projects/{name}/roles", methods=["GET"])
def admin_list_roles(name: str) -> Response:
    _admin()
    project, roles = services().admin.project_roles(name)
    return json_response(
        200,
        {
            "project": project,
            "roles": [{"username": user, "role": role.value} for user, role in roles],
        },
    )


@route("/admin/projects/{name}/roles/{username}", methods=["PUT"])
def admin_grant_role(name: str, username: str) -> Response:
    _admin()
    body = read_json(_request()[1], GrantRole)
    project, role = services().admin.grant_role(name, username, body.role)
    return json_response(200, {"project": project, "username": username, "role": role.value})


@route("/admin/projects/{name}/roles/{username}", methods=["DELETE"])
def admin_revoke_role(name: str, username: str) -> Response:
    _admin()
    services().admin.revoke_role(name, username)
    return json_response(204, None)


# -- the simple repository API, and stages (PEP 694 "Staged Previews") ----------------------


def _accept() -> tuple[dict[str, str], str]:
    headers, _ = _request()
    return headers, negotiate(headers.get("accept"))


def _slashless() -> bool:
    """Was the page asked for without its trailing slash? API Gateway matches routes
    either way; the path as sent is in the request context."""
    request = app.current_request
    assert request is not None
    return not str(request.context.get("path", "/")).endswith("/")


def _page(
    prefix: str,
    name: str,
    render: Callable[[dict[str, str], str], Response],
    cache: str = INDEX_CACHE,
) -> Response:
    """The page at `prefix` + `name` + '/', its canonical URL. Page URLs MUST end with
    '/' and the repository SHOULD redirect the others (simple-repository-api.rst, "Base
    HTML API"); a project name that is not normalized redirects too (Redirect)."""

    def moved(to: str) -> Response:
        return redirect(f"{services().settings.public_url}/{prefix}{to}/", cache=cache)

    if _slashless():
        return moved(name)
    try:
        headers, kind = _accept()
        return render(headers, kind)
    except Redirect as elsewhere:
        return moved(elsewhere.name)


@route("/simple", methods=["GET"])
def simple_index() -> Response:
    base = f"{services().settings.public_url}/simple/"
    return _page(
        "",
        "simple",
        lambda headers, kind: page_response(
            kind, root_body(kind, base, services().index.projects()), headers
        ),
    )


@route("/simple/{name}", methods=["GET"])
def simple_project(name: str) -> Response:
    def render(headers: dict[str, str], kind: str) -> Response:
        page = services().index.project(name)
        return services().pages.response(kind, page, headers)

    return _page("simple/", name, render)


@route("/stage/{token}", methods=["GET"])
def stage_index(token: str) -> Response:
    base = f"{services().settings.public_url}/stage/{token}/"

    def render(headers: dict[str, str], kind: str) -> Response:
        projects = services().index.stage_projects(token)
        return page_response(kind, root_body(kind, base, projects), headers, cache=STAGE_CACHE)

    # Stage URLs carry the session token: never in a shared cache.
    return _page("stage/", token, render, STAGE_CACHE)


@route("/stage/{token}/{name}", methods=["GET"])
def stage_project(token: str, name: str) -> Response:
    def render(headers: dict[str, str], kind: str) -> Response:
        page = services().index.stage_project(token, name)
        return services().pages.response(kind, page, headers, cache=STAGE_CACHE)

    return _page(f"stage/{token}/", name, render, STAGE_CACHE)


@route("/stage/{token}/files/{file_id}/{filename}", methods=["GET"])
def stage_download(token: str, file_id: str, filename: str) -> Response:
    """Staged bytes go through the stage capability only: a short-lived presigned URL."""
    url = services().index.staged_download(token, file_id, filename)
    return Response(
        body="", status_code=302, headers={"Location": url, "Cache-Control": "no-store"}
    )


# -- deferred processing -------------------------------------------------------------------


# A placeholder: the template subscribes the worker to the stack's own queue, whose name
# CloudFormation generates (infra/template.yaml, ProcessJobsSqsEventSource).
@app.on_sqs_message(queue_arn="arn:aws:sqs:us-east-1:000000000000:set-by-infra", batch_size=1)
def process_jobs(event: Any) -> None:
    """The worker: verifies large files and publishes large releases (at least once)."""
    for record in event:
        delivery = int(record.to_dict().get("attributes", {}).get("ApproximateReceiveCount", 1))
        services().worker.handle(
            json.loads(record.body), last_attempt=delivery >= services().settings.job_attempts
        )


# -- scheduled work --------------------------------------------------------------------------


@app.schedule(Rate(5, unit=Rate.MINUTES))
def expire_sessions(event: Any) -> None:
    """Services.sweep: expired sessions, and commits whose files are not yet public."""
    services().sweep.run()
