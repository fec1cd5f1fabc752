"""The HTTP edge of the service: reading request bodies safely and rendering
responses and problems. Routes in app.py call these and nothing else of HTTP."""

from __future__ import annotations

import email.policy
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any, TypeVar

from chalice.app import Response
from pydantic import BaseModel, ValidationError

from ..domain.errors import (
    BadRequest,
    ContentTooLarge,
    FieldError,
    Forbidden,
    UnsupportedMediaType,
    WharfError,
    error_for_status,
)
from ..domain.mechanisms import HTTP_POST_BYTES, PartPlan
from ..domain.records import TokenRecord
from ..services.admin import UserView
from ..services.legacy import LegacyUpload
from ..services.uploads import FileView, PartState, SessionView, SignedPart
from .links import Links
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
    UploadRequest,
    dump,
)

UPLOAD_JSON = "application/vnd.pypi.upload.v2+json"
PROBLEM_JSON = "application/problem+json"
OCTET_STREAM = "application/octet-stream"
# Session API bodies are a few hundred bytes; anything near this is not a client.
MAX_JSON_BODY = 64 * 1024
# Set by CloudFront on every request it forwards to the API (infra/template.yaml).
ORIGIN_VERIFY_HEADER = "x-wharf-origin-verify"
_log = logging.getLogger("wharf")
M = TypeVar("M", bound=BaseModel)
U = TypeVar("U", bound=UploadRequest)


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _raw(body: str | bytes | None) -> bytes:
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else body


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object naming a key twice is refused: parsers differ on which value wins
    (RFC 8259 section 4), so whatever Wharf chose, another tool could read the other."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _parse_json(body: bytes) -> Any:
    if len(body) > MAX_JSON_BODY:
        raise ContentTooLarge(f"A request body is at most {MAX_JSON_BODY} bytes.")
    try:
        return json.loads(
            body.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(
            "The request body is not valid JSON.", [FieldError("body", str(exc)[:200])]
        ) from None


def _validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"])
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise BadRequest("The request body is not valid.", errors) from None


def read_upload_json(headers: Mapping[str, str], body: str | bytes | None, model: type[U]) -> U:
    """A PEP 694 request body: the v2 content type, a `meta` whose api-version major
    matches it (PEP 694 "Content Types"), then the model's fields."""
    raw = _raw(body)
    kind = media_type(headers)
    if (kind and kind != UPLOAD_JSON) or (raw and not kind):
        raise UnsupportedMediaType(
            f"Send Upload 2.0 requests as Content-Type: {UPLOAD_JSON}.",
            [FieldError("Content-Type", kind or "missing")],
        )
    data = _parse_json(raw) if raw else {}
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    meta = data.get("meta")
    if not isinstance(meta, dict) or "api-version" not in meta:
        raise BadRequest(
            "Every request carries meta.api-version (PEP 694).",
            [FieldError("meta.api-version", "missing")],
        )
    version = meta["api-version"]
    if not isinstance(version, str) or version.split(".", 1)[0] != "2":
        raise BadRequest(
            f"meta.api-version must have major version 2 to match {UPLOAD_JSON}.",
            [FieldError("meta.api-version", f"got {version!r}")],
        )
    return _validate(model, data)


def read_json(body: str | bytes | None, model: type[M]) -> M:
    """An operator API body: plain JSON."""
    raw = _raw(body)
    return _validate(model, _parse_json(raw) if raw else {})


# The legacy form's fields besides the file: the allowance CloudFront's EdgeGuard gives
# a legacy body above http-post-bytes' limit (infra/template.yaml).
LEGACY_FORM_FIELDS = 64 * 1024
_LEGACY_READ = (":action", "name", "version", "content", "sha256_digest", "md5_digest")


def read_legacy_form(
    headers: Mapping[str, str], body: str | bytes | None, max_file: int
) -> LegacyUpload:
    """A legacy upload: multipart/form-data as twine and `uv publish` send it. Its size
    is checked before the form is parsed (parsing costs several times the body)."""
    if media_type(headers) != "multipart/form-data":
        raise UnsupportedMediaType("Legacy uploads are multipart/form-data.")
    raw = _raw(body)
    if len(raw) > max_file + LEGACY_FORM_FIELDS:
        raise ContentTooLarge(
            f"A legacy upload carries files of at most {max_file} bytes (the API's request "
            "size limit). Upload larger files with `wharf upload` (pip install ./client), "
            "which sends them straight to storage with the vnd-wharf-s3multipart-presigned-v1 "
            "mechanism."
        )
    head = f"Content-Type: {headers['content-type']}\r\nMIME-Version: 1.0\r\n\r\n"
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head.encode() + raw)
    fields: dict[str, str] = {}
    content: tuple[str, bytes] | None = None
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name in _LEGACY_READ and (name in fields or (name == "content" and content)):
            # Which one would count is a guess another tool could make differently.
            raise BadRequest(
                f"The legacy upload names {name!r} twice.", [FieldError(name, "given twice")]
            )
        if name == "content" and part.get_filename():
            content = (str(part.get_filename()), payload)
        elif name not in fields:
            fields[name] = payload.decode("utf-8", "replace")
    missing = [f for f in (":action", "name", "version") if not fields.get(f)]
    if content is None:
        missing.append("content")
    if missing or content is None:
        raise BadRequest(
            "The legacy upload lacks required fields.",
            [FieldError(f, "missing") for f in missing],
        )
    return LegacyUpload(
        action=fields[":action"],
        name=fields["name"],
        version=fields["version"],
        filename=content[0],
        content=content[1],
        sha256_digest=fields.get("sha256_digest") or None,
        md5_digest=fields.get("md5_digest") or None,
    )


def require_edge(headers: Mapping[str, str], expected: str) -> None:
    """Refuse a request that did not come through the distribution (it would bypass the
    edge's caching, TLS and size rules): the execute-api endpoint is public."""
    if not expected:
        return
    given = headers.get(ORIGIN_VERIFY_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("Wharf answers only through its own domain.")


def read_bytes(headers: Mapping[str, str], body: str | bytes | None) -> bytes:
    """The http-post-bytes payload (PEP 694: Content-Type application/octet-stream)."""
    if media_type(headers) != OCTET_STREAM:
        raise UnsupportedMediaType(f"Send the file's bytes as Content-Type: {OCTET_STREAM}.")
    return _raw(body)


# -- responses ------------------------------------------------------------------------------


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


def problem_response(error: WharfError) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": PROBLEM_JSON,
        "Cache-Control": "no-store",
        **error.headers,
    }
    return Response(body=json.dumps(error.problem()), status_code=error.status, headers=headers)


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
    error = error_for_status(response.status_code, detail)
    error.headers.update(
        {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("allow", "www-authenticate") and isinstance(v, str)
        }
    )
    return problem_response(error)


def unexpected(exc: BaseException) -> Response:
    _log.exception("unhandled error", exc_info=exc)
    return problem_response(WharfError("The server failed unexpectedly; retry later."))


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
