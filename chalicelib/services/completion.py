"""Completing a file upload session (PEP 694 "Complete a File Upload Session"): its bytes
are verified within the request (201 `completed`), or, above WHARF_INLINE_MAX bytes, by
the worker (202 `processing`); any failure leaves the file in `error` for good."""

from __future__ import annotations

from ..config import Settings
from ..domain.errors import Conflict, FieldError, Invalid
from ..domain.ports import (
    Clock,
    FileChanged,
    JobQueue,
    SessionChanged,
    SessionStore,
)
from ..domain.records import FileRecord, Principal, Verified
from ..domain.states import FileEvent, FileStatus, SessionStatus
from .access import Access
from .admission import Admission
from .jobs import VERIFY_FILE, hand_over
from .verification import Unverified, Verifier, signer_revoked
from .views import FileView, changed


class Completion:
    def __init__(
        self,
        store: SessionStore,
        admission: Admission,
        access: Access,
        verifier: Verifier,
        queue: JobQueue,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._admission = admission
        self._access = access
        self._verifier = verifier
        self._queue = queue
        self._clock = clock
        self._inline_max = settings.inline_max

    def complete_file(self, principal: Principal, session_id: str, file_id: str) -> FileView:
        view = self._admission.editable_file(principal, session_id, file_id, "complete a file")
        return self.complete(principal, view)

    def complete(self, principal: Principal, view: FileView) -> FileView:
        """complete_file for a file this request has admitted already."""
        file = view.file
        if not FileEvent.COMPLETE.allowed_from(file.status):
            raise Conflict(
                f"The file is {view.status.value}; only a pending file can be completed."
            )
        self._require_signers_allowed(view, principal)
        if file.size > self._inline_max:
            processing = self._move(file, FileEvent.DEFER_COMPLETE)
            job = {"job": VERIFY_FILE, "session": file.session_id, "file": file.id}
            hand_over(self._queue, job, lambda: self._move(processing, FileEvent.QUEUE_FAILED))
            return FileView(view.session, processing)
        try:
            verified = self._verifier.verify(view.session, file)
        except Unverified as exc:
            raise Invalid(
                "The uploaded file was not accepted; the file is now in error: delete it "
                "and upload it again.",
                self.fail(file, exc),
            ) from None
        return FileView(view.session, self._complete(file, verified))

    def _complete(self, file: FileRecord, verified: Verified) -> FileRecord:
        try:
            return self._store.move_file(
                file, FileEvent.COMPLETE, self._clock.now(), verified=verified
            )
        except (SessionChanged, FileChanged) as exc:
            # A cancel won the race: what verification stored (the metadata) must not
            # outlive the file. (Another completion winning keeps it: same key, same bytes.)
            if exc.current is None or exc.current.status in (
                SessionStatus.CANCELED,
                FileStatus.CANCELED,
            ):
                self._verifier.discard(file)
            raise changed(exc) from None

    def _require_signers_allowed(self, view: FileView, principal: Principal) -> None:
        """PEP 694 SHOULD re-authorize every step: part URLs signed for a token revoked
        since must not complete a file (Access.revoked_signers). Checked again by the
        worker for a deferred file, right before it assembles the parts."""
        if self._access.revoked_signers(view.file, view.session, trusted=principal.token_id):
            raise Invalid(
                "The file was not accepted: some of its part URLs belong to a revoked token.",
                self.fail(view.file, signer_revoked()),
            )

    def fail(self, file: FileRecord, refusal: Unverified) -> list[FieldError]:
        """Any completion failure is final for the file (PEP 694 "File Upload Session
        States"): it moves to error with the refusal's notices, and the client deletes it
        and starts a new file upload session. The problems, for the answer."""
        self._move(file, FileEvent.COMPLETE_FAILED, notices=refusal.notices)
        return refusal.problems

    def _move(
        self, file: FileRecord, event: FileEvent, *, notices: list[str] | None = None
    ) -> FileRecord:
        try:
            return self._store.move_file(file, event, self._clock.now(), notices=notices)
        except (SessionChanged, FileChanged) as exc:
            raise changed(exc) from None
