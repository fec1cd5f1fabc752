"""PEP 694 state machines, declared once.

The tables are the PEP's transition tables ("Publishing Session States", "File Upload
Session States"). The DynamoDB adapter turns `sources(event)` into the condition of the
write that makes the move, so a transition the table does not allow can never be stored,
even by two racing requests.
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    OPEN = "open"
    PROCESSING = "processing"
    PUBLISHED = "published"
    ERROR = "error"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_SESSION_STATES

    @property
    def editable(self) -> bool:
        return self in EDITABLE_SESSION_STATES


TERMINAL_SESSION_STATES = frozenset({SessionStatus.PUBLISHED, SessionStatus.CANCELED})
# Not yet ended: a session in these states can still be extended, and holds its release.
LIVE_SESSION_STATES = frozenset(s for s in SessionStatus if s not in TERMINAL_SESSION_STATES)
# "Both open and error are editable states that permit the identical set of operations."
EDITABLE_SESSION_STATES = frozenset({SessionStatus.OPEN, SessionStatus.ERROR})


class SessionEvent(StrEnum):
    PUBLISH = "publish"  # completed within the request: 201
    DEFER_PUBLISH = "defer-publish"  # accepted for deferred processing: 202
    PROCESSING_SUCCEEDED = "processing-succeeded"
    PROCESSING_FAILED = "processing-failed"
    # The worker was never handed the publish (the queue refused the job): the session
    # is open again, and the client may publish again.
    QUEUE_FAILED = "queue-failed"
    CANCEL = "cancel"
    EXPIRE = "expire"  # the server cancels a timed-out session

    def allowed_from(self, status: SessionStatus) -> bool:
        return status in SESSION_TRANSITIONS[self][0]


SESSION_TRANSITIONS: dict[SessionEvent, tuple[frozenset[SessionStatus], SessionStatus]] = {
    SessionEvent.PUBLISH: (EDITABLE_SESSION_STATES, SessionStatus.PUBLISHED),
    SessionEvent.DEFER_PUBLISH: (EDITABLE_SESSION_STATES, SessionStatus.PROCESSING),
    SessionEvent.PROCESSING_SUCCEEDED: (
        frozenset({SessionStatus.PROCESSING}),
        SessionStatus.PUBLISHED,
    ),
    SessionEvent.PROCESSING_FAILED: (
        frozenset({SessionStatus.PROCESSING}),
        SessionStatus.ERROR,
    ),
    SessionEvent.QUEUE_FAILED: (frozenset({SessionStatus.PROCESSING}), SessionStatus.OPEN),
    SessionEvent.CANCEL: (EDITABLE_SESSION_STATES, SessionStatus.CANCELED),
    SessionEvent.EXPIRE: (EDITABLE_SESSION_STATES, SessionStatus.CANCELED),
}


class FileStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELED = "canceled"


class FileEvent(StrEnum):
    COMPLETE = "complete"  # 201
    DEFER_COMPLETE = "defer-complete"  # 202
    COMPLETE_FAILED = "complete-failed"  # any completion failure is final for the file
    PROCESSING_SUCCEEDED = "processing-succeeded"
    PROCESSING_FAILED = "processing-failed"
    # The worker was never handed the file (the queue refused the job): it is pending
    # again, its bytes where they were, and the client may complete it again.
    QUEUE_FAILED = "queue-failed"
    CANCEL = "cancel"  # DELETE of a pending, completed or failed file

    def allowed_from(self, status: FileStatus) -> bool:
        return status in FILE_TRANSITIONS[self][0]


FILE_TRANSITIONS: dict[FileEvent, tuple[frozenset[FileStatus], FileStatus]] = {
    FileEvent.COMPLETE: (frozenset({FileStatus.PENDING}), FileStatus.COMPLETED),
    FileEvent.DEFER_COMPLETE: (frozenset({FileStatus.PENDING}), FileStatus.PROCESSING),
    FileEvent.COMPLETE_FAILED: (frozenset({FileStatus.PENDING}), FileStatus.ERROR),
    FileEvent.PROCESSING_SUCCEEDED: (
        frozenset({FileStatus.PROCESSING}),
        FileStatus.COMPLETED,
    ),
    FileEvent.PROCESSING_FAILED: (frozenset({FileStatus.PROCESSING}), FileStatus.ERROR),
    FileEvent.QUEUE_FAILED: (frozenset({FileStatus.PROCESSING}), FileStatus.PENDING),
    FileEvent.CANCEL: (
        frozenset({FileStatus.PENDING, FileStatus.COMPLETED, FileStatus.ERROR}),
        FileStatus.CANCELED,
    ),
}


# A file takes bytes, part URLs and their signers while it can still be completed.
UPLOADING_FILE_STATES = FILE_TRANSITIONS[FileEvent.COMPLETE][0]

# A file can be replaced by a new upload of the same name only once its own upload is over
# (PEP 694 "Replacing a Partially or Fully Uploaded File"): replacing cancels it.
REPLACEABLE_FILE_STATES = frozenset({FileStatus.COMPLETED, FileStatus.ERROR})


def session_move(event: SessionEvent) -> tuple[frozenset[SessionStatus], SessionStatus]:
    return SESSION_TRANSITIONS[event]


def file_move(event: FileEvent) -> tuple[frozenset[FileStatus], FileStatus]:
    return FILE_TRANSITIONS[event]
