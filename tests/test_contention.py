"""DynamoDB transaction conflicts (issue 10 "Faults and races"): in AWS, concurrent
transactions on the same items cancel each other with `TransactionConflict` reasons, and a
single-item write meeting a transaction gets `TransactionConflictException`. moto never
does either, so these tests make the real client (against moto) answer them, the way
DynamoDB would, for the first calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from chalicelib.adapters.dynamodb.table import Retrying
from chalicelib.domain.ports import StoreBusy
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
