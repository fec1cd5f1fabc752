"""The one table: reads, conditional writes that retry only when they lost a race, the
conditions the state machines imply, and what a refused write found.

Every state change is a conditional write naming the states it expects (invariant 4);
a failed condition comes back with the item it found (ReturnValuesOnConditionCheckFailure),
so the caller raises a domain exception carrying the current record without a second read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from botocore.exceptions import ClientError

from ...domain.ports import SessionChanged, StoreBusy
from ...domain.records import SessionRecord
from ...domain.states import EDITABLE_SESSION_STATES, FileStatus, SessionStatus
from ..client_errors import error_code
from . import keys
from .items import Item, decode, session_record

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Rounds of a BatchGetItem whose keys DynamoDB left unprocessed (throttling) before giving up.
BATCH_ATTEMPTS = 5
TRANSACTION_LIMIT = 100
BATCH_GET_LIMIT = 100  # keys in one BatchGetItem
Write = dict[str, Any]
Ident = tuple[str, str]
# Items read ahead for the request in progress (Table.reading_ahead): a context variable,
# so that each request (a thread of the local stack, a Lambda invocation) has its own.
_AHEAD: ContextVar[dict[Ident, Item | None] | None] = ContextVar("wharf_ahead", default=None)
# Items the next round trip of the request in progress also reads (Table.reading_along).
_ALONG: ContextVar[list[keys.Key] | None] = ContextVar("wharf_along", default=None)
# Queries started for the request in progress beside its next round trip
# (Table.querying_along), by what they ask: (partition, prefix, below).
Query = tuple[str, str, str]
_QUERIED: ContextVar[dict[Query, Future[list[Item]]] | None] = ContextVar(
    "wharf_queried", default=None
)
# Where those run, while the request's thread makes its next round trip.
_BESIDE = ThreadPoolExecutor(4, thread_name_prefix="wharf-query-along")
P = ParamSpec("P")
R = TypeVar("R")


def _lost_a_race(exc: ClientError) -> bool:
    """A write that DynamoDB refused only because another transaction was working on
    the same items at that moment: nothing was written, and trying again is safe."""
    code = error_code(exc)
    if code == "TransactionConflictException":  # a single-item write met a transaction
        return True
    if code != "TransactionCanceledException":
        return False
    codes = {r.get("Code") for r in exc.response.get("CancellationReasons") or []}
    return "TransactionConflict" in codes and codes <= {"TransactionConflict", "None", None}


class Retrying:
    """Runs a write again (with jittered backoff) when it lost a race to a concurrent
    transaction. Every write here is conditional on the state it expects, so running it
    again cannot apply it twice; a condition that failed is an answer, never retried.
    After the last attempt: StoreBusy."""

    def __init__(self, attempts: int = 5, sleep: Callable[[float], None] = time.sleep) -> None:
        self._attempts = attempts
        self._sleep = sleep

    def __call__(self, operation: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        attempt = 1
        while True:
            try:
                return operation(*args, **kwargs)
            except ClientError as exc:
                if not _lost_a_race(exc):
                    raise
                if attempt == self._attempts:
                    raise StoreBusy() from exc
            self.back_off(attempt)
            attempt += 1

    def back_off(self, attempt: int) -> None:
        """A jittered pause before attempt `attempt` + 1 (also for throttled batch reads)."""
        self._sleep(random.uniform(0, 0.025 * 2**attempt))


class ConditionFailed(Exception):
    """A write refused by its conditions: which failed, by position in the transaction
    (0 for a single-item write), each with the item it found (None if there was none).
    Table's writes raise it for failed conditions (other errors stay botocore's), so the
    store's jobs turn it into the port's exceptions without reading AWS error codes."""

    def __init__(self, found: dict[int, Item | None]) -> None:
        super().__init__(sorted(found))
        self.found = found

    def at(self, position: int) -> bool:
        return position in self.found


def _refusal(exc: ClientError) -> ConditionFailed | None:
    """What failed, or None when the error is not a failed condition."""
    code = error_code(exc)
    if code == "ConditionalCheckFailedException":
        item: Any = exc.response.get("Item")  # not in botocore's typed error shape
        return ConditionFailed({0: decode(item) if item else None})
    if code != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    found = {
        i: decode(r["Item"]) if r.get("Item") else None
        for i, r in enumerate(reasons)
        if r.get("Code") == "ConditionalCheckFailed"
    }
    return ConditionFailed(found) if found else None


def status_in(
    sources: frozenset[SessionStatus] | frozenset[FileStatus],
) -> tuple[str, dict[str, Any]]:
    """The write condition of a transition (states.py): the item is in one of `sources`."""
    values = {f":s{i}": {"S": s.value} for i, s in enumerate(sorted(sources))}
    return "#status IN (" + ", ".join(values) + ")", values


def editable_condition(
    now: int, *, expired: bool = False, lock: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The session accepts changes: editable (states.py), not being published, and not
    expired (or, for the expiry itself, expired). For the holder of the publish lock
    `lock`: that lock still held and live, whatever the expiry (as the commit itself,
    which a publish within the request makes under the same lock). Uses #status."""
    states, values = status_in(EDITABLE_SESSION_STATES)
    values[":now"] = {"N": str(now)}
    if lock is not None:
        values[":lock"] = {"N": str(lock)}
        return f"{states} AND publish_lock_until = :lock AND :lock >= :now", values
    expiry = "expires_at <= :now" if expired else "expires_at > :now"
    unlocked = "(attribute_not_exists(publish_lock_until) OR publish_lock_until < :now)"
    return f"{states} AND {expiry} AND {unlocked}", values


