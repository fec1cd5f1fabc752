"""Request and response bodies of the Upload 2.0 and operator APIs, as pydantic models.

Names follow PEP 694 exactly (hyphenated keys are aliases)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ..domain.mechanisms import MAX_PARTS_PER_REQUEST

API_VERSION = "2.0"


class Schema(BaseModel):
    # Validators are built on a schema's first use, not at import: a Lambda container
    # uses few of them, and its cold start waits for the import (issue 13).
    model_config = ConfigDict(defer_build=True)


# -- requests -------------------------------------------------------------------------------


class Meta(Schema):
    # Index-specific keys (`_<index>`) may ride along (PEP 694 "Optional Index-specific
    # Metadata"); Wharf defines none and ignores them.
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    api_version: StrictStr = Field(alias="api-version")


class UploadRequest(Schema):
    model_config = ConfigDict(populate_by_name=True)
    meta: Meta


class CreateSession(UploadRequest):
    name: Annotated[StrictStr, Field(max_length=256)]
    version: Annotated[StrictStr, Field(max_length=128)]


class CreateFile(UploadRequest):
    filename: Annotated[StrictStr, Field(max_length=1024)]
    size: StrictInt
    hashes: dict[
        Annotated[StrictStr, Field(max_length=64)], Annotated[StrictStr, Field(max_length=1024)]
    ]
    mechanism: Annotated[StrictStr, Field(max_length=128)]


class Extend(UploadRequest):
    # Any non-negative amount is a valid request (PEP 694 "Publishing Session Extension").
    extend_for: Annotated[StrictInt, Field(alias="extend-for", ge=0)]


class PartRequest(Schema):
    number: StrictInt
    sha256: Annotated[StrictStr, Field(max_length=64)]


class SignParts(UploadRequest):
    parts: Annotated[list[PartRequest], Field(max_length=MAX_PARTS_PER_REQUEST)]


class CreateUser(Schema):
    username: StrictStr


class CreateToken(Schema):
    description: Annotated[StrictStr, Field(max_length=256)] = ""
    projects: list[StrictStr] | None = None


class GrantRole(Schema):
    role: StrictStr


# -- responses --------------------------------------------------------------------------


class ResponseMeta(Schema):
    api_version: str = Field(default=API_VERSION, serialization_alias="api-version")


class SessionLinks(Schema):
    stage: str
    upload: str
    session: str
    publish: str
    extend: str


class SessionFile(Schema):
    status: str
    link: str
    notices: list[str]


class SessionBody(Schema):
    meta: ResponseMeta = Field(default_factory=ResponseMeta)
    links: SessionLinks
    mechanisms: list[str]
    session_token: str = Field(serialization_alias="session-token")
    expires_at: str = Field(serialization_alias="expires-at")
    status: str
    files: dict[str, SessionFile]
    notices: list[str]


class FileLinks(Schema):
    file_upload_session: str = Field(serialization_alias="file-upload-session")
    complete: str
    extend: str


class FileBody(Schema):
    meta: ResponseMeta = Field(default_factory=ResponseMeta)
    links: FileLinks
    status: str
    expires_at: str = Field(serialization_alias="expires-at")
    mechanism: dict[str, Any]
    notices: list[str]


class PartStatus(Schema):
    number: int
    size: int
    uploaded: bool


class PartsBody(Schema):
    meta: ResponseMeta = Field(default_factory=ResponseMeta)
    parts: list[PartStatus]


class SignedPartBody(Schema):
    number: int
    url: str
    headers: dict[str, str]
    expires_at: str = Field(serialization_alias="expires-at")


class SignedPartsBody(Schema):
    meta: ResponseMeta = Field(default_factory=ResponseMeta)
    parts: list[SignedPartBody]


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json")
