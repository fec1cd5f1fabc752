"""Publishing sessions (PEP 694 "Publishing Session"): creating one, its status, canceling
and extending it. Every method authorizes the principal against the project first, then
lets the store make the state change with a conditional write."""

from __future__ import annotations

from ..config import Settings
from ..domain.errors import Conflict, FieldError, Invalid, SessionInProgress
from ..domain.names import InvalidInput, ReleaseVersion, normalize_name, parse_version
from ..domain.ports import Clock, LiveSessionExists, ProjectTaken, SessionChanged, SessionStore
from ..domain.records import Principal, ProjectRecord, ProjectStatus, SessionRecord
from ..domain.states import SessionEvent, SessionStatus
from ..domain.tokens import new_session_token, session_id_for
from .access import Access, may_not_upload
from .admission import Admission
from .views import FileView, SessionView, session_state_conflict

_CREATE_ATTEMPTS = 3
# Live first-release sessions of one new name (other versions): bounds the reservation
# item and what a refused creation reads.
MAX_FIRST_RELEASE_SESSIONS = 100


def _parse_release(name: str, version: str) -> tuple[str, ReleaseVersion]:
    errors = []
    try:
        project = normalize_name(name)
    except InvalidInput as exc:
        errors.append(FieldError("name", str(exc)))
    try:
        release = parse_version(version)
    except InvalidInput as exc:
        errors.append(FieldError("version", str(exc)))
    if errors:
        raise Invalid("The session's name or version is not valid.", errors)
    return project, release


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        admission: Admission,
        access: Access,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._admission = admission
        self._access = access
        self._clock = clock
        self._settings = settings

    def create_session(
        self, principal: Principal, name: str, version: str, *, legacy: bool = False
    ) -> SessionView:
        project, release = _parse_release(name, version)
        for _attempt in range(_CREATE_ATTEMPTS):
            record, allowed = self._access.standing(principal, project)
            if record is not None and record.status is ProjectStatus.RESERVED:
                if record.reserved_for != principal.username:
                    self._refuse_reserved(principal, record, allowed)
                    continue
                if len(record.holders) >= MAX_FIRST_RELEASE_SESSIONS:
                    raise Conflict(
                        f"At most {MAX_FIRST_RELEASE_SESSIONS} versions of a new name may be "
                        "in progress at once; publish or cancel one of them first."
                    )
            if not allowed:
                raise may_not_upload(project)
            # Under a reservation (its own, or its creator's for another version) a
            # session is a first release: it registers the name if it publishes first.
            first_release = record is None or record.status is ProjectStatus.RESERVED
            session = self._new_session(principal, project, release, first_release, legacy)
            try:
                self._store.create_session(session, reserve_project=first_release)
            except LiveSessionExists as exc:
                self._refuse_live(principal, exc.session_id)
                continue
            except ProjectTaken:
                continue
            return SessionView(session, [])
        raise Conflict("The release changed while the session was being created; retry.")

    def legacy_draft(self, principal: Principal, name: str, version: str) -> SessionRecord | None:
        """A legacy upload's session, not stored (PublishStore.publish_whole stores it
        published), when the principal's standing lets it publish at once: allowed, and
        the name registered, free, or reserved by the principal. None otherwise: then
        create_session says what stands in the way."""
        project, release = _parse_release(name, version)
        record, allowed = self._access.standing(principal, project)
        if not allowed:
            return None
        first_release = record is None or record.status is ProjectStatus.RESERVED
        if record is not None and first_release and record.reserved_for != principal.username:
            return None
        return self._new_session(principal, project, release, first_release, legacy=True)

    def _new_session(
        self,
        principal: Principal,
        project: str,
        release: ReleaseVersion,
        first_release: bool,
        legacy: bool,
    ) -> SessionRecord:
        now = self._clock.now()
        token = new_session_token()
        lifetime = min(self._settings.session_lifetime, self._settings.session_max_lifetime)
        return SessionRecord(
            id=session_id_for(token),
            token=token,
            project=project,
            version=release.text,
            version_key=release.key,
            status=SessionStatus.OPEN,
            created_at=now,
            expires_at=now + lifetime,
            created_by=principal.username,
            first_release=first_release,
            legacy=legacy,
        )

    def _refuse_live(self, principal: Principal, session_id: str) -> None:
        """409 with the live session's Location (PEP 694 "Multiple Session Creation
        Requests"): the session of this same release. Returns only when that session
        turned out to be expired, and has been canceled, so the caller retries."""
        live = self._store.get_session(session_id)
        if live is None:
            return
        self._access.require_upload(principal, live.project, live)
        live = self._admission.expire_if_due(live)
        if live.status.terminal:
            return
        raise SessionInProgress(
            "A publishing session for this release is already in progress; "
            "use it, or cancel it to start over.",
            live,
        )

    def _refuse_reserved(self, principal: Principal, record: ProjectRecord, allowed: bool) -> None:
        """Someone else's first release of the name is in progress: 403 (409 for the
        operator, without a Location: those sessions are other releases). Returns only
        when every holder had expired (and has now been canceled, freeing the name), so
        the caller retries."""
        holders = (self._store.get_session(h) for h in sorted(record.holders))
        if all(h is None or self._admission.expire_if_due(h).status.terminal for h in holders):
            return
        if not allowed:
            raise may_not_upload(record.name)
        raise Conflict(
            f"The name {record.name!r} is reserved by another publisher's first release "
            "in progress."
        )

    def session_status(self, principal: Principal, session_id: str) -> SessionView:
        return self._admission.session_with_files(principal, session_id)

    def cancel_session(self, principal: Principal, session_id: str) -> None:
        session = self._admission.session(principal, session_id)
        try:
            self._store.move_session(session, SessionEvent.CANCEL, self._clock.now())
        except SessionChanged as exc:
            raise session_state_conflict(exc.current, "cancel") from None
        self._admission.purge(session.id)

    def extend_session(self, principal: Principal, session_id: str, extend_for: int) -> SessionView:
        view = self._admission.session_with_files(principal, session_id)
        return SessionView(self._extend(view.session, extend_for), view.files)

    def extend_file(
        self, principal: Principal, session_id: str, file_id: str, extend_for: int
    ) -> FileView:
        """A file upload session lives as long as its publishing session, so extending
        one extends the other."""
        view = self._admission.file(principal, session_id, file_id)
        return FileView(self._extend(view.session, extend_for), view.file)

    def _extend(self, session: SessionRecord, extend_for: int) -> SessionRecord:
        """Later by up to `extend_for`, capped by the maximum lifetime, never earlier. A
        refused amount still succeeds (PEP 694 "Publishing Session Extension")."""
        if session.status.terminal:
            raise session_state_conflict(session, "extend")
        ceiling = session.created_at + self._settings.session_max_lifetime
        target = min(session.expires_at + extend_for, ceiling)
        if target <= session.expires_at:
            return session
        try:
            return self._store.extend_session(session, target, self._clock.now())
        except SessionChanged as exc:
            current = exc.current
            if current is not None and not current.status.terminal and current.expires_at >= target:
                return current  # a concurrent extension went at least as far
            raise session_state_conflict(current, "extend") from None
