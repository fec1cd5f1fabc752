"""What the index stores, as plain typed records. Adapters map them to items."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from .states import FileEvent, FileStatus, SessionEvent, SessionStatus, file_move, session_move


class ProjectStatus(StrEnum):
    # A first-release session holds the name (PEP 694 "Create a Publishing Session");
    # publishing it turns the reservation into a registration.
    RESERVED = "reserved"
    REGISTERED = "registered"


class Role(StrEnum):
    OWNER = "owner"
    MAINTAINER = "maintainer"


UPLOAD_ROLES = frozenset({Role.OWNER, Role.MAINTAINER})


# The files a session lists at most (SessionRecord.file_ids): read along with the project
# and the role, they fit one BatchGetItem (100 keys) with room for a few added at once.
LISTED_FILES_MAX = 95
# The most files a publish reserves and commits in one write (publish_at_once): what one
# DynamoDB transaction (100 items) holds besides the session's move and a first
# release's commit. Both stores keep to it, so the service runs the same path on either;
# a larger release takes the locked protocol.
PUBLISH_AT_ONCE_MAX_FILES = 92


@dataclass
class SessionRecord:
    id: str
    token: str
    project: str
    version: str
    version_key: str
    status: SessionStatus
    created_at: int
    expires_at: int
    created_by: str | None  # username; None when the operator's admin token created it
    first_release: bool
    notices: list[str] = field(default_factory=list)
    publish_lock_until: int | None = None
    ended_at: int | None = None
    # A legacy upload's own one-file session: it does not claim its release (invariant
    # 3 is for PEP 694 sessions), so a CI matrix's parallel twine uploads of one release
    # each publish their file; their filename reservations keep files unique.
    legacy: bool = False
    # Every file upload session created in it (canceled ones too), and how many changes
    # its files have had: a publish reads the files by key in the round trip that reads
    # the principal's standing, and commits on the condition that the count is still the
    # one read (no lock, no query). None for a session stored before the store kept them.
    # Past LISTED_FILES_MAX files the list is dropped (None): they are read by a query.
    file_ids: frozenset[str] | None = frozenset()
    revision: int = 0

    @property
    def first_owner(self) -> str | None:
        """Who publishing this session makes the project's owner: a first release's
        creator (None for the operator's admin token, and for any other release)."""
        return self.created_by if self.first_release else None

    def expired(self, now: int) -> bool:
        return not self.status.terminal and self.expires_at <= now

    def after(
        self, event: SessionEvent, now: int, notices: list[str] | None = None
    ) -> SessionRecord:
        """The session as the transition leaves it: what a store answers for a move its
        conditional write made, without reading it back."""
        _, target = session_move(event)
        notices = self.notices if notices is None else notices
        # A move takes any publish lock with it: only its holder may move a locked session.
        moved = replace(self, status=target, notices=notices, publish_lock_until=None)
        return replace(moved, ended_at=now) if target.terminal else moved


def reservation_abandoned(holder: SessionRecord, now: int) -> bool:
    """Whether a filename reservation held by `holder` may be taken over: its publisher
    never committed and never will. A session that is processing, or published (the two
    reads of marker and session are not one snapshot: it may have committed between
    them), keeps its names; an editable or canceled one whose publish lock lapsed (or
    that holds none) left them behind."""
    if holder.status in (SessionStatus.PROCESSING, SessionStatus.PUBLISHED):
        return False
    return holder.publish_lock_until is None or holder.publish_lock_until < now


@dataclass(frozen=True)
class FileRef:
    """A file as its session's filename slot records it: what never changes about it
    (its id, key and multipart upload). Enough to replace it without reading it: the
    replacing write is conditional on its status (PEP 694 "Replacing a Partially or
    Fully Uploaded File")."""

    session_id: str
    id: str
    key: str
    upload_id: str | None


@dataclass
class FileRecord:
    id: str
    session_id: str
    filename: str
    size: int
    hashes: dict[str, str]
    mechanism: str
    status: FileStatus
    key: str
    created_at: int
    notices: list[str] = field(default_factory=list)
    upload_id: str | None = None  # the S3 multipart upload of the vendor mechanism
    # The API tokens that had part URLs signed for this file: completion re-authorizes
    # each, so a revoked token's URLs cannot smuggle bytes into the file.
    signers: frozenset[str] = frozenset()
    # Known once the file is verified, and published with it (simple API, PEP 658/700).
    metadata_sha256: str | None = None
    requires_python: str | None = None
    uploaded_at: int | None = None

    @property
    def ref(self) -> FileRef:
        return FileRef(self.session_id, self.id, self.key, self.upload_id)

    def after(
        self, event: FileEvent, notices: list[str] | None = None, verified: Verified | None = None
    ) -> FileRecord:
        """The file as the transition leaves it (with what verification learned, if
        given): what a store answers for a move, without reading it back."""
        _, target = file_move(event)
        moved = replace(self, status=target, notices=self.notices if notices is None else notices)
        if verified is None:
            return moved
        return replace(
            moved,
            metadata_sha256=verified.metadata_sha256,
            requires_python=verified.requires_python,
            uploaded_at=verified.uploaded_at,
        )


@dataclass(frozen=True)
class Verified:
    """What verification learned about a file's content."""

    # None when installers must not resolve from it (an sdist's core metadata that is
    # not static, core-metadata.rst "Dynamic"): the simple API does not advertise it.
    metadata_sha256: str | None
    requires_python: str | None
    uploaded_at: int


@dataclass(frozen=True)
class ProjectRecord:
    name: str
    status: ProjectStatus
    # A reservation: the creator (None: the operator's admin token) and its live
    # first-release sessions holding the name.
    reserved_for: str | None
    holders: frozenset[str]
    created_at: int
    # Publishes committed so far: each commit adds one in the same write, so a reader
    # that has the project's page for this revision need read nothing else.
    revision: int = 0
    # The session of the latest commit and when it committed, written with the revision:
    # with them, a revision names one state of the project even across a restore of the
    # table to an earlier point in time (which counts revisions again, and may see the
    # same session commit again, with other files), as the project's listings need.
    last_commit: str | None = None
    last_commit_at: int | None = None

    @property
    def state(self) -> ProjectState:
        """What names the project's published files as they are: its revision, and the
        commit that made it (the revision alone repeats after a restored table)."""
        return self.revision, self.last_commit, self.last_commit_at


# A project's revision, the session of its latest commit, and when that committed.
ProjectState = tuple[int, str | None, int | None]


@dataclass(frozen=True)
class Commit:
    """A publish of a project as its commit marker records it."""

    version_key: str
    committed_at: int | None


@dataclass(frozen=True)
class TokenRecord:
    id: str
    username: str
    secret_hash: str
    description: str
    projects: frozenset[str] | None  # None: any project the user has a role on
    created_at: int


@dataclass(frozen=True)
class Principal:
    """Who is asking, resolved from the request's token on every request."""

    username: str | None
    token_id: str | None
    projects: frozenset[str] | None = None

    @property
    def is_admin(self) -> bool:
        return self.username is None

    def token_allows(self, project: str) -> bool:
        return self.projects is None or project in self.projects


ADMIN = Principal(username=None, token_id=None)


@dataclass(frozen=True)
class PublishedFile:
    project: str
    version: str
    filename: str
    session_id: str
    file_id: str
    key: str
    size: int
    hashes: dict[str, str]
    published_at: int
    metadata_sha256: str | None = None
    requires_python: str | None = None
    uploaded_at: int | None = None
    # PEP 592: no API sets it yet; the index renders it when a file carries it.
    yanked: str | None = None
