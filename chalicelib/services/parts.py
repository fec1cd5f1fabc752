"""The parts of a file sent with the vendor mechanism (DESIGN.md
"vnd-wharf-s3multipart-presigned-v1"): which the bucket holds, and presigned URLs for
sending them straight to S3."""

from __future__ import annotations

import base64
import binascii

from ..domain.errors import Conflict, FieldError, Invalid, NotFound
from ..domain.mechanisms import MAX_PARTS_PER_REQUEST, PartPlan
from ..domain.ports import BlobStore, FileChanged, SessionStore, UploadGone
from ..domain.records import FileRecord, Principal
from ..domain.states import UPLOADING_FILE_STATES
from .admission import Admission
from .completion import Completion
from .files import FileService
from .verification import upload_gone
from .views import PartState, SignedPart, changed


def _is_sha256_b64(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (ValueError, binascii.Error):
        return False


def _part_errors(parts: list[tuple[int, str]], plan: PartPlan) -> list[FieldError]:
    return [
        FieldError(f"parts[{i}].number", f"part numbers run from 1 to {plan.count}")
        for i, (number, _) in enumerate(parts)
        if not 1 <= number <= plan.count
    ] + [
        FieldError(f"parts[{i}].sha256", "the base64 of a 32-byte SHA-256 digest")
        for i, (_, digest) in enumerate(parts)
        if not _is_sha256_b64(digest)
    ]


class PartService:
    def __init__(
        self,
        store: SessionStore,
        blobs: BlobStore,
        admission: Admission,
        files: FileService,
        completion: Completion,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._admission = admission
        self._files = files
        self._completion = completion

    def _multipart_file(
        self, principal: Principal, session_id: str, file_id: str
    ) -> tuple[FileRecord, PartPlan]:
        view = self._admission.editable_file(principal, session_id, file_id, "upload parts")
        file = view.file
        if file.mechanism != self._files.multipart:
            raise NotFound(f"This file upload session uses {file.mechanism}; it has no parts.")
        if file.status not in UPLOADING_FILE_STATES:
            raise Conflict(
                f"The file is {view.status.value}; parts are accepted only while pending."
            )
        return file, PartPlan.for_size(file.size)

    def list_parts(self, principal: Principal, session_id: str, file_id: str) -> list[PartState]:
        """Every part of the plan and whether S3 holds it, so a client that lost its
        state uploads only what is missing."""
        file, plan = self._multipart_file(principal, session_id, file_id)
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
                self._completion.fail(file, upload_gone()),
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
        file, plan = self._multipart_file(principal, session_id, file_id)
        if not parts or len(parts) > MAX_PARTS_PER_REQUEST:
            raise Invalid(
                f"Ask for 1 to {MAX_PARTS_PER_REQUEST} parts at a time.",
                [FieldError("parts", f"{len(parts)} given")],
            )
        errors = _part_errors(parts, plan)
        if errors:
            raise Invalid("Some requested parts are not valid.", errors)
        if principal.token_id is not None and principal.token_id not in file.signers:
            try:
                self._store.add_signer(file, principal.token_id)
            except FileChanged as exc:
                raise changed(exc) from None
        return [self._files.sign(file, number, digest) for number, digest in parts]