def _ident(key: keys.Key) -> Ident:
    return key["pk"]["S"], key["sk"]["S"]


def _forget_ahead(written: Sequence[keys.Key]) -> None:
    """Items this request writes are never answered from what was read ahead of it (nor
    queries of their partitions)."""
    ahead = _AHEAD.get()
    if ahead:
        for key in written:
            ahead.pop(_ident(key), None)
    queried = _QUERIED.get()
    if queried:
        partitions = {key["pk"]["S"] for key in written}
        for query in [query for query in queried if query[0] in partitions]:
            del queried[query]


def _key_of(write: Write) -> keys.Key:
    """The key of one write ({"Put": ...}, {"Update": ...}, ...) of a transaction."""
    ((_, body),) = write.items()
    item = body.get("Item")
    return {"pk": item["pk"], "sk": item["sk"]} if item else body["Key"]


def _taken_ahead(wanted: Sequence[keys.Key]) -> dict[Ident, Item | None]:
    """The wanted items read ahead for this request, each taken away as it is answered."""
    ahead = _AHEAD.get()
    if not ahead:
        return {}
    return {i: ahead.pop(i) for i in map(_ident, wanted) if i in ahead}


class Table:
    """The table, with the TTLs its items carry."""

    def __init__(
        self, client: DynamoDBClient, name: str, *, retention: int, max_lifetime: int
    ) -> None:
        self.db = client
        self.retrying = Retrying()
        self.name = name
        self.retention = retention
        self.max_lifetime = max_lifetime

    def data_ttl(self, session: SessionRecord) -> int:
        # A session cannot outlive created_at + max lifetime, so items that belong to it
        # can carry a TTL fixed at creation.
        return session.created_at + self.max_lifetime + self.retention

    @contextmanager
    def reading_ahead(self, wanted: Sequence[keys.Key]) -> Iterator[None]:
        """Read `wanted` now, in one round trip, and answer the first read of each from
        it until the block ends: a request learns from its URL and token which items it
        will read first. An item is read ahead for one read only, and forgotten as soon
        as the request writes it, so nothing read ahead answers after the request changed
        it; what other requests write meanwhile is as if the read had come first."""
        found = dict(zip(map(_ident, wanted), self.get_many(*wanted), strict=True))
        token, queries = _AHEAD.set(found), _QUERIED.set({})
        try:
            yield
        finally:
            _AHEAD.reset(token)
            _QUERIED.reset(queries)

    @contextmanager
    def reading_along(self, wanted: Sequence[keys.Key]) -> Iterator[None]:
        """Within a read-ahead: the next round trip this request makes in the block also
        reads `wanted`, and their first reads are answered from it, as if read ahead. For
        items a request will read right after others whose keys it learns first."""
        if _AHEAD.get() is None:  # nowhere to keep them: each is read when it is read
            yield
            return
        token = _ALONG.set(list(wanted))
        try:
            yield
        finally:
            _ALONG.reset(token)

    @contextmanager
    def querying_along(self, pk: str, prefix: str = "", *, below: str = "") -> Iterator[None]:
        """Within a read-ahead: the query starts now, beside the request's next round
        trip in the block, and answers the request's next query of the same, as if read
        ahead. For a query a request will make right after reads it cannot wait for."""
        queried = _QUERIED.get()
        if queried is not None:
            queried[(pk, prefix, below)] = _BESIDE.submit(
                lambda: list(self._query(pk, prefix, below))
            )
        yield

    def get(self, key: keys.Key) -> Item | None:
        return self.get_many(key)[0]

    def get_many(self, *wanted: keys.Key) -> list[Item | None]:
        """The items at `wanted`, in order, None where there is none: one strongly
        consistent read (a BatchGetItem for several) where a request would otherwise read
        them one by one; those read ahead (reading_ahead) are answered from that once."""
        found = _taken_ahead(wanted)
        missing = list({_ident(k): k for k in wanted if _ident(k) not in found}.values())
        along = _ALONG.get() if missing else None
        if along:
            asked = {_ident(k) for k in missing}
            extra = [k for k in along if _ident(k) not in asked]
            along.clear()  # read along once, with this round trip
            read = self._batch_get(missing + extra)
            ahead = _AHEAD.get()
            if ahead is not None:
                ahead.update({_ident(k): read.get(_ident(k)) for k in extra})
            found.update({_ident(k): read.get(_ident(k)) for k in missing})
        elif len(missing) == 1:
            response = self.db.get_item(TableName=self.name, Key=missing[0], ConsistentRead=True)
            item = response.get("Item")
            found[_ident(missing[0])] = decode(item) if item else None
        elif missing:
            found.update(self._batch_get(missing))
        return [found.get(_ident(k)) for k in wanted]

    def _batch_get(self, unique: list[keys.Key]) -> dict[Ident, Item | None]:
        found: dict[Ident, Item | None] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            found.update(self._batch_get_one(unique[start : start + BATCH_GET_LIMIT]))
        return found

    def _batch_get_one(self, unique: list[keys.Key]) -> dict[Ident, Item | None]:
        found: dict[Ident, Item | None] = {}
        request: dict[str, Any] = {self.name: {"Keys": unique, "ConsistentRead": True}}
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            response = self.db.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(self.name, []):
                item = decode(raw)
                found[(item["pk"], item["sk"])] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            # Throttled: DynamoDB hands back what it did not read; ask again after a pause.
            self.retrying.back_off(attempt)
        raise StoreBusy()

    def query(self, pk: str, prefix: str = "", *, below: str = "") -> Iterator[Item]:
        """Items of a partition whose sort key starts with `prefix`, or sorts below
        `below`, or all of them (from the query made along, if there was one)."""
        queried = _QUERIED.get()
        along = queried.pop((pk, prefix, below), None) if queried else None
        if along is not None:
            return iter(along.result())
        return self._query(pk, prefix, below)

    def _query(self, pk: str, prefix: str, below: str) -> Iterator[Item]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        if prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        elif below:
            kwargs["KeyConditionExpression"] += " AND sk < :below"
            kwargs["ExpressionAttributeValues"][":below"] = {"S": below}
        while True:
            page = self.db.query(**kwargs)
            for item in page.get("Items", []):
                yield decode(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _write(self, operation: Callable[..., R], **kwargs: Any) -> R:
        item = kwargs.get("Item")
        _forget_ahead([{"pk": item["pk"], "sk": item["sk"]} if item else kwargs["Key"]])
        try:
            return self.retrying(operation, TableName=self.name, **kwargs)
        except ClientError as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            raise refusal from None

    def transact(self, items: Sequence[Write], *, session_id: str | None = None) -> None:
        """One transaction of `items` ({"Put": {...}}, {"Update": {...}}, ...), each
        given without its TableName. With `session_id`, the first item is conditional on
        that session's state: its failure is SessionChanged, carrying the session."""
        # Plain dicts (their shapes vary with the condition): the stubs' TypedDicts would
        # only restate DynamoDB's API here.
        writes: Any = [
            {kind: {"TableName": self.name, **write} for kind, write in item.items()}
            for item in items
        ]
        _forget_ahead([_key_of(item) for item in items])
        try:
            self.retrying(self.db.transact_write_items, TransactItems=writes)
        except ClientError as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            if session_id is not None and refusal.at(0):
                raise self.session_changed(refusal.found[0], session_id) from None
            raise refusal from None

    def put(self, **kwargs: Any) -> None:
        self._write(self.db.put_item, **kwargs)

    def update(self, **kwargs: Any) -> Item:
        """The update's ReturnValues (decoded), if it asked for any."""
        response = self._write(self.db.update_item, **kwargs)
        return decode(response.get("Attributes") or {})

    def delete(self, **kwargs: Any) -> None:
        self._write(self.db.delete_item, **kwargs)

    def get_session(self, session_id: str) -> SessionRecord | None:
        item = self.get(keys.session_key(session_id))
        return session_record(item) if item else None

    def session_changed(self, found: Item | None, session_id: str) -> SessionChanged:
        """The refusal of a write conditional on the session's state, carrying the
        session as the failed condition found it (ALL_OLD), else as it is now."""
        return SessionChanged(session_record(found) if found else self.get_session(session_id))
