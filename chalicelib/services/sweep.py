"""The scheduled housekeeping (the sweeper Lambda, and the local stack's sweep thread):
cancel expired sessions and purge their staged bytes (DynamoDB's TTL alone is late and
never purges S3), finish exposing commits whose publisher died after committing, and
delete stored project pages long replaced."""

from __future__ import annotations

from ..domain.ports import Clock, SessionStore
from .admission import Admission
from .index import IndexService
from .publishing import Publisher


class Sweep:
    def __init__(
        self,
        store: SessionStore,
        admission: Admission,
        publisher: Publisher,
        index: IndexService,
        clock: Clock,
    ) -> None:
        self._store = store
        self._admission = admission
        self._publisher = publisher
        self._index = index
        self._clock = clock

    def run(self) -> None:
        # One failing duty must not starve the others: each runs, then the first
        # failure is raised.
        failure: Exception | None = None
        for duty in (
            self.expire_due,
            self._publisher.expose_unfinished,
            lambda: self._index.prune_pages(self._clock.now()),
        ):
            try:
                duty()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def expire_due(self) -> int:
        """Cancel every session past its expires-at and purge its staged bytes; how many."""
        count = 0
        for session_id in self._store.expiring_session_ids(self._clock.now()):
            session = self._store.get_session(session_id)
            if session is not None and self._admission.expire_if_due(session).status.terminal:
                count += 1
        return count
