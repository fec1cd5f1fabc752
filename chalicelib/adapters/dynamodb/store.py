"""The store's four jobs on one DynamoDB table, together: what the wiring builds once and
hands to each service as the port it needs (domain/ports.py).

keys.py says how the table is laid out; table.py how it is read and written; access.py,
sessions.py, publishing.py and index.py hold one job each."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from . import keys
from .access import DynamoAccess
from .index import DynamoIndex
from .publishing import DynamoPublishing
from .sessions import DynamoSessions
from .table import Table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoStore(DynamoAccess, DynamoSessions, DynamoPublishing, DynamoIndex):
    def __init__(
        self, client: DynamoDBClient, table: str, *, retention: int, max_lifetime: int
    ) -> None:
        # One Table for all four jobs (each job's __init__ would store the same).
        super().__init__(Table(client, table, retention=retention, max_lifetime=max_lifetime))

    def reading_ahead(
        self, *, token_id: str | None, session_id: str | None, file_id: str | None
    ) -> contextlib.AbstractContextManager[None]:
        """The token, session and file a request names, read in one round trip (the token
        would be read alone, then the session and file together)."""
        wanted = [keys.token_key(token_id)] if token_id else []
        if session_id:
            wanted.append(keys.session_key(session_id))
            if file_id:
                wanted.append(keys.file_key(session_id, file_id))
        if len(wanted) < 2:  # one item is one round trip anyway
            return contextlib.nullcontext()
        return self._t.reading_ahead(wanted)
