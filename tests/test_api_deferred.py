"""Deferred publishing (202, `processing`) and content validation through the API."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib import runtime
from chalicelib.adapters.schema import create_queue
from chalicelib.config import QUEUE_NAME, Settings
from chalicelib.domain.records import FileRecord
from chalicelib.domain.states import FileStatus
from chalicelib.http.simple import SIMPLE_JSON
from chalicelib.runtime import Services
from chalicelib.services.index import LISTINGS_PREFIX, IndexService
from tests.conftest import PUBLIC_URL, Api, run_worker, wheel_name
from tests.dists import dist, metadata, wheel
from tests.test_call_counts import PUBLISH_BASE, counting

SDIST = "demo-1.0.tar.gz"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, inline_publish_max_files=2)


def three_files(me: Api, session: dict[str, Any]) -> list[str]:
    names = [SDIST, wheel_name("demo", "1.0"), wheel_name("demo", "1.0", "py2-none-any")]
    for name in names:
        me.add_file(session, name)
    return names


def test_a_large_release_is_published_by_the_worker(me: Api, services: Services) -> None:
    session = me.create_session("demo", "1.0").json()
    names = three_files(me, session)
    reply = me.publish(session)
    assert reply.status == 202
    assert reply.headers["Location"] == session["links"]["session"]
    assert reply.json()["status"] == "processing"
    # While processing: no changes, no cancel (PEP 694).
    assert me.delete(session["links"]["session"]).status == 409
    assert me.create_file(session, "demo-1.0-py3-none-any.whl", b"x").status == 409
    assert services.store.published_files("demo") == []
    run_worker(services)
    assert me.get(session["links"]["session"]).json()["status"] == "published"
    assert sorted(f.filename for f in services.store.published_files("demo")) == sorted(names)
    assert services.store.project_names() == ["demo"]


def test_the_worker_lists_the_project_it_published(
    api: Api, me: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release too large to publish within the request is listed by the worker after
    its commit: the first reader reads one object, not the release's files."""
    session = me.create_session("demo", "1.0").json()
    names = three_files(me, session)
    assert me.publish(session).status == 202
    run_worker(services)
    project = services.store.get_project("demo")
    assert project is not None
    listing = json.loads(b"".join(services.blobs.stream(f"{LISTINGS_PREFIX}demo.json")))
    assert tuple(listing["state"]) == project.state
    runtime.install(
        dataclasses.replace(
            services,
            index=IndexService(services.store, services.store, services.blobs, PUBLIC_URL),
        )
    )  # a cold container
    monkeypatch.setattr(type(services.store), "published_files", None)
    monkeypatch.setattr(type(services.store), "commits", None)
    page = api.get("/simple/demo/", headers={"Accept": SIMPLE_JSON}).json()
    assert sorted(f["filename"] for f in page["files"]) == sorted(names)


def test_handing_a_release_to_the_worker_takes_no_lock(me: Api, services: Services) -> None:
    session = me.create_session("demo", "1.0").json()
    three_files(me, session)
    with counting() as seen:
        assert me.publish(session).status == 202
    # The token and session; the standing and files; the move to processing, on the
    # condition that the files are those read (no lock, no query): as publish's budget.
    assert seen["dynamodb"] <= PUBLISH_BASE, dict(seen)


