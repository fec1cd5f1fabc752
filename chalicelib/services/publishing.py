"""Publishing a session's files: the part shared by a publish within the request and a
deferred one in the worker (PEP 694 "Atomic Publication and Conflicts")."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..config import Settings
from ..domain.errors import Conflict, FilesRefused, filenames_taken, files_unfinished
from ..domain.ports import (
    BlobStore,
    Clock,
    EdgeCache,
    IndexStore,
    JobQueue,
    ProjectTaken,
    PublishStore,
    SessionChanged,
    SessionStore,
)
from ..domain.records import FileRecord, Principal, SessionRecord
from ..domain.states import FileStatus, SessionEvent
from .admission import Admission
from .jobs import PUBLISH, hand_over
from .verification import metadata_key
from .views import SessionView, live_files, session_state_conflict

_log = logging.getLogger("wharf.publishing")
# A commit younger than this may still have its publisher at work on it: the sweep leaves
# it alone (exposing twice is harmless, only wasted).
EXPOSE_GRACE_SECONDS = 120
# A synchronous publish holds its session still for at most this long, so a publisher
# that dies mid-publish cannot wedge the session (over four times the API Lambda's 28 s
# timeout, itself just under API Gateway's 29 s: .chalice/config.json).
PUBLISH_LOCK_SECONDS = 120


def unfinished(files: list[FileRecord]) -> FilesRefused | None:
    """The refusal of a publish with files not completed, if any: an allow-list (PEP 694
    "Complete a Publishing Session")."""
    statuses = {f.filename: f.status for f in files if f.status is not FileStatus.COMPLETED}
    return files_unfinished(statuses) if statuses else None


def _served(keys: Iterable[str]) -> list[str]:
    """What the edge serves of published files: each file and its metadata."""
    return [k for key in keys for k in (key, metadata_key(key))]


class Publisher:
    def __init__(
        self,
        store: PublishStore,
        index: IndexStore,
        blobs: BlobStore,
        edge: EdgeCache,
        clock: Clock,
    ) -> None:
        self._store = store
        self._index = index
        self._blobs = blobs
        self._edge = edge
        self._clock = clock

    def expose(self, project: str, keys: Iterable[str]) -> None:
        """Let the edge serve the published files and their metadata, and drop its cached
        copies of the pages that list them. Idempotent: a redelivered publish job, or the
        sweep, runs it again. The commit's outbox entry stays for the sweep, which takes
        it away once it sees the files public (a round trip fewer for every publish)."""
        self._blobs.mark_public(_served(keys))
        self._edge.invalidate(["/simple/", f"/simple/{project}/"])

    def expose_unfinished(self) -> int:
        """The sweep's part: for each commit past EXPOSE_GRACE_SECONDS in the outbox,
        finish exposing it if its publisher died, or failed, between the commit and the
        end of `expose` (its files are listed in the index but the edge would not serve
        them), and take it off the outbox. Returns how many had to be finished; one that
        fails is logged and left for the next sweep."""
        finished = 0
        for commit in self._store.unexposed(self._clock.now() - EXPOSE_GRACE_SECONDS):
            try:
                files = self._index.published_files(
                    commit.project, frozenset({commit.session_id}), version_key=commit.version_key
                )
                keys = [f.key for f in files]
                # Read before written: a tag check costs a twelfth of a tagging, and the
                # edge's pages need no second invalidation (their max-age has passed).
                if not self._blobs.all_public(_served(keys)):
                    self.expose(commit.project, keys)
                    finished += 1
                self._store.mark_exposed(commit.session_id)
            except Exception:
                _log.exception("exposing the files of session %s failed", commit.session_id)
        return finished

    def _commit(self, session: SessionRecord, event: SessionEvent) -> SessionRecord:
        """A first release registers the name, unless another of its creator's
        first-release sessions (another version, or a parallel legacy upload) did so
        meanwhile: then it commits as a release of the registered project (the store's
        condition checks it is registered, so nothing is decided from a read)."""
        registers = session.first_release
        try:
            return self._store.commit_publish(
                session,
                self._clock.now(),
                owner=session.first_owner,
                event=event,
                registers=registers,
            )
        except ProjectTaken:
            if not registers:
                raise
        return self._store.commit_publish(
            session, self._clock.now(), owner=None, event=event, registers=False
        )

    def publish(
        self, session: SessionRecord, files: list[FileRecord], event: SessionEvent
    ) -> SessionRecord:
        """Reserve every filename in the release, then commit in one write. On any failure
        the reservations are released (the caller restores the session's state)."""
        try:
            conflicts = self._store.reserve_filenames(session, files, self._clock.now())
            if conflicts:
                raise filenames_taken(conflicts)
            published = self._commit(session, event)
        except BaseException:
            self._store.release_filenames(session, files)
            raise
        self._expose_committed(published, files)
        return published

    def publish_at_once(
        self, session: SessionRecord, files: list[FileRecord]
    ) -> SessionRecord | None:
        """Reserve and commit in one write, if nothing changed since `session` was read
        and no name is held (PublishStore.publish_at_once); None, with nothing written,
        when the locked protocol must take over."""
        published = self._store.publish_at_once(session, files, self._clock.now())
        if published is not None:
            self._expose_committed(published, files)
        return published

    def publish_whole(self, session: SessionRecord, file: FileRecord) -> bool:
        """A legacy upload's session and its one file, stored published in one write
        (PublishStore.publish_whole); False, with nothing written, when the store's
        conditions fail."""
        if not self._store.publish_whole(session, file, self._clock.now()):
            return False
        self._expose_committed(session, [file])
        return True

    def _expose_committed(self, session: SessionRecord, files: list[FileRecord]) -> None:
        # After the commit: staged bytes never become public for a publish that fails.
        try:
            self.expose(session.project, [f.key for f in files])
        except Exception:
            # Published all the same (the commit is the publish); the sweep finishes it.
            _log.exception("exposing the files of session %s failed", session.id)


class PublishService:
    """A publish request (PEP 694 "Complete a Publishing Session"): within the request
    (201), or, for a release larger than WHARF_INLINE_PUBLISH_MAX_FILES, handed to the
    worker (202, `processing`)."""

    def __init__(
        self,
        store: SessionStore,
        admission: Admission,
        publisher: Publisher,
        queue: JobQueue,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._store = store
        self._admission = admission
        self._publisher = publisher
        self._queue = queue
        self._clock = clock
        self._max_inline_files = settings.inline_publish_max_files

    def publish(self, principal: Principal, session_id: str) -> SessionView:
        """In one write when the session's files, read after it, are complete, fit a
        publish within the request, and nothing changed or holds a name meanwhile (or
        handed to the worker on the same condition); otherwise under the lock, which
        reads them again and says why not."""
        session = self._admission.session(principal, session_id, with_files=True)
        if not session.status.editable:
            raise session_state_conflict(session, "publish")
        files = live_files(session, self._store.files_of(session))
        if unfinished(files) is None:
            done = (
                self._defer_as_read(session, files)
                if len(files) > self._max_inline_files
                else self._publish_at_once(session, files)
            )
            if done is not None:
                return done
        return self.publish_locked(session)

    def _publish_at_once(
        self, session: SessionRecord, files: list[FileRecord]
    ) -> SessionView | None:
        published = self._publisher.publish_at_once(session, files)
        return None if published is None else SessionView(published, files)

    def _defer_as_read(self, session: SessionRecord, files: list[FileRecord]) -> SessionView | None:
        """Hand the session to the worker without a lock, on the condition that its files
        are still those read (its revision); None when they are not: the locked protocol
        then."""
        try:
            processing = self._to_processing(session, locked=False)
        except SessionChanged:
            return None
        return self._defer(processing, files)

    def publish_locked(self, session: SessionRecord) -> SessionView:
        """Publish a session this request has admitted, under the publish lock: its files
        read once locked, their names reserved, then the commit (or the worker's)."""
        now = self._clock.now()
        try:
            session = self._store.lock_for_publish(session, now, now + PUBLISH_LOCK_SECONDS)
        except SessionChanged as exc:
            raise session_state_conflict(exc.current, "publish") from None
        try:
            # Read once the session is locked against changes: authoritative.
            _, files = self._store.get_session_and_files(session.id)
            files = live_files(session, files)
            refused = unfinished(files)
            if refused is not None:
                raise refused
            if len(files) > self._max_inline_files:
                return self._defer(self._to_processing(session, locked=True), files)
            published = self._publisher.publish(session, files, SessionEvent.PUBLISH)
        except BaseException as exc:
            self._store.unlock_publish(session)  # none left after a deferral: a no-op
            if isinstance(exc, SessionChanged):
                raise session_state_conflict(exc.current, "publish") from None
            if isinstance(exc, ProjectTaken):
                raise Conflict(f"The name {session.project!r} is no longer reserved.") from None
            raise
        return SessionView(published, files)

    def _to_processing(self, session: SessionRecord, *, locked: bool) -> SessionRecord:
        """Move the session to processing for the worker, so nothing changes its files,
        on the condition that the lock this publish took still holds them (`locked`:
        the lock goes in the same write) or that they are still those read (its
        revision). SessionChanged otherwise."""
        return self._store.move_session(
            session,
            SessionEvent.DEFER_PUBLISH,
            self._clock.now(),
            by_lock_holder=locked,
            as_read=not locked,
        )

    def _defer(self, processing: SessionRecord, files: list[FileRecord]) -> SessionView:
        """Queue the worker's publish of a session moved to processing."""
        # Undone, the session is open again (any lock went with the move).
        hand_over(
            self._queue,
            {"job": PUBLISH, "session": processing.id},
            lambda: self._store.move_session(
                processing, SessionEvent.QUEUE_FAILED, self._clock.now()
            ),
        )
        return SessionView(processing, live_files(processing, files))
