"""Ports: what the services need from the outside world, and the domain-level failures
adapters report (never an AWS error code; the services never see botocore).

The store's four jobs each have a port: who may do what (AccessStore), sessions and
their files (SessionStore), the publish protocol (PublishStore) and what readers of the
index see (IndexStore). DynamoDB implements them in production (adapters/dynamodb), plain
dicts in tests (adapters/memory/store.py); tests/test_store_contract.py holds both to the
same behaviour. Every state change is conditional: a write the state machines
(domain/states.py) or the invariants forbid fails with a StoreConflict carrying what the
store found, whatever the interleaving."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .records import (
    Commit,
    FileRecord,
    FileRef,
    ProjectRecord,
    PublishedFile,
    Role,
    SessionRecord,
    TokenRecord,
    Verified,
)
from .states import FileEvent, SessionEvent


class Clock(Protocol):
    def now(self) -> int: ...


@dataclass(frozen=True)
class BlobInfo:
    size: int
    etag: str


@dataclass(frozen=True)
class Listed:
    key: str
    written_at: int  # epoch seconds


@dataclass(frozen=True)
class Fetched:
    """A whole object, and the SHA-256 the store itself checked the bytes against when
    they were written (hex; None when it checked none): S3 refuses a PUT whose bytes
    differ from its signed x-amz-checksum-sha256 and answers that checksum later."""

    data: bytes  # empty when the object is not the size asked for: it was not read
    sha256: str | None
    size: int


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str
    sha256: str | None  # base64, as S3 reports x-amz-checksum-sha256


class BlobStore(Protocol):
    """Where file bytes live (S3 in production)."""

    def start_multipart(self, key: str) -> str:
        """Begin a multipart upload to `key`; its upload id."""
        ...

    def stored_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """Every part stored so far, in part-number order (all pages of ListParts).
        Raises UploadGone when the multipart upload no longer exists."""
        ...

    def presign_part(
        self, key: str, upload_id: str, number: int, size: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """A URL for PUTting one part of `size` bytes with that SHA-256, and the headers the
        client must send with it (both are signed: S3 refuses other bytes)."""
        ...

    def presign_put(
        self, key: str, size: int, sha256_b64: str, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """A URL for PUTting the whole object at `key`, `size` bytes with that SHA-256,
        and the headers the client must send with it. It writes only where nothing is:
        sent again once the object exists, it is refused (412), so it can never replace a
        completed file."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        """Assemble the object from `parts`; UploadGone when the upload no longer exists."""
        ...

    def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> str:
        """A URL that downloads `key` for `expires_in` seconds (staged files), answered
        with that Content-Type and Cache-Control if given."""
        ...

    def mark_public(self, keys: Sequence[str]) -> None:
        """Let the edge serve every key (an object tag: it keeps the ETag). Many at once:
        an inline publish of up to WHARF_INLINE_PUBLISH_MAX_FILES files must finish well
        within API Gateway's 29 s."""
        ...

    def is_public(self, key: str) -> bool:
        """Whether the edge may serve `key` (False for no such object)."""
        ...

    def all_public(self, keys: Sequence[str]) -> bool:
        """Whether every key is public, asked many at once (as mark_public)."""
        ...

    def put_public(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        """Store `data` at `key`, served by the edge from its first byte (public at write)
        with that Content-Type and Cache-Control, unless something is there already: such
        a key names its content."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an unfinished multipart upload and its parts (idempotent)."""
        ...

    def put_new(self, key: str, data: bytes) -> bool:
        """Store `data` at `key` unless something is there; False if it was."""
        ...

    def replace(self, key: str, data: bytes) -> None:
        """Store `data` at `key`, private, whatever is there: for what the index keeps
        of itself (never a file's bytes, which are written once: invariant 5)."""
        ...

    def head(self, key: str) -> BlobInfo | None: ...

    def fetch(self, key: str, size: int) -> Fetched | None:
        """The whole object in one request, if it has `size` bytes (it is held in memory:
        a stored object of another size is not read); None when there is none."""
        ...

    def listed(self, prefix: str) -> list[Listed]:
        """Every object whose key starts with `prefix` (all pages of the listing)."""
        ...

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer at the end); BlobGone when there is no object."""
        ...

    def stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object's bytes; BlobGone when there is no such object (never was, or was
        deleted meanwhile, e.g. by a cancel racing a verification)."""
        ...

    def delete(self, key: str) -> None: ...


