"""File upload sessions (PEP 694 "File Upload Session"): creating one, sending its bytes
with http-post-bytes, its status, canceling it. (Completing it: completion.py; extending
it extends its session: sessions.py.)"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from ..config import Settings
from ..domain.errors import (
    Conflict,
    FieldError,
    FileInProgress,
    Invalid,
    TooLarge,
    Unsupported,
)
from ..domain.hashes import InvalidHashes, normalize_hashes
from ..domain.mechanisms import HTTP_POST_BYTES, PART_URL_SECONDS, PartPlan, multipart_identifier
from ..domain.names import InvalidInput, check_distribution_filename
from ..domain.ports import (
    BlobStore,
    Clock,
    FileChanged,
    FilenameInUse,
    SessionChanged,
    SessionStore,
)
from ..domain.records import FileRecord, FileRef, Principal, SessionRecord
from ..domain.states import REPLACEABLE_FILE_STATES, UPLOADING_FILE_STATES, FileEvent, FileStatus
from ..domain.tokens import random_id
from .admission import Admission
from .verification import Unverified, Verifier
from .views import FileView, SignedPart, changed, session_state_conflict

FILES_PREFIX = "files/"


def _sha256_b64(hashes: Mapping[str, str]) -> str | None:
    sha256 = hashes.get("sha256")
    return base64.b64encode(bytes.fromhex(sha256)).decode() if sha256 is not None else None


def _request_errors(
    session: SessionRecord, filename: str, size: int, hashes: Mapping[str, str]
) -> tuple[dict[str, str], list[FieldError]]:
    """The hashes, normalized, and what is wrong with the request's fields."""
    errors: list[FieldError] = []
    try:
        check_distribution_filename(filename, session.project, session.version_key)
    except InvalidInput as exc:
        errors.append(FieldError("filename", str(exc)))
    if size <= 0:
        errors.append(FieldError("size", "a file has at least one byte"))
    clean: dict[str, str] = {}
    try:
        clean = normalize_hashes(hashes)
    except InvalidHashes as exc:
        errors.append(FieldError(exc.source, str(exc)))
    return clean, errors


# A file's upload is over: it is completed, failed or canceled.
_ENDED = REPLACEABLE_FILE_STATES | {FileStatus.CANCELED}


def _refusal(file: FileRecord, refused: SessionChanged | FilenameInUse | FileChanged) -> Exception:
    """Why the store refused to add `file`, as the API says it."""
    if isinstance(refused, SessionChanged):
        return session_state_conflict(refused.current, "add a file")
    current = refused.current if isinstance(refused, FileChanged) else None
    # The file it would replace is pending or processing: still being uploaded. One
    # canceled meanwhile changed under this request: a retry finds the name free.
    if current is not None and current.status not in _ENDED:
        return FileInProgress(
            f"{file.filename!r} is being uploaded in this session; cancel that "
            "upload before starting another (PEP 694 'Replacing a ... File').",
            current,
        )
    return Conflict(f"{file.filename!r} changed in this session meanwhile; retry.")


