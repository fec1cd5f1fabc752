"""Loading a session or a file for a request: unknown ids and sessions past their
retention are 404, the principal must be allowed to upload to the project right now (PEP
694 "Authentication and Authorization": every request is authorized again), and a session
whose expires-at has passed is expired on the spot, whether or not the sweep got to it."""

from __future__ import annotations

from ..config import Settings
from ..domain.errors import NotFound
from ..domain.ports import Clock, SessionChanged, SessionStore
from ..domain.records import Principal, SessionRecord
from ..domain.states import SessionEvent, SessionStatus
from ..domain.tokens import is_random_id
from .access import Access
from .verification import Verifier
from .views import FileView, SessionView, live_files, session_state_conflict


class Admission:
    def __init__(
        self,
        store: SessionStore,
        access: Access,
        verifier: Verifier,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._access = access
        self._verifier = verifier
        self._clock = clock
        self._retention = settings.session_retention

    def _visible(self, session: SessionRecord | None) -> SessionRecord | None:
        """None once a terminal session's retention period is over (PEP 694 "Session
        Status Retention"): DynamoDB's TTL deletes the item later, moto never."""
        if session is None:
            return None
        if session.ended_at is not None and session.ended_at + self._retention <= self._clock.now():
            return None
        return session

    def expire_if_due(self, session: SessionRecord) -> SessionRecord:
        """Cancel the session if its expires-at has passed: expired sessions accept no
        changes and keep no staged bytes."""
        if not session.expired(self._clock.now()):
            return session
        if SessionEvent.PROCESSING_FAILED.allowed_from(session.status):
            # Its job was lost (a dead-letter queue, say): nothing else would resolve it,
            # and a processing session can be neither canceled nor expired.
            session = self._move_noting(
                session, SessionEvent.PROCESSING_FAILED, "The deferred publish did not finish."
            )
        session = self._move_noting(
            session, SessionEvent.EXPIRE, "The session expired and was canceled."
        )
        if session.status is SessionStatus.CANCELED:
            self.purge(session.id)
        return session

    def _move_noting(
        self, session: SessionRecord, event: SessionEvent, notice: str
    ) -> SessionRecord:
        """Apply `event` and add `notice`; when a concurrent request moved the session
        first, the state it is in now."""
        try:
            return self._store.move_session(
                session, event, self._clock.now(), notices=[*session.notices, notice]
            )
        except SessionChanged as exc:
            return exc.current or session

    def purge(self, session_id: str) -> None:
        """Delete every staged byte of a canceled session (PEP 694 SHOULD purge)."""
        _, files = self._store.get_session_and_files(session_id)
        for file in files:
            self._verifier.discard(file)

    def admit(self, principal: Principal, session: SessionRecord | None) -> SessionRecord:
        """The session as this request may see it: 404 when unknown or past retention,
        403 unless the principal may upload to its project right now."""
        session = self._visible(session)
        if session is None:
            raise NotFound("No such publishing session.")
        self._access.require_upload(principal, session.project, session)
        return self.expire_if_due(session)

    def session(
        self,
        principal: Principal,
        session_id: str,
        *,
        new_filename: str | None = None,
        with_files: bool = False,
    ) -> SessionRecord:
        """The session, if the principal may act on it. What the request reads next is
        read along with the principal's standing, in one round trip: with `new_filename`
        (a file is being created) what holds that name in the release, `with_files` the
        session's files (SessionStore.files_of)."""
        known = is_random_id(session_id)  # anything else is not looked up: a 404
        session = self._store.get_session(session_id) if known else None
        if session is None or (new_filename is None and not with_files):
            return self.admit(principal, session)
        with (
            self._store.files_read_along(session)
            if new_filename is None
            else self._store.filename_read_along(session, new_filename)
        ):
            return self.admit(principal, session)

    def session_with_files(self, principal: Principal, session_id: str) -> SessionView:
        """The session with its live files, for the responses that list them."""
        session = self.session(principal, session_id, with_files=True)
        return SessionView(session, live_files(session, self._store.files_of(session)))

    def file(self, principal: Principal, session_id: str, file_id: str) -> FileView:
        known = is_random_id(session_id) and is_random_id(file_id)
        session, file = (
            self._store.get_session_and_file(session_id, file_id) if known else (None, None)
        )
        if session is None or file is None:
            raise NotFound("No such file upload session.")
        return FileView(self.admit(principal, session), file)

    def editable_file(
        self, principal: Principal, session_id: str, file_id: str, action: str
    ) -> FileView:
        """The file, if its session's state accepts `action` (open or error; a lock or
        the expiry is the store's write condition to refuse)."""
        view = self.file(principal, session_id, file_id)
        if not view.session.status.editable:
            raise session_state_conflict(view.session, action)
        return view