class EdgeCache(Protocol):
    """The CDN in front of the index (CloudFront in AWS; nothing caches locally)."""

    def invalidate(self, paths: list[str]) -> None: ...


class JobQueue(Protocol):
    """Deferred work (SQS in production); delivery is at least once."""

    def send(self, job: dict[str, str]) -> None:
        """Queue `job`; QueueUnavailable when the queue certainly did not take it."""
        ...


class BlobGone(Exception):
    """The object is not in the blob store (any more)."""


class UploadGone(Exception):
    """The multipart upload is not in the blob store any more: aborted by the bucket's
    lifecycle rule for abandoned uploads, or by a cancel. Its parts are lost."""


class StoreBusy(Exception):
    """Writes kept colliding with other transactions on the same items (DynamoDB's
    TransactionConflict) after every retry: nothing was written; the caller may retry
    the whole request later."""

    retry_after = 1
    detail = "Other requests are changing the same data right now; retry shortly."


class QueueUnavailable(StoreBusy):
    """The job queue did not take a job. The caller puts back what it had moved for the
    job, so nothing was done and the request may be retried as it is."""

    retry_after = 5
    detail = (
        "The server could not queue the work this request hands over; nothing changed: "
        "retry shortly."
    )


class StoreConflict(Exception):
    """A conditional write found the data in another state than it required."""


class AlreadyExists(StoreConflict):
    pass


class UnknownUser(StoreConflict):
    """The user a token or role was for is not there (never was, or just deleted)."""


class LiveSessionExists(StoreConflict):
    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class ProjectTaken(StoreConflict):
    """The project record appeared (or changed) between our read and our write."""


class SessionChanged(StoreConflict):
    """The session is not in a state that allows the write; carries what it is now."""

    def __init__(self, current: SessionRecord | None) -> None:
        super().__init__(current.status if current else "gone")
        self.current = current


class FileChanged(StoreConflict):
    def __init__(self, current: FileRecord | None) -> None:
        super().__init__(current.status if current else "gone")
        self.current = current


class FilenameInUse(StoreConflict):
    def __init__(self, file_id: str) -> None:
        super().__init__(file_id)
        self.file_id = file_id


class Unexposed(NamedTuple):
    """A commit whose files the edge may not serve yet (PublishStore.unexposed)."""

    session_id: str
    project: str
    version_key: str | None  # its release (None: an entry written before it was kept)


class AccessStore(Protocol):
    """Users, their tokens and roles, and a user's standing on a project."""

    def create_user(self, username: str, now: int) -> None:
        """AlreadyExists if the user is there."""
        ...

    def user_created_at(self, username: str) -> int | None: ...

    def users(self) -> list[tuple[str, int]]:
        """(username, created at) of every user, by name."""
        ...

    def delete_user(self, username: str) -> bool:
        """Revoke the user's tokens and roles, then remove the user. False if unknown."""
        ...

    def put_token(self, token: TokenRecord) -> None:
        """UnknownUser unless the token's user exists (also when deleted meanwhile)."""
        ...

    def get_token(self, token_id: str) -> TokenRecord | None: ...

    def user_tokens(self, username: str) -> list[TokenRecord]: ...

    def delete_token(self, token_id: str) -> bool: ...

    def put_role(self, project: str, username: str, role: Role) -> None:
        """UnknownUser unless the user exists."""
        ...

    def delete_role(self, project: str, username: str) -> bool: ...

    def get_standing(self, project: str, username: str) -> tuple[ProjectRecord | None, Role | None]:
        """The project (as get_project) and the user's role on it, in one read."""
        ...

    def project_roles(self, project: str) -> list[tuple[str, Role]]:
        """(username, role) of everyone with a role on the project, by name."""
        ...

    def user_roles(self, username: str) -> list[tuple[str, Role]]:
        """(project, role) of every role the user holds, by project."""
        ...


