"""Rendering answers: PEP 694 bodies from the services' views, and the JSON responses
that carry them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from chalice.app import Response
from pydantic import BaseModel

from ..domain.mechanisms import HTTP_POST_BYTES, PartPlan
from ..domain.records import TokenRecord
from ..services.admin import UserView
from ..services.views import FileView, PartState, SessionView, SignedPart
from .links import Links
from .parsing import UPLOAD_JSON
from .schemas import (
    FileBody,
    FileLinks,
    PartsBody,
    PartStatus,
    SessionBody,
    SessionFile,
    SessionLinks,
    SignedPartBody,
    SignedPartsBody,
    dump,
)


def rfc3339(epoch: int) -> str:
    """UTC, 'Z', whole seconds (PEP 694 `expires-at`)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_body(token: TokenRecord) -> dict[str, Any]:
    """A token as the operator API shows it: never its text or hash."""
    return {
        "id": token.id,
        "username": token.username,
        "description": token.description,
        "projects": sorted(token.projects) if token.projects is not None else None,
        "created-at": rfc3339(token.created_at),
    }


def user_body(user: UserView) -> dict[str, Any]:
    return {
        "username": user.username,
        "created-at": rfc3339(user.created_at),
        "tokens": [token_body(t) for t in user.tokens],
        "roles": [{"project": project, "role": role.value} for project, role in user.roles],
    }


def upload_response(
    status: int, body: BaseModel | None, headers: Mapping[str, str] | None = None
) -> Response:
    out: dict[str, str | list[str]] = {
        "Content-Type": UPLOAD_JSON,
        "Cache-Control": "no-store",
        **(headers or {}),
    }
    return Response(
        body=json.dumps(dump(body)) if body is not None else "", status_code=status, headers=out
    )


def json_response(status: int, body: Any) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
    }
    return Response(
        body=json.dumps(body) if body is not None else "", status_code=status, headers=headers
    )


def session_body(view: SessionView, links: Links, mechanisms: Sequence[str]) -> SessionBody:
    session = view.session
    base = links.session(session)
    return SessionBody(
        links=SessionLinks(
            stage=links.stage(session),
            upload=f"{base}/files",
            session=base,
            publish=f"{base}/publish",
            extend=f"{base}/extend",
        ),
        mechanisms=list(mechanisms),
        session_token=session.token,
        expires_at=rfc3339(session.expires_at),
        status=session.status.value,
        files={
            f.filename: SessionFile(status=f.status.value, link=links.file(f), notices=f.notices)
            for f in view.files
        },
        notices=session.notices,
    )


def file_body(view: FileView, links: Links) -> FileBody:
    base = links.file(view.file)
    mechanism: dict[str, Any] = {"identifier": view.file.mechanism}
    if view.file.mechanism == HTTP_POST_BYTES:
        mechanism["file_url"] = f"{base}/content"
    else:  # the vendor mechanism: DESIGN.md "vnd-wharf-s3multipart-presigned-v1"
        plan = PartPlan.for_size(view.file.size)
        mechanism.update(part_size=plan.part_size, part_count=plan.count, parts_url=f"{base}/parts")
        if view.signed:  # signed at creation: what POST parts_url would answer
            mechanism["parts"] = dump(signed_parts_body(list(view.signed)))["parts"]
    return FileBody(
        links=FileLinks(
            file_upload_session=base, complete=f"{base}/complete", extend=f"{base}/extend"
        ),
        status=view.status.value,
        expires_at=rfc3339(view.session.expires_at),
        mechanism=mechanism,
        notices=view.file.notices,
    )


def signed_parts_body(parts: list[SignedPart]) -> SignedPartsBody:
    return SignedPartsBody(
        parts=[
            SignedPartBody(
                number=p.number, url=p.url, headers=p.headers, expires_at=rfc3339(p.expires_at)
            )
            for p in parts
        ]
    )


def parts_body(parts: list[PartState]) -> PartsBody:
    return PartsBody(
        parts=[PartStatus(number=p.number, size=p.size, uploaded=p.uploaded) for p in parts]
    )
