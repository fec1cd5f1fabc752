"""The legacy upload API (`/legacy/`, what twine and `uv publish` speak): one request
uploads one file and publishes it at once, under the same rules as Upload 2.0 (PEP 694
"Atomic Publication and Conflicts" binds both paths to one filename namespace).

It is a publishing session of one file, published within the request: usually stored
already published with its file, in one write (the bytes in hand are verified first);
otherwise created, completed and published step by step, any failure canceling it. Either
way nothing is left behind."""

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
from .publishing import Publisher, PublishService
from .sessions import SessionService
from .verification import Verifier

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
        publisher: Publisher,
        verifier: Verifier,
    ) -> None:
        self._sessions = sessions
        self._files = files
        self._completion = completion
        self._publishing = publishing
        self._publisher = publisher
        self._verifier = verifier

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
        if not self._upload_at_once(principal, form, hashes):
            self._upload_in_steps(principal, form, hashes)

    def _upload_at_once(
        self, principal: Principal, form: LegacyUpload, hashes: dict[str, str]
    ) -> bool:
        """The common case: the file stored and verified from the bytes in hand, then
        its session and the publish in one write (the token, the standing, that write:
        three DynamoDB round trips). False, leaving nothing behind, when the standing
        or that write's conditions say otherwise (a live Upload 2.0 session of the
        release, the name taken, a reservation): then the steps say why."""
        session = self._sessions.legacy_draft(principal, form.name, form.version)
        if session is None:
            return False
        file = self._files.held_file(session, form.filename, form.content, hashes)
        try:
            published = self._publisher.publish_whole(session, file)
        except StoreBusy:
            # Lost every race: nothing was written. (After any other failure the write
            # may have gone through, its answer lost: the bytes stay.)
            self._verifier.discard(file)
            raise
        if not published:
            self._verifier.discard(file)
        return published

    def _upload_in_steps(
        self, principal: Principal, form: LegacyUpload, hashes: dict[str, str]
    ) -> None:
        """A session created, a file created, uploaded and completed, and a publish,
        each step as its own request would take it: what refuses the upload says why."""
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
            # Under the lock: this request's records of the session are older than
            # the file it added (SessionRecord.revision), so a publish at once would fail.
            self._publishing.publish_locked(completed.session)
        except BaseException:
            with contextlib.suppress(WharfError, StoreBusy):
                self._sessions.cancel_session(principal, session.id)
            raise
