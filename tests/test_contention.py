"""DynamoDB transaction conflicts (issue 10 "Faults and races"): in AWS, concurrent
transactions on the same items cancel each other with `TransactionConflict` reasons, and a
single-item write meeting a transaction gets `TransactionConflictException`. moto never
does either, so these tests make the real client (against moto) answer them, the way
DynamoDB would, for the first calls."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb import keys
from chalicelib.adapters.dynamodb.store import DynamoStore
from chalicelib.adapters.dynamodb.table import Retrying, Table
from chalicelib.config import Settings
from chalicelib.domain.ports import StoreBusy
from chalicelib.domain.records import LISTED_FILES_MAX, SessionRecord
from chalicelib.runtime import Services
from tests.conftest import Api

MECHANISM = "vnd-wharf-s3multipart-presigned-v1"


def canceled(*codes: str) -> dict[str, Any]:
    return {
        "Error": {"Code": "TransactionCanceledException", "Message": "canceled"},
        "CancellationReasons": [{"Code": c} for c in codes],
    }


CONFLICT = canceled("None", "TransactionConflict", "None")
SINGLE_CONFLICT = {"Error": {"Code": "TransactionConflictException", "Message": "conflict"}}


class Flaky:
    """A stand-in client whose writes fail with the given errors, then succeed."""

    def __init__(self, *errors: dict[str, Any]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise ClientError(self.errors.pop(0), "TransactWriteItems")  # type: ignore[arg-type]
        return {}

    update_item = transact_write_items


def test_a_write_that_lost_a_race_is_retried() -> None:
    client = Flaky(CONFLICT, SINGLE_CONFLICT, CONFLICT)
    retrying = Retrying(sleep=lambda _: None)
    assert retrying(client.transact_write_items, TransactItems=[]) == {}
    assert client.calls == 4


def test_a_failed_condition_is_an_answer_not_retried() -> None:
    client = Flaky(canceled("ConditionalCheckFailed", "TransactionConflict"))
    retrying = Retrying(sleep=lambda _: None)
    with pytest.raises(ClientError):
        retrying(client.update_item, Key={})
    assert client.calls == 1


def test_a_race_lost_on_every_attempt_is_store_busy() -> None:
    client = Flaky(*[CONFLICT] * 10)
    retrying = Retrying(attempts=5, sleep=lambda _: None)
    with pytest.raises(StoreBusy):
        retrying(client.transact_write_items, TransactItems=[])
    assert client.calls == 5


@pytest.fixture
def conflicts(aws: tuple[Any, Any, Any]) -> Iterator[Callable[[int], None]]:
    """conflicts(n): the next n TransactWriteItems calls of the app's real DynamoDB
    client are canceled by a concurrent transaction, before reaching moto."""
    remaining = [0]

    def answer(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if remaining[0] <= 0:
            return None
        remaining[0] -= 1
        response = AWSResponse("https://dynamodb", 400, {}, None)  # type: ignore[arg-type]
        return response, {**CONFLICT, "ResponseMetadata": {"HTTPStatusCode": 400}}

    events = aws[0].meta.events
    events.register("before-call.dynamodb.TransactWriteItems", answer)

    def set_count(n: int) -> None:
        remaining[0] = n

    yield set_count
    events.unregister("before-call.dynamodb.TransactWriteItems", answer)


def test_conflicting_file_creations_succeed_after_retries(
    api: Api, conflicts: Callable[[int], None]
) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    conflicts(3)
    reply = me.create_file(session, "demo-1.0.tar.gz", b"x" * 10)
    assert reply.status == 202, reply.body
    assert list(me.get(session["links"]["session"]).json()["files"]) == ["demo-1.0.tar.gz"]


def test_a_race_lost_every_time_is_503_with_nothing_half_done(
    api: Api, conflicts: Callable[[int], None], aws: tuple[Any, Any, Any], services: Services
) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    conflicts(1000)
    reply = me.create_file(session, "demo-1.0.tar.gz", b"x" * 10, mechanism=MECHANISM)
    assert reply.status == 503, reply.body
    assert reply.headers["Retry-After"] == "1"
    assert reply.headers["Content-Type"] == "application/problem+json"
    conflicts(0)
    assert me.get(session["links"]["session"]).json()["files"] == {}
    # The multipart upload started for it was aborted, not left behind.
    uploads = aws[1].list_multipart_uploads(Bucket=services.settings.bucket_name)
    assert not uploads.get("Uploads")
    assert me.create_file(session, "demo-1.0.tar.gz", b"x" * 10).status == 202


class AtOnce:
    """The real client (moto), whose calls named in `waiting` each wait until `parties` of
    them are in flight: calls made one after another would never get past the first."""

    def __init__(self, client: Any, parties: int, *waiting: str) -> None:
        self._client = client
        self._together = threading.Barrier(parties, timeout=30)
        self._waiting = set(waiting)
        self.armed = True
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in self._waiting or not self.armed:
            return method

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            self._together.wait()  # BrokenBarrierError when made one after another
            return method(**kwargs)

        return call


def test_a_session_past_the_files_it_lists_is_queried_beside_the_standing(
    aws: tuple[Any, Any, Any], settings: Settings
) -> None:
    """Past LISTED_FILES_MAX a session's files are read by a query: made beside the read
    of the standing, not after it (a publish of them is 3 round trips, not 4)."""
    from tests.test_store_contract import NOW, new_file, new_session

    client = AtOnce(aws[0], 2, "query", "get_item")
    client.armed = False
    store = DynamoStore(client, settings.table_name, retention=60, max_lifetime=3600)  # type: ignore[arg-type]
    session = new_session()
    store.create_session(session, reserve_project=True)
    read: SessionRecord | None = session
    for _ in range(LISTED_FILES_MAX + 1):
        assert read is not None
        store.add_file(read, new_file(read), NOW, replaces=None)
        read = store.get_session(session.id)
    assert read is not None and read.file_ids is None
    files = store.get_session_and_files(session.id)[1]
    with store.reading_ahead(token_id="t" * 32, session_id=session.id, file_id=None):
        client.armed = True
        with store.files_read_along(read):
            store.get_project("demo")  # the standing's round trip
        assert store.files_of(read) == files  # answered from the query made beside it
    assert sorted(name for name, _ in client.calls) == ["get_item", "query"]


class Queried:
    """The real client (moto), counting its queries and saying when one was answered;
    each query fails with `error` when one is given."""

    def __init__(self, client: Any, error: ClientError | None = None) -> None:
        self._client = client
        self._error = error
        self.queries = 0
        self.answered = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, **kwargs: Any) -> Any:
        self.queries += 1
        try:
            if self._error is not None:
                raise self._error
            return self._client.query(**kwargs)
        finally:
            self.answered.set()


def test_a_query_made_along_is_forgotten_when_the_request_writes_its_partition(
    aws: tuple[Any, Any, Any], settings: Settings
) -> None:
    client = Queried(aws[0])
    table = Table(client, settings.table_name, retention=60, max_lifetime=3600)  # type: ignore[arg-type]
    pk = keys.session_pk("s" * 32)
    with table.reading_ahead([keys.token_key("t" * 32), keys.session_key("s" * 32)]):
        with table.querying_along(pk):
            assert client.answered.wait(30)  # the partition as it was: empty
            table.put(Item={"pk": {"S": pk}, "sk": {"S": "F#new"}})
        assert [item["sk"] for item in table.query(pk)] == ["F#new"]  # read after the write


def test_a_query_made_along_that_failed_fails_the_read(
    aws: tuple[Any, Any, Any], settings: Settings
) -> None:
    """Its failure is the read's: not an empty answer, nor a second query."""
    throttled = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": ""}}, "Query"
    )
    client = Queried(aws[0], throttled)
    table = Table(client, settings.table_name, retention=60, max_lifetime=3600)  # type: ignore[arg-type]
    pk = keys.session_pk("s" * 32)
    with table.reading_ahead([keys.token_key("t" * 32), keys.session_key("s" * 32)]):
        with table.querying_along(pk):
            pass
        with pytest.raises(ClientError):
            list(table.query(pk))
    assert client.queries == 1
