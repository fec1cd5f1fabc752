"""Reading requests safely: content types, JSON bodies (with their size and shape
checked before any model sees them), the legacy multipart form, the edge's secret."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..domain.errors import FieldError, Invalid, NotPermitted
from ..services.legacy import LegacyUpload
from .forms import FormInvalid, FormPart, form_parts
from .problems import BodyTooLarge, UnsupportedMediaType
from .schemas import UploadRequest

UPLOAD_JSON = "application/vnd.pypi.upload.v2+json"
OCTET_STREAM = "application/octet-stream"
# Session API bodies are a few hundred bytes; anything near this is not a client.
MAX_JSON_BODY = 64 * 1024
# Set by CloudFront on every request it forwards to the API (infra/template.yaml).
ORIGIN_VERIFY_HEADER = "x-wharf-origin-verify"
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
        raise BodyTooLarge(f"A request body is at most {MAX_JSON_BODY} bytes.")
    try:
        return json.loads(
            body.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Invalid(
            "The request body is not valid JSON.", [FieldError("body", str(exc)[:200])]
        ) from None


def _validate(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise Invalid("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"])
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise Invalid("The request body is not valid.", errors) from None


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
        raise Invalid("The request body must be a JSON object.")
    meta = data.get("meta")
    if not isinstance(meta, dict) or "api-version" not in meta:
        raise Invalid(
            "Every request carries meta.api-version (PEP 694).",
            [FieldError("meta.api-version", "missing")],
        )
    version = meta["api-version"]
    if not isinstance(version, str) or version.split(".", 1)[0] != "2":
        raise Invalid(
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
        raise BodyTooLarge(
            f"A legacy upload carries files of at most {max_file} bytes (the API's request "
            "size limit). Upload larger files with `wharf upload` (pip install ./client), "
            "which sends them straight to storage with the vnd-wharf-s3multipart-presigned-v1 "
            "mechanism."
        )
    try:
        parts = form_parts(headers["content-type"], raw)
    except FormInvalid:
        parts = []  # what it lacks is said below
    fields, content = _legacy_fields(parts)
    missing = [f for f in (":action", "name", "version") if not fields.get(f)]
    if content is None:
        missing.append("content")
    if missing or content is None:
        raise Invalid(
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


def _legacy_fields(parts: list[FormPart]) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """The form's text fields by name, and its file (`content`: filename and bytes)."""
    fields: dict[str, str] = {}
    content: tuple[str, bytes] | None = None
    for part in parts:
        name = part.name
        if name is None:
            continue
        if name in _LEGACY_READ and (name in fields or (name == "content" and content)):
            # Which one would count is a guess another tool could make differently.
            raise Invalid(
                f"The legacy upload names {name!r} twice.", [FieldError(name, "given twice")]
            )
        if name == "content" and part.filename:
            content = (part.filename, bytes(part.data))
        elif name not in fields:
            fields[name] = part.data.decode("utf-8", "replace")
    return fields, content


def require_edge(headers: Mapping[str, str], expected: str) -> None:
    """Refuse a request that did not come through the distribution (it would bypass the
    edge's caching, TLS and size rules): the execute-api endpoint is public."""
    if not expected:
        return
    given = headers.get(ORIGIN_VERIFY_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotPermitted("Wharf answers only through its own domain.")


def read_bytes(headers: Mapping[str, str], body: str | bytes | None) -> bytes:
    """The http-post-bytes payload (PEP 694: Content-Type application/octet-stream)."""
    if media_type(headers) != OCTET_STREAM:
        raise UnsupportedMediaType(f"Send the file's bytes as Content-Type: {OCTET_STREAM}.")
    return _raw(body)
