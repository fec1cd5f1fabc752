"""Publishing a session's files: the part shared by a publish within the request and a
deferred one in the worker (PEP 694 "Atomic Publication and Conflicts")."""

from __future__ import annotations

from ..adapters.dynamodb import DynamoStore
from ..errors import Conflict, FieldError
from ..ports import BlobStore, Clock, EdgeCache
from ..records import FileRecord, SessionRecord
from ..states import FileStatus, SessionEvent
from .verification import metadata_key


def unfinished(files: list[FileRecord]) -> list[FieldError]:
    """Only completed files may be published: an allow-list (PEP 694 "Complete a
    Publishing Session")."""
    return [
        FieldError(f"files.{f.filename}", f"status is {f.status.value}")
        for f in files
        if f.status is not FileStatus.COMPLETED
    ]


class Publisher:
    def __init__(self, store: DynamoStore, blobs: BlobStore, edge: EdgeCache, clock: Clock) -> None:
        self._store = store
        self._blobs = blobs
        self._edge = edge
        self._clock = clock

    def expose(self, session: SessionRecord, files: list[FileRecord]) -> None:
        """Let the edge serve the published files and their metadata, and drop its cached
        copies of the pages that list them. Idempotent: a redelivered publish job runs it
        again."""
        for file in files:
            self._blobs.mark_public(file.key)
            self._blobs.mark_public(metadata_key(file.key))
        self._edge.invalidate(["/simple/", f"/simple/{session.project}/"])

    def publish(
        self, session: SessionRecord, files: list[FileRecord], event: SessionEvent
    ) -> SessionRecord:
        """Reserve every filename in the release, then commit in one write. On any failure
        the reservations are released (the caller restores the session's state)."""
        try:
            conflicts = self._store.reserve_filenames(session, files, self._clock.now())
            if conflicts:
                raise Conflict(
                    "Files of this session are already published in this release, or being "
                    "published by another session; delete them from this session and publish "
                    "again.",
                    [
                        FieldError(f"files.{name}", "already published")
                        for name in sorted(conflicts)
                    ],
                )
            owner = session.created_by if session.first_release else None
            published = self._store.commit_publish(
                session, self._clock.now(), owner=owner, event=event
            )
        except BaseException:
            self._store.release_filenames(session, files)
            raise
        # After the commit: staged bytes never become public for a publish that fails.
        self.expose(session, files)
        return published