class SessionStore(Protocol):
    """Publishing sessions and their file upload sessions (PEP 694's two state machines),
    and the project names sessions reserve."""

    def get_project(self, project: str) -> ProjectRecord | None:
        """The project, or None for a free name: never held, or a reservation whose every
        holder ended."""
        ...

    def create_session(self, session: SessionRecord, *, reserve_project: bool) -> None:
        """Store a new open session, claiming its release (invariant 3) and, for a first
        release, the name. LiveSessionExists when another session holds the release;
        ProjectTaken when the name is not (or no longer) as the caller read it."""
        ...

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def get_session_and_files(
        self, session_id: str
    ) -> tuple[SessionRecord | None, list[FileRecord]]:
        """The session and all its files, canceled ones included, in one read."""
        ...

    def files_of(self, session: SessionRecord) -> list[FileRecord]:
        """The session's files, canceled ones included, as get_session_and_files reads
        them (but after `session` was read: a change meanwhile counts in the session's
        revision, so a write conditional on that revision sees it)."""
        ...

    def files_read_along(self, session: SessionRecord) -> AbstractContextManager[None]:
        """For the request in progress: the next round trip in the block also reads what
        files_of reads, which then answers from it (as filename_read_along)."""
        ...

    def move_session(
        self,
        session: SessionRecord,
        event: SessionEvent,
        now: int,
        *,
        notices: list[str] | None = None,
        by_lock_holder: bool = False,
        as_read: bool = False,
    ) -> SessionRecord:
        """Apply a transition other than a publish commit; SessionChanged (with the
        session as it is) when the table does not allow it from the current state, or
        the session is locked for publishing (unless `by_lock_holder`: the caller took
        the lock `session` carries, and the move needs it still held), or (`as_read`)
        its files changed since `session` was read (its revision). A move removes the
        lock; a terminal one frees the release and a first release's name. Answers the
        session as given with the move applied (nothing is read back)."""
        ...

    def extend_session(self, session: SessionRecord, expires_at: int, now: int) -> SessionRecord:
        """Move expires-at later (never earlier) while the session is not terminal."""
        ...

    def expiring_session_ids(self, now: int, limit: int = 100) -> list[str]:
        """Ids of non-terminal sessions whose expires-at has passed."""
        ...

    def get_file(self, session_id: str, file_id: str) -> FileRecord | None: ...

    def get_session_and_file(
        self, session_id: str, file_id: str
    ) -> tuple[SessionRecord | None, FileRecord | None]:
        """A file upload session and its publishing session, in one read."""
        ...

    def filename_in_release(
        self, session: SessionRecord, filename: str
    ) -> tuple[FileRef | None, PublishedFile | None]:
        """The session's live file of that name, as its filename slot records it (what
        replacing it needs), and the release's published file of that name
        (names.filename_key: however it is spelled)."""
        ...

    def filename_read_along(
        self, session: SessionRecord, filename: str
    ) -> AbstractContextManager[None]:
        """For the request in progress: the next round trip in the block also reads what
        filename_in_release reads, which then answers from it. Only a saving: creating a
        file reads the principal's standing, then the filename's holders, and their keys
        are known together."""
        ...

    def add_file(
        self, session: SessionRecord, file: FileRecord, now: int, *, replaces: FileRef | None
    ) -> None:
        """Add a pending file to an editable session (SessionChanged otherwise); a
        filename is unique among the session's live files (FilenameInUse); `replaces`
        is canceled in the same write, if it is completed or failed
        (REPLACEABLE_FILE_STATES; FileChanged with it as it is otherwise). The session
        lists the file and counts one more revision."""
        ...

    def move_file(
        self,
        file: FileRecord,
        event: FileEvent,
        now: int,
        *,
        notices: list[str] | None = None,
        verified: Verified | None = None,
    ) -> FileRecord:
        """Apply a file transition while its session is editable (SessionChanged), from a
        state the table allows (FileChanged). Canceling frees the filename. The session
        counts one more revision. Answers the file as given with the move applied
        (nothing is read back)."""
        ...

    def add_signer(self, file: FileRecord, token_id: str) -> None:
        """Record that the token had part URLs signed for the pending file."""
        ...

    def add_file_notices(self, file: FileRecord, notices: list[str]) -> None:
        """Append to the file's notices; FileChanged(None) if the file is gone."""
        ...

    def lock_for_publish(self, session: SessionRecord, now: int, until: int) -> SessionRecord:
        """Hold an editable session still until `until` (every change of an editable
        session requires no live lock); SessionChanged otherwise."""
        ...

    def unlock_publish(self, session: SessionRecord) -> None: ...