def test_a_session_past_its_listed_files_is_handed_over_without_a_lock(
    me: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.adapters.dynamodb import sessions

    monkeypatch.setattr(sessions, "LISTED_FILES_MAX", 2)  # three files drop the list
    session = me.create_session("demo", "1.0").json()
    three_files(me, session)
    with counting() as seen:
        assert me.publish(session).status == 202
    # Its files are a query now, and the move still needs only the revision read.
    assert seen["dynamodb"] <= PUBLISH_BASE + 1, dict(seen)


def test_a_deferred_publish_conflict_is_an_error_with_notices(me: Api, services: Services) -> None:
    first = me.create_session("demo", "1.0").json()
    me.add_file(first, SDIST)
    assert me.publish(first).status == 201
    session = me.create_session("demo", "1.0").json()
    wheels = [wheel_name("demo", "1.0"), wheel_name("demo", "1.0", "py2-none-any")]
    for name in wheels:
        me.add_file(session, name)
    # Slip the published sdist's name past the best-effort check at creation.
    sid = session["links"]["session"].rsplit("/", 1)[1]
    record, _ = services.store.get_session_and_files(sid)
    assert record is not None
    data = dist(SDIST, "again")
    services.store.add_file(
        record,
        FileRecord(
            id="e" * 32,
            session_id=sid,
            filename=SDIST,
            size=len(data),
            hashes={"sha256": "0" * 64},
            mechanism="http-post-bytes",
            status=FileStatus.COMPLETED,
            key=f"files/demo/{'e' * 32}/{SDIST}",
            created_at=services.clock.now(),
        ),
        services.clock.now(),
        replaces=None,
    )
    assert me.publish(session).status == 202
    run_worker(services)
    status = me.get(session["links"]["session"]).json()
    assert status["status"] == "error"
    assert any(SDIST in n for n in status["notices"])
    assert any("Publishing failed" in n for n in status["files"][SDIST]["notices"])
    # The reservation was released and the session is editable again.
    for name in wheels:
        assert services.store.published_file("demo", "1", name) is None
    assert me.delete(f"{session['links']['session']}/files/{'e' * 32}").status == 204
    assert me.publish(session).status == 201
    assert me.get(session["links"]["session"]).json()["status"] == "published"


@pytest.mark.parametrize(
    ("filename", "data", "why"),
    [
        (wheel_name("demo", "1.0"), b"not a zip", "not a valid zip"),
        (
            wheel_name("demo", "1.0"),
            wheel(wheel_name("demo", "1.0"), meta=metadata("other", "1.0")),
            "other 1.0",
        ),
        (SDIST, b"\x1f\x8bnot gzip", "gzip"),
    ],
)
def test_content_refusals_are_final_and_cite_the_spec(
    me: Api, filename: str, data: bytes, why: str
) -> None:
    session = me.create_session("demo", "1.0").json()
    file = me.create_file(session, filename, data).json()
    assert me.upload(file, data).status == 204
    refused = me.complete(file)
    assert refused.status == 400
    assert why in refused.json()["errors"][0]["message"]
    status = me.get(file["links"]["file-upload-session"]).json()
    assert status["status"] == "error"
    assert "https://packaging.python.org/" in status["notices"][0]


def test_a_publish_whose_worker_never_finished_is_failed_at_expiry(
    me: Api, services: Services, clock: Any
) -> None:
    session = me.create_session("demo", "1.0").json()
    three_files(me, session)
    assert me.publish(session).status == 202
    # The job is lost (say, in the dead-letter queue): nothing resolves the session.
    clock.advance(3600)
    services.sweep.expire_due()
    status = me.get(session["links"]["session"]).json()
    assert status["status"] == "canceled"
    assert any("did not finish" in n for n in status["notices"])
    assert any("expired" in n for n in status["notices"])
    run_worker(services)  # the late job changes nothing
    assert me.get(session["links"]["session"]).json()["status"] == "canceled"
    assert services.store.published_files("demo") == []


def sqs_event(job: dict[str, str], delivery: int) -> dict[str, Any]:
    """The event the SQS-subscribed Lambda receives, as AWS shapes it."""
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(job),
                "attributes": {"ApproximateReceiveCount": str(delivery)},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
            }
        ]
    }


def test_a_job_failing_on_its_last_delivery_leaves_the_release_in_error_not_processing(
    me: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import process_jobs

    session = me.create_session("demo", "1.0").json()
    three_files(me, session)
    assert me.publish(session).status == 202

    def dynamodb_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB is unreachable")

    monkeypatch.setattr(services.publisher, "publish", dynamodb_down)
    job = {"job": "publish", "session": session["links"]["session"].rsplit("/", 1)[1]}
    with pytest.raises(ConnectionError):  # SQS delivers it again
        process_jobs(sqs_event(job, 1), None)
    assert me.get(session["links"]["session"]).json()["status"] == "processing"
    with pytest.raises(ConnectionError):  # on to the dead-letter queue, and its alarm
        process_jobs(sqs_event(job, services.settings.job_attempts), None)
    status = me.get(session["links"]["session"]).json()
    assert status["status"] == "error"
    assert "failed repeatedly" in status["notices"][-1]
    monkeypatch.undo()
    # The publisher can try again.
    assert me.publish(session).status == 202


def test_a_publish_the_queue_does_not_take_is_a_503_leaving_the_session_open(
    me: Api, services: Services, aws: tuple[Any, Any, Any]
) -> None:
    """The job queue refuses the deferred publish's job (here: it is gone): the answer
    is a 503 to retry, and the session is open again, not processing until it expires."""
    sqs = aws[2]
    session = me.create_session("demo", "1.0").json()
    three_files(me, session)
    url = sqs.get_queue_url(QueueName=QUEUE_NAME)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    reply = me.publish(session)
    assert reply.status == 503, reply.body
    assert reply.headers["Retry-After"] == "5"
    assert "nothing changed" in reply.json()["detail"]
    assert me.get(session["links"]["session"]).json()["status"] == "open"
    assert create_queue(sqs, QUEUE_NAME) == url  # the queue is back
    assert me.publish(session).status == 202
    run_worker(services)
    assert me.get(session["links"]["session"]).json()["status"] == "published"
