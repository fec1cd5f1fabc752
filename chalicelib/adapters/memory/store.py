"""The store ports (AccessStore, SessionStore, PublishStore, IndexStore) in plain dicts:
the fake that lets service unit tests run in milliseconds, without moto.

tests/test_store_contract.py holds it to the behaviour of the DynamoDB store
(adapters/dynamodb), which is the reference: the same conditional writes, refused with
the same StoreConflict carrying the same record. One lock makes every method a single
atomic step, as a DynamoDB transaction is. What is DynamoDB's own (TTL and retention,
retries after transaction conflicts, batched reads) has no equivalent here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace

from ...domain.names import filename_key
from ...domain.ports import (
    AlreadyExists,
    FileChanged,
    FilenameInUse,
    LiveSessionExists,
    ProjectTaken,
    SessionChanged,
    Unexposed,
    UnknownUser,
)
from ...domain.records import (
    LISTED_FILES_MAX,
    PUBLISH_AT_ONCE_MAX_FILES,
    Commit,
    FileRecord,
    FileRef,
    ProjectRecord,
    ProjectStatus,
    PublishedFile,
    Role,
    SessionRecord,
    TokenRecord,
    Verified,
    reservation_abandoned,
)
from ...domain.states import (
    EDITABLE_SESSION_STATES,
    REPLACEABLE_FILE_STATES,
    UPLOADING_FILE_STATES,
    FileEvent,
    FileStatus,
    SessionEvent,
    SessionStatus,
    file_move,
    session_move,
)

# (project, version key, filename key): a filename of a release, reserved or published.
NameKey = tuple[str, str, str]


# Sessions and files carry lists and dicts: the store keeps its own copies, so a caller
# changing a record it was given (or gave) never changes what is stored, as with DynamoDB.
def _session_copy(session: SessionRecord) -> SessionRecord:
    return replace(session, notices=list(session.notices))


def _file_copy(file: FileRecord) -> FileRecord:
    return replace(file, notices=list(file.notices), hashes=dict(file.hashes))


def _published_copy(file: PublishedFile) -> PublishedFile:
    return replace(file, hashes=dict(file.hashes))


def _session_changed(current: SessionRecord | None) -> SessionChanged:
    return SessionChanged(None if current is None else _session_copy(current))


def _file_changed(current: FileRecord | None) -> FileChanged:
    return FileChanged(None if current is None else _file_copy(current))


def _editable(
    session: SessionRecord, now: int, *, expired: bool = False, lock: int | None = None
) -> bool:
    """The session accepts changes: open or error, no live publish lock, and not expired
    (for the expiry itself: expired); for the lock's holder, its lock `lock` still held
    and live, whatever the expiry. adapters/dynamodb/table.editable_condition."""
    if lock is not None:  # the holder's: still held and live, whatever the expiry
        return session.status.editable and session.publish_lock_until == lock >= now
    if not session.status.editable or (session.expires_at <= now) != expired:
        return False
    return session.publish_lock_until is None or session.publish_lock_until < now


def _free_name(project: ProjectRecord | None) -> bool:
    # The table keeps a reservation whose holders all ended; it reads as a free name.
    return project is None or (project.status is ProjectStatus.RESERVED and not project.holders)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}  # username -> created at
        self._tokens: dict[str, TokenRecord] = {}
        self._roles: dict[tuple[str, str], Role] = {}  # (project, username)
        self._projects: dict[str, ProjectRecord] = {}
        self._project_index: set[str] = set()  # registered names, for the simple API root
        self._sessions: dict[str, SessionRecord] = {}
        self._files: dict[str, dict[str, FileRecord]] = {}  # session id -> file id -> file
        # (session id, filename key) -> the file holding it, as DynamoDB's slot keeps it
        self._slots: dict[tuple[str, str], FileRef] = {}
        self._live: dict[tuple[str, str], str] = {}  # (project, version key) -> session id
        self._names: dict[NameKey, PublishedFile] = {}  # reserved, or published if committed
        self._commits: dict[tuple[str, str], Commit] = {}  # (project, session id): markers
        # session id -> (project, version key, committed at)
        self._outbox: dict[str, tuple[str, str, int]] = {}

    # -- users, tokens, roles ------------------------------------------------------------

    def reading_ahead(
        self, *, token_id: str | None, session_id: str | None, file_id: str | None
    ) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # reads cost nothing here

    def create_user(self, username: str, now: int) -> None:
        with self._lock:
            if username in self._users:
                raise AlreadyExists(username)
            self._users[username] = now

    def user_created_at(self, username: str) -> int | None:
        with self._lock:
            return self._users.get(username)

    def users(self) -> list[tuple[str, int]]:
        with self._lock:
            return sorted(self._users.items())

    def delete_user(self, username: str) -> bool:
        with self._lock:
            if self._users.pop(username, None) is None:
                return False
            for token in [t for t in self._tokens.values() if t.username == username]:
                del self._tokens[token.id]
            for key in [k for k in self._roles if k[1] == username]:
                del self._roles[key]
            return True

    def _require_user(self, username: str) -> None:
        # Checked in the same step as the write, so nothing is granted to a user that a
        # concurrent delete_user removed.
        if username not in self._users:
            raise UnknownUser(username)

    def put_token(self, token: TokenRecord) -> None:
        with self._lock:
            self._require_user(token.username)
            if token.id in self._tokens:
                raise AlreadyExists(token.id)
            self._tokens[token.id] = token

    def get_token(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(token_id)

    def user_tokens(self, username: str) -> list[TokenRecord]:
        with self._lock:
            return [t for _, t in sorted(self._tokens.items()) if t.username == username]

    def delete_token(self, token_id: str) -> bool:
        with self._lock:
            return self._tokens.pop(token_id, None) is not None

    def put_role(self, project: str, username: str, role: Role) -> None:
        with self._lock:
            self._require_user(username)
            self._roles[(project, username)] = role

    def delete_role(self, project: str, username: str) -> bool:
        with self._lock:
            return self._roles.pop((project, username), None) is not None

    def get_standing(self, project: str, username: str) -> tuple[ProjectRecord | None, Role | None]:
        with self._lock:
            return self._project(project), self._roles.get((project, username))

    def project_roles(self, project: str) -> list[tuple[str, Role]]:
        with self._lock:
            return sorted((user, role) for (p, user), role in self._roles.items() if p == project)

    def user_roles(self, username: str) -> list[tuple[str, Role]]:
        with self._lock:
            return sorted((p, role) for (p, user), role in self._roles.items() if user == username)

    def get_project(self, project: str) -> ProjectRecord | None:
        with self._lock:
            return self._project(project)

    def _project(self, name: str) -> ProjectRecord | None:
        project = self._projects.get(name)
        return None if _free_name(project) else project

    # -- publishing sessions ------------------------------------------------------------

    def create_session(self, session: SessionRecord, *, reserve_project: bool) -> None:
        release = (session.project, session.version_key)
        with self._lock:
            # The order in which DynamoStore reports its failed conditions.
            holder = self._live.get(release)
            if holder is not None:
                raise LiveSessionExists(holder)
            if reserve_project:
                project = self._reserved_name(session)
            elif not self._registered(session.project):
                raise ProjectTaken(session.project)
            if session.id in self._sessions:
                raise AlreadyExists(session.id)
            # The lock is never part of a new session (DynamoDB does not store it).
            self._sessions[session.id] = replace(_session_copy(session), publish_lock_until=None)
            if not session.legacy:  # a legacy session checks the claim, and claims nothing
                self._live[release] = session.id
            if reserve_project:
                self._projects[session.project] = project

    def _registered(self, name: str) -> bool:
        project = self._projects.get(name)
        return project is not None and project.status is ProjectStatus.REGISTERED

    def _reserved_name(self, session: SessionRecord) -> ProjectRecord:
        """The name held for a first release: new, or joining its creator's reservation
        (one publisher may open several versions of a new project); ProjectTaken if the
        name is registered or another creator's live sessions hold it."""
        current = self._projects.get(session.project)
        if current is not None and not _free_name(current):
            # The admin token (no username) is stored as "" in DynamoDB: None matches None.
            mine = (current.reserved_for or "") == (session.created_by or "")
            if current.status is not ProjectStatus.RESERVED or not mine:
                raise ProjectTaken(session.project)
        return ProjectRecord(
            name=session.project,
            status=ProjectStatus.RESERVED,
            reserved_for=session.created_by,
            holders=(current.holders if current else frozenset()) | {session.id},
            # Kept from the first reservation of the name (if_not_exists in DynamoDB).
            created_at=current.created_at if current else session.created_at,
        )

    def live_session_id(self, project: str, version_key: str) -> str | None:
        """The release's live session, as DynamoStore.live_session_id (not in a port)."""
        with self._lock:
            return self._live.get((project, version_key))

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            current = self._sessions.get(session_id)
            return None if current is None else _session_copy(current)

    def get_session_and_files(
        self, session_id: str
    ) -> tuple[SessionRecord | None, list[FileRecord]]:
        with self._lock:
            current = self._sessions.get(session_id)
            files = sorted(self._files.get(session_id, {}).items())  # by id, as DynamoDB
            return (
                None if current is None else _session_copy(current),
                [_file_copy(f) for _, f in files],
            )

    def files_of(self, session: SessionRecord) -> list[FileRecord]:
        return self.get_session_and_files(session.id)[1]

    def files_read_along(self, session: SessionRecord) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # reads cost nothing here

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
        sources, target = session_move(event)
        lock = session.publish_lock_until if by_lock_holder else None
        with self._lock:
            current = self._sessions.get(session.id)
            if (
                current is None
                or not self._may_move(current, sources, event, now, lock)
                or (as_read and current.revision != session.revision)
            ):
                raise _session_changed(current)
            if target.terminal:
                self._release_claims(current)
            self._sessions[session.id] = current.after(event, now, notices)
            # As DynamoDB answers (the port): the caller's record moved, nothing read back.
            return _session_copy(session.after(event, now, notices))

    @staticmethod
    def _may_move(
        current: SessionRecord,
        sources: frozenset[SessionStatus],
        event: SessionEvent,
        now: int,
        lock: int | None,
    ) -> bool:
        # Moves out of an editable state change an editable session: no live lock (or
        # the holder's), and not expired (the expiry itself: expired). Others need only
        # the source state.
        if sources == EDITABLE_SESSION_STATES:
            return _editable(current, now, expired=event is SessionEvent.EXPIRE, lock=lock)
        return current.status in sources

    def _free_release(self, session: SessionRecord) -> None:
        release = (session.project, session.version_key)
        if not session.legacy and self._live.get(release) == session.id:
            del self._live[release]

    def _release_claims(self, session: SessionRecord) -> None:
        """An ending session frees its release and leaves its name's holders; with no
        holder left the name reads as free (the reservation itself stays)."""
        self._free_release(session)
        project = self._projects.get(session.project)
        if session.first_release and project is not None:
            self._projects[session.project] = replace(
                project, holders=project.holders - {session.id}
            )

    def extend_session(self, session: SessionRecord, expires_at: int, now: int) -> SessionRecord:
        with self._lock:
            current = self._sessions.get(session.id)
            # Not terminal (open, error or processing), not expired, and never earlier.
            if (
                current is None
                or current.status.terminal
                or not now < current.expires_at <= expires_at
            ):
                raise _session_changed(current)
            extended = replace(current, expires_at=expires_at)
            self._sessions[session.id] = extended
            return _session_copy(extended)

    def expiring_session_ids(self, now: int, limit: int = 100) -> list[str]:
        with self._lock:
            due = sorted(
                (s.expires_at, s.id)
                for s in self._sessions.values()
                if not s.status.terminal and s.expires_at <= now
            )
            return [session_id for _, session_id in due[:limit]]

    # -- file upload sessions ----------------------------------------------------------

    def _stored_file(self, session_id: str, file_id: str) -> FileRecord | None:
        return self._files.get(session_id, {}).get(file_id)

    def get_file(self, session_id: str, file_id: str) -> FileRecord | None:
        with self._lock:
            file = self._stored_file(session_id, file_id)
            return None if file is None else _file_copy(file)

    def get_session_and_file(
        self, session_id: str, file_id: str
    ) -> tuple[SessionRecord | None, FileRecord | None]:
        with self._lock:
            session = self._sessions.get(session_id)
            file = self._stored_file(session_id, file_id)
            return (
                None if session is None else _session_copy(session),
                None if file is None else _file_copy(file),
            )

    def filename_read_along(
        self, session: SessionRecord, filename: str
    ) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # reads cost nothing here

    def filename_in_release(
        self, session: SessionRecord, filename: str
    ) -> tuple[FileRef | None, PublishedFile | None]:
        key = filename_key(filename)
        with self._lock:
            return (
                self._slots.get((session.id, key)),
                self._committed_name((session.project, session.version_key, key)),
            )

    def _editable_session(self, session_id: str, now: int) -> SessionRecord:
        current = self._sessions.get(session_id)
        if current is None or not _editable(current, now):
            raise _session_changed(current)
        return current

    def add_file(
        self, session: SessionRecord, file: FileRecord, now: int, *, replaces: FileRef | None
    ) -> None:
        slot = (session.id, filename_key(file.filename))
        with self._lock:
            current = self._editable_session(session.id, now)
            holder = self._slots.get(slot)
            # The filename is free, or held by the file this one replaces.
            if holder is not None and (replaces is None or holder.id != replaces.id):
                raise FilenameInUse(holder.id)
            replaced = None if replaces is None else self._replaceable(replaces)
            if self._stored_file(session.id, file.id) is not None:
                raise AlreadyExists(file.id)
            self._files.setdefault(session.id, {})[file.id] = _file_copy(file)
            self._slots[slot] = file.ref
            self._touch(current, new_file=file.id)
            if replaced is not None:
                self._files[replaced.session_id][replaced.id] = replace(
                    replaced, status=FileStatus.CANCELED
                )

    def _touch(self, session: SessionRecord, *, new_file: str | None = None) -> None:
        """Count a change of the session's files (and list a new one)."""
        listed = session.file_ids
        if listed is not None and new_file is not None:
            listed = listed | {new_file} if len(listed) < LISTED_FILES_MAX else None
        self._sessions[session.id] = replace(
            session, file_ids=listed, revision=session.revision + 1
        )

    def _replaceable(self, file: FileRef) -> FileRecord:
        """The stored file, if it may be canceled by a replacement (FileChanged if not)."""
        sources, _ = file_move(FileEvent.CANCEL)
        current = self._stored_file(file.session_id, file.id)
        if current is None or current.status not in sources & REPLACEABLE_FILE_STATES:
            raise _file_changed(current)
        return current

    def move_file(
        self,
        file: FileRecord,
        event: FileEvent,
        now: int,
        *,
        notices: list[str] | None = None,
        verified: Verified | None = None,
    ) -> FileRecord:
        sources, _ = file_move(event)
        with self._lock:
            session = self._editable_session(file.session_id, now)
            current = self._stored_file(file.session_id, file.id)
            if current is None or current.status not in sources:
                raise _file_changed(current)
            self._touch(session)
            if event is FileEvent.CANCEL:  # the filename is free again
                slot = (file.session_id, filename_key(current.filename))
                held = self._slots.get(slot)
                if held is not None and held.id == file.id:
                    del self._slots[slot]
            self._files[file.session_id][file.id] = current.after(event, notices, verified)
            # As DynamoDB answers (the port): the caller's record moved, nothing read back.
            return _file_copy(file.after(event, notices, verified))

    def add_signer(self, file: FileRecord, token_id: str) -> None:
        with self._lock:
            current = self._stored_file(file.session_id, file.id)
            if current is None or current.status not in UPLOADING_FILE_STATES:
                raise _file_changed(current)
            self._files[file.session_id][file.id] = replace(
                current, signers=current.signers | {token_id}
            )

    def add_file_notices(self, file: FileRecord, notices: list[str]) -> None:
        with self._lock:
            current = self._stored_file(file.session_id, file.id)
            if current is None:
                raise _file_changed(None)
            self._files[file.session_id][file.id] = replace(
                current, notices=[*current.notices, *notices]
            )

    def lock_for_publish(self, session: SessionRecord, now: int, until: int) -> SessionRecord:
        with self._lock:
            locked = replace(self._editable_session(session.id, now), publish_lock_until=until)
            self._sessions[session.id] = locked
            return _session_copy(locked)

    def unlock_publish(self, session: SessionRecord) -> None:
        with self._lock:
            current = self._sessions.get(session.id)
            # Only the lock the caller holds: a lapsed one may have been taken since.
            if current is None or current.publish_lock_until is None:
                return
            if current.publish_lock_until == session.publish_lock_until:
                self._sessions[session.id] = replace(current, publish_lock_until=None)

    # -- publishing ----------------------------------------------------------------------

    def reserve_filenames(
        self, session: SessionRecord, files: Sequence[FileRecord], now: int
    ) -> dict[str, str]:
        conflicts: dict[str, str] = {}
        with self._lock:
            for file in files:
                holder = self._holder(session, file)
                if holder not in (None, session.id) and not self._stale(
                    session.project, holder, now
                ):
                    conflicts[file.filename] = holder
                    continue
                self._reserve(session, file, now)
        return conflicts

    @staticmethod
    def _name_key(session: SessionRecord, file: FileRecord) -> NameKey:
        return (session.project, session.version_key, filename_key(file.filename))

    def _holder(self, session: SessionRecord, file: FileRecord) -> str | None:
        """The session holding the file's name in the release, reserved or published."""
        held = self._names.get(self._name_key(session, file))
        return None if held is None else held.session_id

    def _reserve(self, session: SessionRecord, file: FileRecord, now: int) -> None:
        self._names[self._name_key(session, file)] = PublishedFile(
            project=session.project,
            version=session.version,
            filename=file.filename,
            session_id=session.id,
            file_id=file.id,
            key=file.key,
            size=file.size,
            hashes=dict(file.hashes),
            published_at=now,
            metadata_sha256=file.metadata_sha256,
            requires_python=file.requires_python,
            uploaded_at=file.uploaded_at,
        )

    def _stale(self, project: str, holder: str, now: int) -> bool:
        """A reservation left by a publisher that never committed and will not: its
        session is gone, or records.reservation_abandoned says so."""
        if (project, holder) in self._commits:
            return False  # published: permanent
        other = self._sessions.get(holder)
        return other is None or reservation_abandoned(other, now)

    def release_filenames(self, session: SessionRecord, files: Iterable[FileRecord]) -> None:
        with self._lock:
            if (session.project, session.id) in self._commits:
                return  # committed after all (the answer was lost): these are published
            for file in files:
                if self._holder(session, file) == session.id:  # not taken over
                    del self._names[self._name_key(session, file)]

    def commit_publish(
        self,
        session: SessionRecord,
        now: int,
        *,
        owner: str | None,
        event: SessionEvent = SessionEvent.PUBLISH,
        registers: bool | None = None,
    ) -> SessionRecord:
        sources, _ = session_move(event)
        if registers is None:
            registers = session.first_release
        with self._lock:
            current = self._sessions.get(session.id)
            if current is None or current.status not in sources:
                raise _session_changed(current)
            # A publish within the request must still hold the lock it took; a deferred
            # one is protected by the processing state itself.
            if event is SessionEvent.PUBLISH and (
                current.publish_lock_until is None
                or current.publish_lock_until != session.publish_lock_until
            ):
                raise _session_changed(current)
            if not self._may_commit_to(session, registers):
                raise ProjectTaken(session.project)
            return self._commit(current, session, event, now, owner, registers=registers)

    def publish_whole(self, session: SessionRecord, file: FileRecord, now: int) -> bool:
        if not session.legacy:
            raise ValueError("only a legacy upload's session, which claims no release")
        name = session.project
        with self._lock:
            # A first release takes the name as a session's creation reserves it (a free
            # name, or its creator's reservation), and registers it with the commit.
            reserved: ProjectRecord | None = None
            try:
                if session.first_release:
                    reserved = self._reserved_name(session)
                elif not self._registered(name):
                    return False
            except ProjectTaken:
                return False
            if (
                session.id in self._sessions
                or (name, session.version_key) in self._live
                or self._holder(session, file) is not None
            ):
                return False
            if reserved is not None:
                self._projects[name] = reserved
            listed = replace(_session_copy(session), file_ids=frozenset({file.id}), revision=1)
            self._sessions[session.id] = listed
            self._files[session.id] = {file.id: _file_copy(file)}
            self._reserve(session, file, now)
            self._commit(
                listed,
                listed,
                SessionEvent.PUBLISH,
                now,
                session.first_owner,
                registers=session.first_release,
            )
            return True

    def _commit(
        self,
        current: SessionRecord,
        session: SessionRecord,
        event: SessionEvent,
        now: int,
        owner: str | None,
        *,
        registers: bool,
    ) -> SessionRecord:
        """The commit's writes, once its conditions held (`current` as stored)."""
        self._sessions[session.id] = current.after(event, now)
        self._commits[(session.project, session.id)] = Commit(session.version_key, now)
        self._free_release(current)
        # Taken away by mark_exposed once the files are public at the edge.
        self._outbox[session.id] = (session.project, session.version_key, now)
        if registers:
            self._register(session.project, owner)
        project = self._projects[session.project]
        self._projects[session.project] = replace(
            project, revision=project.revision + 1, last_commit=session.id, last_commit_at=now
        )
        # As DynamoDB answers (the port): the caller's record moved, nothing read back.
        return _session_copy(session.after(event, now))

    def publish_at_once(
        self, session: SessionRecord, files: Sequence[FileRecord], now: int
    ) -> SessionRecord | None:
        if len(files) > PUBLISH_AT_ONCE_MAX_FILES:
            return None
        with self._lock:  # the checks and the writes one step, as DynamoDB's transaction
            current = self._sessions.get(session.id)
            if (
                current is None
                or not _editable(current, now)
                or current.revision != session.revision
                or not self._may_commit_to(session, session.first_release)
                or any(self._holder(session, f) not in (None, session.id) for f in files)
            ):
                return None
            for file in files:
                self._reserve(session, file, now)
            return self._commit(
                current,
                session,
                SessionEvent.PUBLISH,
                now,
                session.first_owner,
                registers=session.first_release,
            )

    def _may_commit_to(self, session: SessionRecord, registers: bool) -> bool:
        """Registering: the name is still reserved with this session among its holders.
        Otherwise: a release of a registered project, never of a name reserved or free."""
        project = self._projects.get(session.project)
        if project is None:
            return False
        if registers:
            return project.status is ProjectStatus.RESERVED and session.id in project.holders
        return project.status is ProjectStatus.REGISTERED

    def _register(self, name: str, owner: str | None) -> None:
        self._projects[name] = replace(
            self._projects[name],
            status=ProjectStatus.REGISTERED,
            reserved_for=None,
            holders=frozenset(),
        )
        self._project_index.add(name)
        if owner is not None:  # as in DynamoDB, written without checking the user
            self._roles[(name, owner)] = Role.OWNER

    def unexposed(self, committed_before: int) -> list[Unexposed]:
        with self._lock:
            return [
                Unexposed(session_id, project, version_key)
                for session_id, (project, version_key, at) in sorted(self._outbox.items())
                if at < committed_before
            ]

    def mark_exposed(self, session_id: str) -> None:
        with self._lock:
            self._outbox.pop(session_id, None)

    # -- what readers see ----------------------------------------------------------------

    def project_names(self) -> list[str]:
        with self._lock:
            return sorted(self._project_index)

    def _committed_name(self, key: NameKey) -> PublishedFile | None:
        """A filename as a published file, unless it is only reserved."""
        held = self._names.get(key)
        if held is None or (key[0], held.session_id) not in self._commits:
            return None
        return _published_copy(held)

    def published_file(self, project: str, version_key: str, filename: str) -> PublishedFile | None:
        key = (project, version_key, filename_key(filename))
        with self._lock:
            return self._committed_name(key)

    def commits(self, project: str) -> dict[str, Commit]:
        with self._lock:
            return self._commits_of(project)

    def _commits_of(self, project: str) -> dict[str, Commit]:
        return {sid: commit for (p, sid), commit in self._commits.items() if p == project}

    def published_files(
        self,
        project: str,
        committed: frozenset[str] | None = None,
        *,
        version_key: str | None = None,
    ) -> list[PublishedFile]:
        with self._lock:
            seen = frozenset(self._commits_of(project)) if committed is None else committed
            held = [
                (k, f)
                for k, f in self._names.items()
                if k[0] == project and version_key in (None, k[1])
            ]
            # In DynamoDB's order: by sort key F#<version key>#<filename key>.
            held.sort(key=lambda item: f"{item[0][1]}#{item[0][2]}")
            return [_published_copy(f) for _, f in held if f.session_id in seen]
