"""What the session and file services answer: the records a response shows, with the
rules of how a session's state colours its files."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.errors import Conflict
from ..domain.ports import FileChanged, SessionChanged
from ..domain.records import FileRecord, SessionRecord
from ..domain.states import FileStatus, SessionStatus


def file_status(session: SessionRecord, file: FileRecord) -> FileStatus:
    """Once the session is canceled, "all of the session's file upload sessions are
    considered canceled" (PEP 694 "Publishing Session Cancellation")."""
    if session.status is SessionStatus.CANCELED:
        return FileStatus.CANCELED
    return file.status


def live_files(session: SessionRecord, files: list[FileRecord]) -> list[FileRecord]:
    """The session's files that are part of it, by name: canceled ones are not."""
    return sorted(
        (f for f in files if file_status(session, f) is not FileStatus.CANCELED),
        key=lambda f: f.filename,
    )


@dataclass(frozen=True)
class SessionView:
    session: SessionRecord
    files: list[FileRecord]  # the live files (live_files)


@dataclass(frozen=True)
class SignedPart:
    number: int
    url: str
    headers: dict[str, str]
    expires_at: int


@dataclass(frozen=True)
class FileView:
    session: SessionRecord
    file: FileRecord
    # Part URLs signed with the file's creation (a whole file whose SHA-256 was declared):
    # the client sends its bytes without asking for them.
    signed: tuple[SignedPart, ...] = ()

    @property
    def status(self) -> FileStatus:
        return file_status(self.session, self.file)


@dataclass(frozen=True)
class PartState:
    number: int
    size: int
    uploaded: bool


def session_state_conflict(session: SessionRecord | None, action: str) -> Conflict:
    """Why `action` cannot be done to the session in its current state."""
    if session is None:
        return Conflict(f"Cannot {action}: the session no longer exists.")
    if session.status is SessionStatus.PROCESSING or (
        session.status.editable and session.publish_lock_until is not None
    ):
        return Conflict(f"Cannot {action}: the session is being published.")
    return Conflict(f"Cannot {action}: the session is {session.status.value}.")


def changed(exc: SessionChanged | FileChanged) -> Conflict:
    """A write to a file refused because its session or the file moved meanwhile."""
    if isinstance(exc, SessionChanged):
        return session_state_conflict(exc.current, "change a file")
    state = exc.current.status.value if exc.current else "gone"
    return Conflict(f"The file changed meanwhile; it is {state}.")
