"""What the service refuses, and why. Each error carries domain data: the fields at
fault, the record that is in the way, the filenames taken. None knows HTTP: the one
table in chalicelib/http/problems.py turns each kind into a status, an RFC 9457 problem
type and the headers it needs (a `Location`, a `WWW-Authenticate`).

Services raise these; nothing matches errors by message text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .records import FileRecord, SessionRecord
from .states import FileStatus


@dataclass(frozen=True)
class FieldError:
    """One entry of the problem's `errors` member: where, and what is wrong."""

    source: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "message": self.message}


class WharfError(Exception):
    """A request the service refuses: `detail` for people, `errors` for the fields."""

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)


class Invalid(WharfError):
    """The request, or the file it sent, is not acceptable as it is."""


class NotAuthenticated(WharfError):
    """No credentials, or credentials that name no current token."""


class NotPermitted(WharfError):
    """Authenticated, but not allowed to do this."""


class NotFound(WharfError):
    pass


class Conflict(WharfError):
    """The current state does not allow the request (PEP 694 answers 409)."""


class SessionInProgress(Conflict):
    """Another publishing session of the release is live: the client should use it
    (PEP 694 "Multiple Session Creation Requests")."""

    def __init__(self, detail: str, session: SessionRecord) -> None:
        super().__init__(detail)
        self.session = session


class FileInProgress(Conflict):
    """A file of that name is still being uploaded in the session (PEP 694 "Replacing a
    Partially or Fully Uploaded File")."""

    def __init__(self, detail: str, file: FileRecord) -> None:
        super().__init__(detail)
        self.file = file


class FilesRefused(Conflict):
    """A publish refused because of some of the session's files: {filename: why}."""

    def __init__(self, detail: str, reasons: Mapping[str, str]) -> None:
        super().__init__(
            detail, [FieldError(f"files.{name}", why) for name, why in sorted(reasons.items())]
        )
        self.reasons = dict(reasons)


def filenames_taken(filenames: Iterable[str]) -> FilesRefused:
    """Filenames already published in the release, or being published by another session
    (PEP 694 "Atomic Publication and Conflicts")."""
    return FilesRefused(
        "Files of this session are already published in this release, or being published "
        "by another session; delete them from this session and publish again.",
        {name: "already published" for name in filenames},
    )


def files_unfinished(statuses: Mapping[str, FileStatus]) -> FilesRefused:
    """Only completed files may be published: an allow-list (PEP 694 "Complete a
    Publishing Session")."""
    return FilesRefused(
        "Every file must be completed before the session can be published; wait for files "
        "in progress, and delete the files that failed.",
        {name: f"status is {status.value}" for name, status in statuses.items()},
    )


class TooLarge(WharfError):
    """More bytes than this index, or this way of sending them, takes."""


class Unsupported(WharfError):
    """Well-formed, but asks for something this index does not offer (a mechanism)."""