class FileService:
    def __init__(
        self,
        store: SessionStore,
        blobs: BlobStore,
        admission: Admission,
        verifier: Verifier,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._admission = admission
        self._verifier = verifier
        self._clock = clock
        self._settings = settings
        self.multipart = multipart_identifier(settings.operator)
        # Server-preferred order (PEP 694 "mechanisms"); by default bytes straight to S3
        # first (Settings.offered_mechanisms, WHARF_MECHANISMS).
        self.mechanisms = settings.offered_mechanisms

    # -- creation ----------------------------------------------------------------------

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
        session = self._admission.session(principal, session_id, new_filename=filename)
        return self.create_in(
            principal, session, filename=filename, size=size, hashes=hashes, mechanism=mechanism
        )

    def create_in(
        self,
        principal: Principal,
        session: SessionRecord,
        *,
        filename: str,
        size: int,
        hashes: Mapping[str, str],
        mechanism: str,
    ) -> FileView:
        """create_file in a session this request has admitted already (the legacy upload
        creates it in the same request)."""
        if not session.status.editable:
            raise session_state_conflict(session, "add a file")
        clean_hashes = self._checked_request(session, filename, size, hashes, mechanism)
        replaces = self._replaceable(session, filename)
        plan = PartPlan.for_size(size) if mechanism == self.multipart else None
        # A whole file's one part is the file: with its SHA-256 declared, its URL is
        # signed now, which spares the client a request (and it is a signer of the file).
        presign = _sha256_b64(clean_hashes) if plan is not None and plan.whole else None
        signer = principal.token_id if presign is not None else None
        file = self._new_file(session, filename, size, clean_hashes, mechanism, plan, signer)
        self._add(session, file, replaces)
        if presign is not None:
            return FileView(session, file, (self.sign(file, 1, presign),))
        return FileView(session, file)

    def held_file(
        self, session: SessionRecord, filename: str, data: bytes, computed: dict[str, str]
    ) -> FileRecord:
        """A legacy upload's file, whole in the request, with the digests `computed`
        from its bytes: checked as create_file checks it, its bytes stored and verified
        as completing it would (nothing read back), and answered completed but not
        recorded (PublishStore.publish_whole records it with its session). A failure
        leaves nothing stored."""
        size = len(data)
        hashes = self._checked_request(session, filename, size, computed, HTTP_POST_BYTES)
        file = self._new_file(session, filename, size, hashes, HTTP_POST_BYTES, None, None)
        self._blobs.put_new(file.key, data)
        try:
            verified = self._verifier.verify_bytes(session, file, data, computed)
        except BaseException as exc:
            self._verifier.discard(file)
            if isinstance(exc, Unverified):
                raise Invalid("The uploaded file was not accepted.", exc.problems) from None
            raise
        return file.after(FileEvent.COMPLETE, None, verified)

    def _checked_request(
        self,
        session: SessionRecord,
        filename: str,
        size: int,
        hashes: Mapping[str, str],
        mechanism: str,
    ) -> dict[str, str]:
        """The request's hashes, normalized, once its fields are valid and its mechanism
        and size accepted."""
        self._require_mechanism_offered(mechanism)
        clean_hashes, errors = _request_errors(session, filename, size, hashes)
        if errors:
            raise Invalid("The file upload session request is not valid.", errors)
        self._require_size_accepted(size, mechanism)
        return clean_hashes

    def _require_mechanism_offered(self, mechanism: str) -> None:
        if mechanism not in self.mechanisms:
            supported = ", ".join(self.mechanisms)
            raise Unsupported(
                f"The upload mechanism {mechanism!r} is not supported; use one of: {supported}.",
                [FieldError("mechanism", f"supported: {supported}")],
            )

    def _replaceable(self, session: SessionRecord, filename: str) -> FileRef | None:
        """The session's file of that name, which the new one replaces (PEP 694 "Replacing
        a Partially or Fully Uploaded File"), if any; refused when the release published
        a file of that name. Whether that file may be replaced (not while it is being
        uploaded) is the condition of the write that replaces it (_add)."""
        replaces, published = self._store.filename_in_release(session, filename)
        if published is not None:
            raise Conflict(
                f"{filename!r} is already published in this release; published files never change.",
                [FieldError("filename", "already published")],
            )
        return replaces

    def _new_file(
        self,
        session: SessionRecord,
        filename: str,
        size: int,
        hashes: dict[str, str],
        mechanism: str,
        plan: PartPlan | None,
        signer: str | None,
    ) -> FileRecord:
        file_id = random_id()
        # Under files/ so that CloudFront's /files/* maps onto the bucket as it is. Unique
        # per file upload session and never rewritten (invariant 5); it ends in the
        # filename because installers take it from the URL's last segment.
        key = f"{FILES_PREFIX}{session.project}/{file_id}/{filename}"
        several_parts = plan is not None and not plan.whole
        return FileRecord(
            id=file_id,
            session_id=session.id,
            filename=filename,
            size=size,
            hashes=hashes,
            mechanism=mechanism,
            status=FileStatus.PENDING,
            key=key,
            created_at=self._clock.now(),
            upload_id=self._blobs.start_multipart(key) if several_parts else None,
            signers=frozenset([signer] if signer is not None else ()),
        )

    def _add(self, session: SessionRecord, file: FileRecord, replaces: FileRef | None) -> None:
        try:
            self._store.add_file(session, file, self._clock.now(), replaces=replaces)
        except (SessionChanged, FilenameInUse, FileChanged) as refused:
            # Refused: nothing recorded and no URL handed out, so nothing is stored at
            # its keys; only its multipart upload, if it started one, must not linger.
            if file.upload_id is not None:
                self._blobs.abort_multipart(file.key, file.upload_id)
            raise _refusal(file, refused) from None
        except BaseException:
            # Perhaps recorded (an answer lost): nothing of it may linger either way.
            self._verifier.discard(file)
            raise
        if replaces is not None:
            self._verifier.discard(replaces)

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

    def sign(self, file: FileRecord, number: int, digest: str) -> SignedPart:
        """A presigned URL for one part: an UploadPart of the file's multipart upload, or,
        for a file sent whole, a write-once PutObject of the file itself."""
        if file.upload_id is None:
            url, headers = self._blobs.presign_put(file.key, file.size, digest, PART_URL_SECONDS)
        else:
            size = PartPlan.for_size(file.size).size_of(number)
            url, headers = self._blobs.presign_part(
                file.key, file.upload_id, number, size, digest, PART_URL_SECONDS
            )
        return SignedPart(number, url, headers, self._clock.now() + PART_URL_SECONDS)

    # -- the file's life -------------------------------------------------------------------

    def file_status(self, principal: Principal, session_id: str, file_id: str) -> FileView:
        return self._admission.file(principal, session_id, file_id)

    def upload_bytes(
        self, principal: Principal, session_id: str, file_id: str, data: bytes
    ) -> FileView:
        """The http-post-bytes mechanism: the file's bytes in one request."""
        view = self._admission.editable_file(principal, session_id, file_id, "upload")
        return self.upload_to(view, data)

    def upload_to(self, view: FileView, data: bytes) -> FileView:
        """upload_bytes to a file this request has admitted already."""
        file = view.file
        if file.mechanism != HTTP_POST_BYTES:
            raise Conflict(
                f"This file upload session uses {file.mechanism}, not {HTTP_POST_BYTES}."
            )
        if file.status not in UPLOADING_FILE_STATES:
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

    def cancel_file(self, principal: Principal, session_id: str, file_id: str) -> None:
        view = self._admission.editable_file(principal, session_id, file_id, "delete a file")
        if not FileEvent.CANCEL.allowed_from(view.file.status):
            if view.file.status is FileStatus.CANCELED:
                raise Conflict("The file upload session is already canceled.")
            raise Conflict("The file is being processed; wait for it to resolve, then delete it.")
        try:
            self._store.move_file(view.file, FileEvent.CANCEL, self._clock.now())
        except (SessionChanged, FileChanged) as exc:
            raise changed(exc) from None
        self._verifier.discard(view.file)
