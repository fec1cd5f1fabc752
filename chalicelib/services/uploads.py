"""PEP 694 publishing sessions and file upload sessions: the domain rules.

Routes call one method each; every method authorizes the principal against the project
first (PEP 694 "Authentication and Authorization"), then lets the store make the state
change with a conditional write.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from ..adapters.dynamodb.store import DynamoStore
from ..config import Settings
from ..domain.errors import (
    Conflict,
    FieldError,
    FileInProgress,
    Invalid,
    NotFound,
    SessionInProgress,
    TooLarge,
    Unsupported,
)
from ..domain.hashes import InvalidHashes, normalize_hashes
from ..domain.mechanisms import (
    HTTP_POST_BYTES,
    MAX_PARTS_PER_REQUEST,
    PART_URL_SECONDS,
    PartPlan,
    multipart_identifier,
)
from ..domain.names import InvalidInput, check_distribution_filename, normalize_name, parse_version
from ..domain.ports import (
    BlobStore,
    Clock,
    FileChanged,
    FilenameInUse,
    JobQueue,
    LiveSessionExists,
    ProjectTaken,
    SessionChanged,
    UploadGone,
)
from ..domain.records import (
    FileRecord,
    Principal,
    ProjectRecord,
    ProjectStatus,
    SessionRecord,
    Verified,
)
from ..domain.states import (
    REPLACEABLE_FILE_STATES,
    FileEvent,
    FileStatus,
    SessionEvent,
    SessionStatus,
)
from ..domain.tokens import is_random_id, new_session_token, random_id, session_id_for
from .access import Access
from .publishing import Publisher, unfinished
from .verification import Unverified, Verifier, signer_revoked, upload_gone
from .worker import PUBLISH, VERIFY_FILE

# A synchronous publish holds its session still for at most this long, so a publisher
# that dies mid-publish cannot wedge the session (over four times the API Lambda's 28 s
# timeout, itself just under API Gateway's 29 s: .chalice/config.json).
PUBLISH_LOCK_SECONDS = 120
FILES_PREFIX = "files/"
_CREATE_ATTEMPTS = 3
# Live first-release sessions of one new name (other versions): bounds the reservation
# item and what a refused creation reads.
MAX_FIRST_RELEASE_SESSIONS = 100


@dataclass(frozen=True)
class SessionView:
    session: SessionRecord
    files: list[FileRecord]  # the live files: canceled ones are not part of the session


@dataclass(frozen=True)
class FileView:
    session: SessionRecord
    file: FileRecord
    # Part URLs signed with the file's creation (a whole file whose SHA-256 was declared):
    # the client sends its bytes without asking for them.
    signed: tuple[SignedPart, ...] = ()

    @property
    def status(self) -> FileStatus:
        # "All of the session's file upload sessions are considered canceled" once the
        # session is canceled (PEP 694 "Publishing Session Cancellation").
        if self.session.status is SessionStatus.CANCELED:
            return FileStatus.CANCELED
        return self.file.status


@dataclass(frozen=True)
class PartState:
    number: int
    size: int
    uploaded: bool


@dataclass(frozen=True)
class SignedPart:
    number: int
    url: str
    headers: dict[str, str]
    expires_at: int


def _live(files: list[FileRecord], session: SessionRecord) -> list[FileRecord]:
    if session.status is SessionStatus.CANCELED:
        return []
    return sorted(
        (f for f in files if f.status is not FileStatus.CANCELED), key=lambda f: f.filename
    )


def _is_sha256_b64(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (ValueError, binascii.Error):
        return False


def _file_changed(exc: FileChanged) -> Conflict:
    state = exc.current.status.value if exc.current else "gone"
    return Conflict(f"The file changed meanwhile; it is {state}.")


def _changed(exc: SessionChanged | FileChanged) -> Conflict:
    if isinstance(exc, SessionChanged):
        return _session_state_conflict(exc.current, "change a file")
    return _file_changed(exc)


def _session_state_conflict(session: SessionRecord | None, action: str) -> Conflict:
    if session is None:
        return Conflict(f"Cannot {action}: the session no longer exists.")
    if session.status is SessionStatus.PROCESSING or (
        session.status.editable and session.publish_lock_until is not None
    ):
        return Conflict(f"Cannot {action}: the session is being published.")
    return Conflict(f"Cannot {action}: the session is {session.status.value}.")


class UploadService:
    def __init__(
        self,
        store: DynamoStore,
        blobs: BlobStore,
        clock: Clock,
        settings: Settings,
        access: Access,
        queue: JobQueue,
        verifier: Verifier,
        publisher: Publisher,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._clock = clock
        self._settings = settings
        self._access = access
        self._queue = queue
        self._verifier = verifier
        self._publisher = publisher
        self.multipart = multipart_identifier(settings.operator)
        # Server-preferred order (PEP 694 "mechanisms"); by default bytes straight to S3
        # first (Settings.offered_mechanisms, WHARF_MECHANISMS).
        self.mechanisms = settings.offered_mechanisms

    # -- loading, with authorization and lazy expiry -------------------------------------

    def _visible(self, session: SessionRecord | None, now: int) -> SessionRecord | None:
        """None once a terminal session's retention period is over (PEP 694 "Session
        Status Retention"): DynamoDB's TTL deletes the item later, moto never."""
        if session is None:
            return None
        if (
            session.ended_at is not None
            and session.ended_at + self._settings.session_retention <= now
        ):
            return None
        return session

    def _expire_if_due(self, session: SessionRecord) -> SessionRecord:
        """Cancel the session if its expires-at has passed (whether or not the sweep got
        to it yet): expired sessions accept no changes and keep no staged bytes."""
        now = self._clock.now()
        if not session.expired(now):
            return session
        if session.status is SessionStatus.PROCESSING:
            # Its job was lost (a dead-letter queue, say): nothing else would resolve it,
            # and a processing session can be neither canceled nor expired.
            session = self._move_noting(
                session, SessionEvent.PROCESSING_FAILED, "The deferred publish did not finish."
            )
        session = self._move_noting(
            session, SessionEvent.EXPIRE, "The session expired and was canceled."
        )
        if session.status is SessionStatus.CANCELED:
            self._purge(session.id)
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

    def _purge(self, session_id: str) -> None:
        """Delete every staged byte of a canceled session (PEP 694 SHOULD purge)."""
        _, files = self._store.get_session_and_files(session_id)
        for file in files:
            self._verifier.discard(file)

    def _admit(self, principal: Principal, session: SessionRecord | None) -> SessionRecord:
        """The session as this request may see it: 404 when unknown or past retention,
        403 unless the principal may upload to its project right now."""
        session = self._visible(session, self._clock.now())
        if session is None:
            raise NotFound("No such publishing session.")
        self._access.require_upload(principal, session.project, session)
        return self._expire_if_due(session)

    def _session(self, principal: Principal, session_id: str) -> SessionRecord:
        known = is_random_id(session_id)  # anything else is not looked up: a 404
        return self._admit(principal, self._store.get_session(session_id) if known else None)

    def _load(self, principal: Principal, session_id: str) -> SessionView:
        """The session with its files, for the responses that list them."""
        session, files = (
            self._store.get_session_and_files(session_id)
            if is_random_id(session_id)
            else (None, [])
        )
        admitted = self._admit(principal, session)
        return SessionView(admitted, _live(files, admitted))

    def _load_file(self, principal: Principal, session_id: str, file_id: str) -> FileView:
        known = is_random_id(session_id) and is_random_id(file_id)
        session, file = (
            self._store.get_session_and_file(session_id, file_id) if known else (None, None)
        )
        if session is None or file is None:
            raise NotFound("No such file upload session.")
        return FileView(self._admit(principal, session), file)

    # -- publishing sessions -------------------------------------------------------------

    def create_session(
        self, principal: Principal, name: str, version: str, *, legacy: bool = False
    ) -> SessionView:
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
        for _attempt in range(_CREATE_ATTEMPTS):
            record = self._store.get_project(project)
            if record is not None and record.status is ProjectStatus.RESERVED:
                if record.reserved_for != principal.username:
                    self._refuse_reserved(principal, record)
                    continue
                if len(record.holders) >= MAX_FIRST_RELEASE_SESSIONS:
                    raise Conflict(
                        f"At most {MAX_FIRST_RELEASE_SESSIONS} versions of a new name may be "
                        "in progress at once; publish or cancel one of them first."
                    )
            self._access.require_upload(principal, project)
            now = self._clock.now()
            token = new_session_token()
            # Under a reservation (its own, or its creator's for another version) a
            # session is a first release: it registers the name if it publishes first.
            first_release = record is None or record.status is ProjectStatus.RESERVED
            session = SessionRecord(
                id=session_id_for(token),
                token=token,
                project=project,
                version=release.text,
                version_key=release.key,
                status=SessionStatus.OPEN,
                created_at=now,
                expires_at=now
                + min(self._settings.session_lifetime, self._settings.session_max_lifetime),
                created_by=principal.username,
                first_release=first_release,
                legacy=legacy,
            )
            try:
                self._store.create_session(session, reserve_project=first_release)
            except LiveSessionExists as exc:
                self._refuse_live(principal, exc.session_id)
                continue
            except ProjectTaken:
                continue
            return SessionView(session, [])
        raise Conflict("The release changed while the session was being created; retry.")

    def _refuse_live(self, principal: Principal, session_id: str) -> None:
        """409 with the live session's Location (PEP 694 "Multiple Session Creation
        Requests"): the session of this same release. Returns only when that session
        turned out to be expired, and has been canceled, so the caller retries."""
        live = self._store.get_session(session_id)
        if live is None:
            return
        self._access.require_upload(principal, live.project, live)
        live = self._expire_if_due(live)
        if live.status.terminal:
            return
        raise SessionInProgress(
            "A publishing session for this release is already in progress; "
            "use it, or cancel it to start over.",
            live,
        )

    def _refuse_reserved(self, principal: Principal, record: ProjectRecord) -> None:
        """Someone else's first release of the name is in progress: 403 (409 for the
        operator, without a Location: those sessions are other releases). Returns only
        when every holder had expired (and has now been canceled, freeing the name), so
        the caller retries."""
        holders = (self._store.get_session(h) for h in sorted(record.holders))
        if all(h is None or self._expire_if_due(h).status.terminal for h in holders):
            return
        self._access.require_upload(principal, record.name)
        raise Conflict(
            f"The name {record.name!r} is reserved by another publisher's first release "
            "in progress."
        )

    def session_status(self, principal: Principal, session_id: str) -> SessionView:
        return self._load(principal, session_id)

    def cancel_session(self, principal: Principal, session_id: str) -> None:
        session = self._session(principal, session_id)
        try:
            self._store.move_session(session, SessionEvent.CANCEL, self._clock.now())
        except SessionChanged as exc:
            raise _session_state_conflict(exc.current, "cancel") from None
        self._purge(session.id)

    def extend_session(self, principal: Principal, session_id: str, extend_for: int) -> SessionView:
        view = self._load(principal, session_id)
        session = self._extend(view.session, extend_for)
        return SessionView(session, view.files)

    def _extend(self, session: SessionRecord, extend_for: int) -> SessionRecord:
        """Later by up to `extend_for`, capped by the maximum lifetime, never earlier. A
        refused amount still succeeds (PEP 694 "Publishing Session Extension")."""
        if session.status.terminal:
            raise _session_state_conflict(session, "extend")
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
            raise _session_state_conflict(current, "extend") from None

    def publish(self, principal: Principal, session_id: str) -> SessionView:
        """Publish within the request (201), or, for a release larger than
        WHARF_INLINE_PUBLISH_MAX_FILES, hand it to the worker (202, `processing`)."""
        view = self._load(principal, session_id)
        session = view.session
        if not session.status.editable:
            raise _session_state_conflict(session, "publish")
        self._require_all_completed(view.files)
        if len(view.files) > self._settings.inline_publish_max_files:
            return self._defer_publish(session)
        now = self._clock.now()
        try:
            session = self._store.lock_for_publish(session, now, now + PUBLISH_LOCK_SECONDS)
        except SessionChanged as exc:
            raise _session_state_conflict(exc.current, "publish") from None
        try:
            # Authoritative now that the session is locked against changes.
            _, files = self._store.get_session_and_files(session.id)
            files = _live(files, session)
            self._require_all_completed(files)
            published = self._publisher.publish(session, files, SessionEvent.PUBLISH)
        except BaseException as exc:
            self._store.unlock_publish(session)
            if isinstance(exc, SessionChanged):
                raise _session_state_conflict(exc.current, "publish") from None
            if isinstance(exc, ProjectTaken):
                raise Conflict(f"The name {session.project!r} is no longer reserved.") from None
            raise
        return SessionView(published, files)

    def _defer_publish(self, session: SessionRecord) -> SessionView:
        try:
            processing = self._store.move_session(
                session, SessionEvent.DEFER_PUBLISH, self._clock.now()
            )
        except SessionChanged as exc:
            raise _session_state_conflict(exc.current, "publish") from None
        self._queue.send({"job": PUBLISH, "session": session.id})
        _, files = self._store.get_session_and_files(session.id)
        return SessionView(processing, _live(files, processing))

    @staticmethod
    def _require_all_completed(files: list[FileRecord]) -> None:
        refused = unfinished(files)
        if refused is not None:
            raise refused

    def expire_due(self) -> int:
        """Cancel every session past its expires-at and purge its staged bytes. Run on a
        schedule; DynamoDB's TTL alone is late and never purges S3."""
        count = 0
        for session_id in self._store.expiring_session_ids(self._clock.now()):
            session = self._store.get_session(session_id)
            if session is not None and self._expire_if_due(session).status.terminal:
                count += 1
        return count

    # -- file upload sessions -------------------------------------------------------------

    def create_file(
        self,
        principal: Principal,
        session_id: str,
        *,
        filename: str,
        size: int,
        hashes: Mapping[str, str],
        mechanism: str,
    ) -> FileView:
        session = self._session(principal, session_id)
        if not session.status.editable:
            raise _session_state_conflict(session, "add a file")
        if mechanism not in self.mechanisms:
            supported = ", ".join(self.mechanisms)
            raise Unsupported(
                f"The upload mechanism {mechanism!r} is not supported; use one of: {supported}.",
                [FieldError("mechanism", f"supported: {supported}")],
            )
        errors: list[FieldError] = []
        try:
            check_distribution_filename(filename, session.project, session.version_key)
        except InvalidInput as exc:
            errors.append(FieldError("filename", str(exc)))
        if size <= 0:
            errors.append(FieldError("size", "a file has at least one byte"))
        try:
            clean_hashes = normalize_hashes(hashes)
        except InvalidHashes as exc:
            errors.append(FieldError(exc.source, str(exc)))
        if errors:
            raise Invalid("The file upload session request is not valid.", errors)
        self._require_size_accepted(size, mechanism)
        replaces, published = self._store.filename_in_release(session, filename)
        if replaces is not None and replaces.status not in REPLACEABLE_FILE_STATES:
            raise FileInProgress(
                f"{filename!r} is being uploaded in this session; cancel that upload "
                "before starting another (PEP 694 'Replacing a ... File').",
                replaces,
            )
        if published is not None:
            raise Conflict(
                f"{filename!r} is already published in this release; published files never change.",
                [FieldError("filename", "already published")],
            )
        file_id = random_id()
        # Under files/ so that CloudFront's /files/* maps onto the bucket as it is.
        key = f"{FILES_PREFIX}{session.project}/{file_id}/{filename}"
        plan = PartPlan.for_size(size) if mechanism == self.multipart else None
        # A whole file's one part is the file: with its SHA-256 declared, its URL is
        # signed now, which spares the client a request (and it is a signer of the file).
        sha256 = clean_hashes.get("sha256")
        presign = (
            base64.b64encode(bytes.fromhex(sha256)).decode()
            if plan is not None and plan.whole and sha256 is not None
            else None
        )
        file = FileRecord(
            id=file_id,
            session_id=session.id,
            filename=filename,
            size=size,
            hashes=clean_hashes,
            mechanism=mechanism,
            status=FileStatus.PENDING,
            # Unique per file upload session and never rewritten (invariant 5); it ends
            # in the filename because installers take it from the URL's last segment.
            key=key,
            created_at=self._clock.now(),
            upload_id=(
                self._blobs.start_multipart(key) if plan is not None and not plan.whole else None
            ),
            signers=frozenset(
                [principal.token_id] if presign and principal.token_id is not None else ()
            ),
        )
        try:
            self._store.add_file(session, file, self._clock.now(), replaces=replaces)
        except BaseException as exc:
            # Not recorded: its multipart upload must not linger (nor any other failure's).
            self._verifier.discard(file)
            if isinstance(exc, SessionChanged):
                raise _session_state_conflict(exc.current, "add a file") from None
            if isinstance(exc, FilenameInUse | FileChanged):
                raise Conflict(f"{filename!r} changed in this session meanwhile; retry.") from None
            raise
        if replaces is not None:
            self._verifier.discard(replaces)
        if presign is not None:
            return FileView(session, file, (self._sign(file, 1, presign),))
        return FileView(session, file)

    def _require_size_accepted(self, size: int, mechanism: str) -> None:
        """A well-formed request for a size this index will not take "cannot proceed":
        PEP 694 (Create a File Upload Session) says the server MUST answer 409."""
        limit = self._settings.max_file_size
        if size > limit:
            raise Conflict(
                f"This index accepts files of at most {limit} bytes; this one declares {size}.",
                [FieldError("size", f"at most {limit} bytes")],
            )
        if mechanism == HTTP_POST_BYTES and size > self._settings.post_bytes_max:
            limit = self._settings.post_bytes_max
            if self.multipart in self.mechanisms:
                advice = f"use the {self.multipart} mechanism instead"
                why = f"{advice}, which sends the bytes straight to storage"
            else:  # WHARF_MECHANISMS left it out
                advice = "this index offers no mechanism for larger files"
                why = advice
            raise Conflict(
                f"{HTTP_POST_BYTES} carries at most {limit} bytes (the API's request size "
                f"limit); {why}.",
                [FieldError("mechanism", advice)],
            )

    def file_status(self, principal: Principal, session_id: str, file_id: str) -> FileView:
        return self._load_file(principal, session_id, file_id)

    def _editable_file(self, view: FileView, action: str) -> None:
        if not view.session.status.editable:
            raise _session_state_conflict(view.session, action)

    def upload_bytes(
        self, principal: Principal, session_id: str, file_id: str, data: bytes
    ) -> FileView:
        """The http-post-bytes mechanism: the file's bytes in one request."""
        view = self._load_file(principal, session_id, file_id)
        self._editable_file(view, "upload")
        file = view.file
        if file.mechanism != HTTP_POST_BYTES:
            raise Conflict(
                f"This file upload session uses {file.mechanism}, not {HTTP_POST_BYTES}."
            )
        if file.status is not FileStatus.PENDING:
            raise Conflict(
                f"The file is {view.status.value}; bytes are accepted only while pending."
            )
        if len(data) > self._settings.post_bytes_max:
            raise TooLarge(
                f"{HTTP_POST_BYTES} carries at most {self._settings.post_bytes_max} bytes."
            )
        if len(data) != file.size:
            raise Invalid(
                f"Received {len(data)} bytes, but the file upload session declared "
                f"{file.size}; nothing was stored, send the whole file again.",
                [FieldError("size", f"declared {file.size}, received {len(data)}")],
            )
        if not self._blobs.put_new(file.key, data):
            raise Conflict(
                "The bytes of this file were already uploaded; complete the upload, or "
                "delete this file upload session and start a new one to replace them."
            )
        return view

    def complete_file(self, principal: Principal, session_id: str, file_id: str) -> FileView:
        """Verify the file within the request (201 `completed`), or, above
        WHARF_INLINE_MAX bytes, hand it to the worker (202 `processing`)."""
        view = self._load_file(principal, session_id, file_id)
        self._editable_file(view, "complete a file")
        file = view.file
        if file.status is not FileStatus.PENDING:
            raise Conflict(
                f"The file is {view.status.value}; only a pending file can be completed."
            )
        self._require_signers_allowed(view, principal)
        if file.size > self._settings.inline_max:
            processing = self._move_file(file, FileEvent.DEFER_COMPLETE)
            self._queue.send({"job": VERIFY_FILE, "session": file.session_id, "file": file.id})
            return FileView(view.session, processing)
        try:
            verified = self._verifier.verify(view.session, file)
        except Unverified as exc:
            raise Invalid(
                "The uploaded file was not accepted; the file is now in error: delete it "
                "and upload it again.",
                self._fail_completion(file, exc),
            ) from None
        try:
            completed = self._store.move_file(
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
            raise _changed(exc) from None
        return FileView(view.session, completed)

    def _require_signers_allowed(self, view: FileView, principal: Principal) -> None:
        """PEP 694 SHOULD re-authorize every step: part URLs signed for a token revoked
        since must not complete a file (Access.revoked_signers). Checked again by the
        worker for a deferred file, right before it assembles the parts."""
        if self._access.revoked_signers(view.file, view.session, trusted=principal.token_id):
            raise Invalid(
                "The file was not accepted: some of its part URLs belong to a revoked token.",
                self._fail_completion(view.file, signer_revoked()),
            )

    def _fail_completion(self, file: FileRecord, refusal: Unverified) -> list[FieldError]:
        """Any completion failure is final for the file (PEP 694 "File Upload Session
        States"): it moves to error with the refusal's notices, and the client deletes it
        and starts a new file upload session. The problems, for the answer."""
        self._move_file(file, FileEvent.COMPLETE_FAILED, notices=refusal.notices)
        return refusal.problems

    def _move_file(
        self,
        file: FileRecord,
        event: FileEvent,
        *,
        notices: list[str] | None = None,
        verified: Verified | None = None,
    ) -> FileRecord:
        try:
            return self._store.move_file(
                file, event, self._clock.now(), notices=notices, verified=verified
            )
        except (SessionChanged, FileChanged) as exc:
            raise _changed(exc) from None

    def _multipart_file(self, view: FileView) -> tuple[FileRecord, PartPlan]:
        self._editable_file(view, "upload parts")
        file = view.file
        if file.mechanism != self.multipart:
            raise NotFound(f"This file upload session uses {file.mechanism}; it has no parts.")
        if file.status is not FileStatus.PENDING:
            raise Conflict(
                f"The file is {view.status.value}; parts are accepted only while pending."
            )
        return file, PartPlan.for_size(file.size)

    def list_parts(self, principal: Principal, session_id: str, file_id: str) -> list[PartState]:
        """Every part of the plan and whether S3 holds it, so a client that lost its
        state uploads only what is missing."""
        file, plan = self._multipart_file(self._load_file(principal, session_id, file_id))
        if file.upload_id is None:  # sent whole (PartPlan.whole): the object is the part
            info = self._blobs.head(file.key)
            return [PartState(1, info.size if info else file.size, info is not None)]
        try:
            stored = {p.number: p.size for p in self._blobs.stored_parts(file.key, file.upload_id)}
        except UploadGone:
            # Nothing can complete it any more: say so in the file's state, as complete
            # would, rather than leave it pending.
            raise Conflict(
                "The file is now in error: its multipart upload no longer exists in "
                "storage. Delete it and upload it again.",
                self._fail_completion(file, upload_gone()),
            ) from None
        return [
            PartState(n, stored.get(n, plan.size_of(n)), n in stored)
            for n in range(1, plan.count + 1)
        ]

    def sign_parts(
        self, principal: Principal, session_id: str, file_id: str, parts: list[tuple[int, str]]
    ) -> list[SignedPart]:
        """Presigned PUT URLs, one part of one upload each, with the part's SHA-256
        signed in so that S3 refuses bytes that do not match it."""
        file, plan = self._multipart_file(self._load_file(principal, session_id, file_id))
        if not parts or len(parts) > MAX_PARTS_PER_REQUEST:
            raise Invalid(
                f"Ask for 1 to {MAX_PARTS_PER_REQUEST} parts at a time.",
                [FieldError("parts", f"{len(parts)} given")],
            )
        errors = [
            FieldError(f"parts[{i}].number", f"part numbers run from 1 to {plan.count}")
            for i, (number, _) in enumerate(parts)
            if not 1 <= number <= plan.count
        ] + [
            FieldError(f"parts[{i}].sha256", "the base64 of a 32-byte SHA-256 digest")
            for i, (_, digest) in enumerate(parts)
            if not _is_sha256_b64(digest)
        ]
        if errors:
            raise Invalid("Some requested parts are not valid.", errors)
        if principal.token_id is not None and principal.token_id not in file.signers:
            try:
                self._store.add_signer(file, principal.token_id)
            except FileChanged as exc:
                raise _file_changed(exc) from None
        return [self._sign(file, number, digest) for number, digest in parts]

    def _sign(self, file: FileRecord, number: int, digest: str) -> SignedPart:
        """A presigned URL for one part: an UploadPart of the file's multipart upload, or,
        for a file sent whole, a write-once PutObject of the file itself."""
        if file.upload_id is None:
            url, headers = self._blobs.presign_put(file.key, digest, PART_URL_SECONDS)
        else:
            url, headers = self._blobs.presign_part(
                file.key, file.upload_id, number, digest, PART_URL_SECONDS
            )
        return SignedPart(number, url, headers, self._clock.now() + PART_URL_SECONDS)

    def cancel_file(self, principal: Principal, session_id: str, file_id: str) -> None:
        view = self._load_file(principal, session_id, file_id)
        self._editable_file(view, "delete a file")
        if view.file.status is FileStatus.PROCESSING:
            raise Conflict("The file is being processed; wait for it to resolve, then delete it.")
        if view.file.status is FileStatus.CANCELED:
            raise Conflict("The file upload session is already canceled.")
        self._move_file(view.file, FileEvent.CANCEL)
        self._verifier.discard(view.file)

    def extend_file(
        self, principal: Principal, session_id: str, file_id: str, extend_for: int
    ) -> FileView:
        """A file upload session lives as long as its publishing session, so extending
        one extends the other."""
        view = self._load_file(principal, session_id, file_id)
        return FileView(self._extend(view.session, extend_for), view.file)