class PublishStore(Protocol):
    """The publish protocol (PEP 694 "Atomic Publication and Conflicts"): reserve every
    filename of the release, then one write commits them all (invariant 2)."""

    def reserve_filenames(
        self, session: SessionRecord, files: Sequence[FileRecord], now: int
    ) -> dict[str, str]:
        """{filename: holding session} of the names another published or publishing
        session holds; the others are now reserved for `session`."""
        ...

    def release_filenames(self, session: SessionRecord, files: Iterable[FileRecord]) -> None:
        """Give back reservations of a publish that did not commit (never after it did)."""
        ...

    def commit_publish(
        self,
        session: SessionRecord,
        now: int,
        *,
        owner: str | None,
        event: SessionEvent = SessionEvent.PUBLISH,
        registers: bool | None = None,
    ) -> SessionRecord:
        """The one write that publishes: session published, commit marker, release
        freed, outbox entry, and (registers) the reserved name registered with `owner`.
        SessionChanged, or ProjectTaken when the name is not as `registers` says."""
        ...

    def publish_at_once(
        self, session: SessionRecord, files: Sequence[FileRecord], now: int
    ) -> SessionRecord | None:
        """Reserve and commit in one write, without the lock: what commit_publish does,
        and the names reserved, on the condition that the session is still editable,
        unlocked, unexpired and of the revision `session` carries (so `files`, read
        after it, are still its files), that no other session holds a name, and that a
        first release's name is still its reservation (registered with its creator as
        owner). The session published, or None with nothing written when any of that
        fails or the release has more than PUBLISH_AT_ONCE_MAX_FILES files: then the
        locked protocol."""
        ...

    def publish_whole(self, session: SessionRecord, file: FileRecord, now: int) -> bool:
        """A legacy upload in one write: `session` (a legacy one, new, open, of no files:
        it claims no release) stored published with its one `file` (new, completed), the
        name reserved and the commit made; on the condition that no Upload 2.0 session
        of the release is live, no session holds the name, and the project is as
        `session.first_release` says: registered, or a free name or its creator's own
        reservation (which it registers, the creator its owner). False, with nothing
        written, when any of that fails."""
        ...

    def unexposed(self, committed_before: int) -> list[Unexposed]:
        """Commits before that time not yet mark_exposed."""
        ...

    def mark_exposed(self, session_id: str) -> None: ...


class IndexStore(Protocol):
    """What the index's readers see: registered projects and committed files only."""

    def project_names(self) -> list[str]: ...

    def published_file(
        self, project: str, version_key: str, filename: str
    ) -> PublishedFile | None: ...

    def published_files(
        self,
        project: str,
        committed: frozenset[str] | None = None,
        *,
        version_key: str | None = None,
    ) -> list[PublishedFile]:
        """Every file of the project (of its release `version_key`, if given) whose
        session's commit was seen (`committed`, or read first): all of a publish's files
        or none of them."""
        ...

    def commits(self, project: str) -> dict[str, Commit]:
        """The sessions whose publish of the project committed, each as its commit marker
        records it: read before the files, as `committed`."""
        ...


class ReadAhead(Protocol):
    def reading_ahead(
        self, *, token_id: str | None, session_id: str | None, file_id: str | None
    ) -> AbstractContextManager[None]:
        """For the request in progress: read the token, session and file it names (those
        not None) in one round trip, and answer the first read of each from that. Only a
        saving: every read answers as it would without it."""
        ...


class Store(AccessStore, SessionStore, PublishStore, IndexStore, ReadAhead, Protocol):
    """The four jobs on one store, as the wiring builds it (DynamoDB, or memory)."""
