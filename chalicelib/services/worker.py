"""The deferred-processing worker: the handler the SQS-subscribed Lambda calls in AWS and
the local stack's worker thread calls locally.

Jobs are delivered at least once; each one checks the state it is meant to move from and
does nothing when it finds that state gone, so a second delivery changes nothing."""

from __future__ import annotations

import contextlib
import logging

from ..domain.errors import FilesRefused
from ..domain.ports import Clock, FileChanged, ProjectTaken, SessionChanged, SessionStore
from ..domain.records import FileRecord, SessionRecord, Verified
from ..domain.states import FileEvent, SessionEvent, SessionStatus
from .access import Access
from .index import IndexService
from .jobs import PUBLISH, VERIFY_FILE
from .publishing import Publisher, unfinished
from .verification import Unverified, Verifier, signer_revoked
from .views import live_files

_log = logging.getLogger("wharf.worker")
GAVE_UP = (
    "Processing failed repeatedly on the server's side (the operator has been alerted); "
    "try again: delete the file and upload it again, or publish again."
)


class Worker:
    def __init__(
        self,
        store: SessionStore,
        verifier: Verifier,
        publisher: Publisher,
        clock: Clock,
        access: Access,
        index: IndexService,
    ) -> None:
        self._access = access
        self._index = index
        self._store = store
        self._verifier = verifier
        self._publisher = publisher
        self._clock = clock

    def handle(self, job: dict[str, str], *, last_attempt: bool = False) -> None:
        """Run a job. A failure propagates, so SQS delivers the job again; on its last
        delivery, what the job would have resolved is first settled in error with a
        notice (the job still goes to the dead-letter queue, for the operator's alarm):
        a file or a release is never left `processing` by a job nobody will run."""
        try:
            self._run(job)
        except Exception:
            if last_attempt:
                _log.exception("job %r failed for the last time", job)
                self._give_up(job)
            raise

    def _give_up(self, job: dict[str, str]) -> None:
        if job.get("job") == VERIFY_FILE:
            file = self._store.get_file(job["session"], job["file"])
            if file is not None and FileEvent.PROCESSING_FAILED.allowed_from(file.status):
                self._settle(file, FileEvent.PROCESSING_FAILED, notices=[GAVE_UP])
        elif job.get("job") == PUBLISH:
            session = self._store.get_session(job["session"])
            if session is not None and SessionEvent.PROCESSING_FAILED.allowed_from(session.status):
                self._fail_publish(session, GAVE_UP)

    def _run(self, job: dict[str, str]) -> None:
        kind = job.get("job")
        if kind == VERIFY_FILE:
            self.verify_file(job["session"], job["file"])
        elif kind == PUBLISH:
            self.publish(job["session"])
        else:
            _log.error("dropping unknown job %r", job)

    def verify_file(self, session_id: str, file_id: str) -> None:
        session, file = self._store.get_session_and_file(session_id, file_id)
        if (
            session is None
            or file is None
            or not FileEvent.PROCESSING_SUCCEEDED.allowed_from(file.status)
        ):
            return  # done already, or gone
        if session.status is SessionStatus.CANCELED:
            self._verifier.discard(file)  # the session's cancel discards the outcome
            return
        try:
            if self._access.revoked_signers(file, session):
                raise signer_revoked()  # a URL may have been used since `complete`
            verified = self._verifier.verify(session, file)
        except Unverified as exc:
            self._settle(file, FileEvent.PROCESSING_FAILED, notices=exc.notices)
            return
        self._settle(file, FileEvent.PROCESSING_SUCCEEDED, verified=verified)

    def _settle(
        self,
        file: FileRecord,
        event: FileEvent,
        *,
        notices: list[str] | None = None,
        verified: Verified | None = None,
    ) -> None:
        # No re-read: the move's condition names the state it leaves from.
        try:
            self._store.move_file(
                file, event, self._clock.now(), notices=notices, verified=verified
            )
        except (SessionChanged, FileChanged):
            # Canceled meanwhile, or settled by another delivery: discard if canceled.
            session = self._store.get_session(file.session_id)
            if session is None or session.status is SessionStatus.CANCELED:
                self._verifier.discard(file)

    def publish(self, session_id: str) -> None:
        session, files = self._store.get_session_and_files(session_id)
        if session is None:
            return
        live = live_files(session, files)
        if session.status is SessionStatus.PUBLISHED:
            # A redelivery after the commit.
            self._publisher.expose(session.project, [f.key for f in live])
            return
        if not SessionEvent.PROCESSING_SUCCEEDED.allowed_from(session.status):
            return
        refused = unfinished(live)
        if refused is None:
            try:
                self._publisher.publish(session, live, SessionEvent.PROCESSING_SUCCEEDED)
                self._list(session.project)
                return
            except FilesRefused as exc:  # names taken by another session meanwhile
                refused, reason = exc, exc.detail
            except ProjectTaken:
                reason = f"The name {session.project!r} is no longer reserved for this session."
            except SessionChanged:
                return  # settled by another delivery
        else:
            reason = "Every file must be completed before the session can be published."
        by_file = refused.reasons if refused is not None else {}
        for file in live:
            if file.filename in by_file:
                self._store.add_file_notices(
                    file, [f"Publishing failed: {file.filename} {by_file[file.filename]}."]
                )
        detail = "; ".join(f"{name}: {why}" for name, why in sorted(by_file.items()))
        self._fail_publish(session, f"Publishing failed: {reason} {detail}".strip())

    def _list(self, project: str) -> None:
        """After the commit, list the project for the readers to come, so that a release
        too large to publish within the request (thousands of files) is not read from
        the index by the first of them. Published all the same if it fails (logged): a
        reader then reads the index."""
        try:
            self._index.list_project(project)
        except Exception:
            _log.exception("listing project %s after its publish failed", project)

    def _fail_publish(self, session: SessionRecord, notice: str) -> None:
        """The deferred publish ends in error: the session is editable again."""
        with contextlib.suppress(SessionChanged):  # settled by another delivery
            self._store.move_session(
                session,
                SessionEvent.PROCESSING_FAILED,
                self._clock.now(),
                notices=[*session.notices, notice],
            )
