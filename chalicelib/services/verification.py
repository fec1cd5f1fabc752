"""Turning uploaded bytes into a verified file: assemble a multipart upload from what S3
holds, hash every byte once, inspect the archive, store its core metadata (PEP 658).

Read as little as the checks need: a file of at most one part (IN_MEMORY_MAX) in one
request, hashed only where the store has not already checked its SHA-256 (S3 refuses a
PUT whose bytes differ from the checksum signed into its URL). A larger one is read once,
as a stream: hashed, and walked (a wheel's local records, keeping its METADATA and central
directory as they pass) or inspected (an sdist) in the same pass; what a wheel's walk did
not keep is read by range. Nothing is spooled to disk or held whole.

The same code runs inline in a `complete` request and in the worker; running it twice on
the same file gives the same result (a redelivered job finds the object assembled and the
metadata stored)."""

from __future__ import annotations

import hashlib
import io

from ..domain.distributions import (
    Inspection,
    LocalWalk,
    Refused,
    inspect_distribution,
    inspect_sdist,
    inspect_wheel,
)
from ..domain.errors import FieldError
from ..domain.hashes import MultiHasher
from ..domain.mechanisms import MIN_PART_SIZE, PartPlan
from ..domain.ports import BlobGone, BlobStore, Clock, UploadGone
from ..domain.records import FileRecord, FileRef, SessionRecord, Verified
from .reading import HashingReader, RangedFile, ReadFailed

# A file sent whole (one part) is read in one request and held: it is at most this big.
IN_MEMORY_MAX = MIN_PART_SIZE
CHUNK = 1024 * 1024


class Unverified(Exception):
    """The file fails verification; `problems` say why, field by field."""

    def __init__(self, problems: list[FieldError]) -> None:
        self.problems = problems
        # What the file's `notices` say, one per problem (PEP 694 file status).
        self.notices = [f"{p.source}: {p.message}" for p in problems]
        super().__init__("; ".join(self.notices))


def signer_revoked() -> Unverified:
    """A part URL outlives the revocation of the token it was signed for (S3 cannot be
    told): completion refuses a file any of whose URLs belong to a revoked token."""
    return Unverified(
        [
            FieldError(
                "parts",
                "part URLs of this file were signed for a token that has since been revoked "
                "or lost its role; delete this file and upload it again",
            )
        ]
    )


def upload_gone() -> Unverified:
    """The bucket's lifecycle rule aborts multipart uploads older than any session can
    live (infra/template.yaml); a cancel aborts them too. Either way the parts are lost
    and the file can only be uploaded again."""
    return Unverified(
        [
            FieldError(
                "parts",
                "the multipart upload no longer exists in storage, so its parts are lost; "
                "delete this file and upload it again",
            )
        ]
    )


def metadata_key(key: str) -> str:
    """Where a file's core metadata is stored: next to it (PEP 658)."""
    return f"{key}.metadata"


