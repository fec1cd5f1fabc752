"""The store's four jobs on one DynamoDB table, together: what the wiring builds once and
hands to each service as the port it needs (domain/ports.py).

keys.py says how the table is laid out; table.py how it is read and written; access.py,
sessions.py, publishing.py and index.py hold one job each."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
