"""The legacy upload API (`/legacy/`, what twine and `uv publish` speak): one request
uploads one file and publishes it at once, under the same rules as Upload 2.0 (PEP 694
"Atomic Publication and Conflicts" binds both paths to one filename namespace).

It is a publishing session of one file, created, completed and published within the
request; any failure cancels that session, so nothing is left behind."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from dataclasses import dataclass

from ..domain.errors import Conflict, FieldError, Invalid, WharfError
from ..domain.mechanisms import HTTP_POST_BYTES
from ..domain.ports import StoreBusy
from ..domain.records import Principal
from ..domain.states import FileStatus
from .completion import Completion
from .files import FileService
from .publishing import PublishService
from .sessions import SessionService

FILE_UPLOAD = "file_upload"


@dataclass(frozen=True)
class LegacyUpload:
    action: str
    name: str
    version: str
    filename: str
    content: bytes
    sha256_digest: str | None = None
    md5_digest: str | None = None


class LegacyService:
    def __init__(
        self,
        sessions: SessionService,
        files: FileService,
        completion: Completion,
        publishing: PublishService,
    ) -> None:
        self._sessions = sessions
        self._files = files
        self._completion = completion
        self._publishing = publishing

    def upload(self, principal: Principal, form: LegacyUpload) -> None:
        if form.action != FILE_UPLOAD:
            raise Invalid(
                f"Unsupported :action {form.action!r}; only {FILE_UPLOAD!r} is.",
                [FieldError(":action", "must be file_upload")],
            )
        hashes = {"sha256": hashlib.sha256(form.content).hexdigest()}
        for field, given, actual in (
            ("sha256_digest", form.sha256_digest, hashes["sha256"]),
            ("md5_digest", form.md5_digest, hashlib.md5(form.content).hexdigest()),
        ):
            if given and not hmac.compare_digest(given.lower(), actual):
                raise Invalid(
                    f"{field} does not match the uploaded file.", [FieldError(field, "mismatch")]
                )
        session = self._sessions.create_session(
            principal, form.name, form.version, legacy=True
        ).session
        try:
            # Authorized once, by the session's creation: the steps act on what this
            # request created (each was a request of its own that admitted it again).
            created = self._files.create_in(
                principal,
                session,
                filename=form.filename,
                size=len(form.content),
                hashes=hashes,
                mechanism=HTTP_POST_BYTES,
            )
            completed = self._completion.complete(
                principal, self._files.upload_to(created, form.content)
            )
            if completed.status is not FileStatus.COMPLETED:
                raise Conflict(
                    "This file is too large to verify within a legacy upload; use the "
                    "Upload 2.0 API."
                )
            self._publishing.publish_admitted(completed.session)
        except BaseException:
            with contextlib.suppress(WharfError, StoreBusy):
                self._sessions.cancel_session(principal, session.id)
            raise
