"""The scheduled housekeeping (the sweeper Lambda, and the local stack's sweep thread):
cancel expired sessions and purge their staged bytes (DynamoDB's TTL alone is late and
never purges S3), and finish exposing commits whose publisher died after committing."""

from __future__ import annotations

from ..domain.ports import Clock, SessionStore
from .admission import Admission
from .publishing import Publisher


class Sweep:
    def __init__(
        self, store: SessionStore, admission: Admission, publisher: Publisher, clock: Clock
    ) -> None:
        self._store = store
        self._admission = admission
        self._publisher = publisher
        self._clock = clock

    def run(self) -> None:
        try:
            self.expire_due()
        finally:  # one failing duty must not starve the other
            self._publisher.expose_unfinished()

    def expire_due(self) -> int:
        """Cancel every session past its expires-at and purge its staged bytes; how many."""
        count = 0
        for session_id in self._store.expiring_session_ids(self._clock.now()):
            session = self._store.get_session(session_id)
            if session is not None and self._admission.expire_if_due(session).status.terminal:
                count += 1
        return count