class Verifier:
    def __init__(self, blobs: BlobStore, clock: Clock) -> None:
        self._blobs = blobs
        self._clock = clock

    def verify(self, session: SessionRecord, file: FileRecord) -> Verified:
        try:
            try:
                return self._verify(session, file)
            except ReadFailed as exc:  # within an archive reader: what failed, as it is
                raise (exc.__cause__ or exc) from None
        except BlobGone:
            # Deleted while being verified: a cancel of the file raced its completion.
            raise Unverified(
                [FieldError("file", "the file's bytes were deleted while it was verified")]
            ) from None

    def _verify(self, session: SessionRecord, file: FileRecord) -> Verified:
        # Assembled from parts of exactly the planned sizes, a multipart file has its
        # declared size. A file sent whole is looked at; so is one whose upload is gone
        # (an earlier delivery of the same job assembled it, or it was aborted).
        assembled = file.upload_id is not None and self._assemble(file, file.upload_id)
        try:
            if file.size <= IN_MEMORY_MAX:
                found = self._inspect_whole(session, file)
            else:
                if not assembled and self._blobs.head(file.key) is None:
                    raise _not_stored(file)
                found = self._inspect_streamed(session, file)
        except Refused as exc:
            raise Unverified([FieldError("file", str(exc))]) from None
        return self._verified(file, found)

    def verify_bytes(
        self, session: SessionRecord, file: FileRecord, data: bytes, computed: dict[str, str]
    ) -> Verified:
        """verify, for bytes this request holds and has stored (a legacy upload's):
        nothing is read back, and the digests `computed` from them are not computed again."""
        try:
            found = self._inspect_held(session, file, data, computed)
        except Refused as exc:
            raise Unverified([FieldError("file", str(exc))]) from None
        return self._verified(file, found)

    def _verified(self, file: FileRecord, found: Inspection) -> Verified:
        # Stored even when not advertised: publishing makes it public with the file.
        self._blobs.put_new(metadata_key(file.key), found.metadata)
        return Verified(
            metadata_sha256=(
                hashlib.sha256(found.metadata).hexdigest() if found.metadata_is_reliable else None
            ),
            requires_python=found.requires_python,
            uploaded_at=self._clock.now(),
        )

    def _inspect_whole(self, session: SessionRecord, file: FileRecord) -> Inspection:
        """One request; the SHA-256 is computed only if the store did not check it."""
        fetched = self._blobs.fetch(file.key, file.size)
        if fetched is None:
            raise _not_stored(file)
        if fetched.size != file.size:  # then nothing was read
            raise Unverified(
                [FieldError("size", f"declared {file.size} bytes, stored {fetched.size}")]
            )
        checked = {"sha256": fetched.sha256} if fetched.sha256 else {}
        return self._inspect_held(session, file, fetched.data, checked)

    @staticmethod
    def _inspect_held(
        session: SessionRecord, file: FileRecord, data: bytes, checked: dict[str, str]
    ) -> Inspection:
        """Hash (what `checked` does not vouch for) and inspect bytes held in memory."""
        hasher = MultiHasher(name for name in file.hashes if name not in checked)
        hasher.update(data)
        _check_hashes(file, {**hasher.hexdigests(), **checked}, len(data))
        return inspect_distribution(
            file.filename, io.BytesIO(data), session.project, session.version_key
        )

    def _inspect_streamed(self, session: SessionRecord, file: FileRecord) -> Inspection:
        """One pass over the stored bytes hashes them and walks or inspects the archive."""
        hasher = MultiHasher(file.hashes)
        chunks = self._blobs.stream(file.key, CHUNK)
        project, version_key = session.project, session.version_key
        if file.filename.endswith(".whl"):
            walk = LocalWalk(keep=True)
            for chunk in chunks:
                hasher.update(chunk)
                walk.feed(chunk)
            walk.finish()
            _check_hashes(file, hasher.hexdigests(), hasher.size)
            ranged = RangedFile(self._blobs, file.key, file.size, walk.kept)
            return inspect_wheel(io.BufferedReader(ranged), project, version_key, walk)
        reader = HashingReader(chunks, hasher)
        try:
            found: Inspection | Refused = inspect_sdist(
                io.BufferedReader(reader), project, version_key, file.size
            )
        except Refused as exc:  # anything else (a read that failed) is no verdict
            found = exc
        # Hashes are checked first, as for any file: a refusal of the archive follows.
        reader.drain()
        _check_hashes(file, hasher.hexdigests(), hasher.size)
        if isinstance(found, Refused):
            raise found
        return found

    def _assemble(self, file: FileRecord, upload_id: str) -> bool:
        """Complete the multipart upload from S3's own list of parts, refusing a missing
        or wrongly sized part (the mechanism's `complete`). False when the upload is no
        longer there: an earlier delivery of the same job may have assembled it."""
        plan = PartPlan.for_size(file.size)
        try:
            parts = {p.number: p for p in self._blobs.stored_parts(file.key, upload_id)}
        except UploadGone:
            return False
        problems: list[FieldError] = []
        missing = [n for n in range(1, plan.count + 1) if n not in parts]
        if missing:
            problems.append(
                FieldError("parts", "missing part(s) " + ", ".join(str(n) for n in missing[:50]))
            )
        extra = sorted(n for n in parts if n > plan.count)
        if extra:
            problems.append(FieldError("parts", f"unexpected part(s) {extra[:50]}"))
        for number, part in sorted(parts.items()):
            if number <= plan.count and part.size != plan.size_of(number):
                problems.append(
                    FieldError(
                        f"parts.{number}",
                        f"has {part.size} bytes, expected {plan.size_of(number)}",
                    )
                )
        if problems:
            raise Unverified(problems)
        try:
            self._blobs.complete_multipart(file.key, upload_id, [parts[n] for n in sorted(parts)])
        except UploadGone:
            return False  # completed (or aborted) meanwhile
        return True

    def discard(self, file: FileRecord | FileRef) -> None:
        """Remove everything stored for a file that will never be published."""
        if file.upload_id is not None:
            self._blobs.abort_multipart(file.key, file.upload_id)
        self._blobs.delete(file.key)
        self._blobs.delete(metadata_key(file.key))


def _not_stored(file: FileRecord) -> Unverified:
    """Why there are no bytes to verify at the file's key."""
    if file.upload_id is not None:
        return upload_gone()  # neither the upload nor an object assembled from it
    return Unverified([FieldError("file", "no bytes were uploaded for this file")])


def _check_hashes(file: FileRecord, actual: dict[str, str], size: int) -> None:
    """Every digest the uploader declared, against the bytes' (PEP 694: all hashes
    provided MUST be valid for the file), and the size."""
    problems = [
        FieldError(f"hashes.{name}", f"declared {expected}, uploaded file has {actual[name]}")
        for name, expected in sorted(file.hashes.items())
        if actual[name] != expected
    ]
    if size != file.size:
        problems.append(FieldError("size", f"declared {file.size}, read {size}"))
    if problems:
        raise Unverified(problems)
