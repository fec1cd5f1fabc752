"""The services' rules on the in-memory fakes of every port (no moto, no HTTP): each test
takes milliseconds. The fakes are held to the real adapters' behaviour by the contract
suites (tests/test_store_contract.py, tests/test_blob_contract.py); what HTTP adds
(statuses, bodies, headers) is tested through chalice and the local stack."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import pytest

from chalicelib import runtime
from chalicelib.adapters.memory.blobs import MemoryBlobStore
from chalicelib.adapters.memory.clock import FixedClock
from chalicelib.adapters.memory.queue import MemoryJobQueue
from chalicelib.adapters.memory.store import MemoryStore
from chalicelib.config import Settings
from chalicelib.domain.errors import (
    Conflict,
    FileInProgress,
    FilesRefused,
    NotPermitted,
    SessionInProgress,
)
from chalicelib.domain.mechanisms import HTTP_POST_BYTES
from chalicelib.domain.ports import QueueUnavailable
from chalicelib.domain.records import Principal
from chalicelib.domain.states import FileStatus, SessionStatus
from chalicelib.services.index import PAGES_PREFIX, STORED_PAGE_GRACE
from chalicelib.services.jobs import PUBLISH
from chalicelib.services.views import FileView
from tests.dists import wheel

WHEEL = "demo-1.0-py3-none-any.whl"


@dataclass
class World:
    services: runtime.Services
    blobs: MemoryBlobStore
    queue: MemoryJobQueue
    clock: FixedClock

    def principal(self, username: str) -> Principal:
        self.services.admin.create_user(username)
        issued = self.services.admin.issue_token(username, "", None)
        return self.services.access.authenticate(f"Bearer {issued.text}")

    def upload(self, who: Principal, session_id: str, filename: str = WHEEL) -> FileView:
        data = wheel(filename)
        file = self.services.files.create_file(
            who,
            session_id,
            filename=filename,
            size=len(data),
            hashes={"sha256": hashlib.sha256(data).hexdigest()},
            mechanism=HTTP_POST_BYTES,
        ).file
        self.services.files.upload_bytes(who, session_id, file.id, data)
        return self.services.completion.complete_file(who, session_id, file.id)

    def start(self, who: Principal, session_id: str, filename: str) -> FileView:
        """A file upload session whose bytes are not sent yet."""
        return self.services.files.create_file(
            who,
            session_id,
            filename=filename,
            size=10,
            hashes={"sha256": "0" * 64},
            mechanism=HTTP_POST_BYTES,
        )


@pytest.fixture
def world(settings: Settings) -> World:
    blobs, queue, clock = MemoryBlobStore(), MemoryJobQueue(), FixedClock()
    services = runtime.build(settings, store=MemoryStore(), blobs=blobs, queue=queue, clock=clock)
    return World(services, blobs, queue, clock)


@pytest.fixture
def alice(world: World) -> Principal:
    return world.principal("alice")


def test_a_file_uploaded_completed_and_published_is_in_the_index(
    world: World, alice: Principal
) -> None:
    session = world.services.sessions.create_session(alice, "Demo", "1.0").session
    assert world.upload(alice, session.id).status is FileStatus.COMPLETED
    published = world.services.publishing.publish(alice, session.id)
    assert published.session.status is SessionStatus.PUBLISHED
    assert [f.filename for f in published.files] == [WHEEL]
    assert world.services.index.projects() == ["demo"]
    page = world.services.index.project("demo")
    assert [f.filename for f in page.files] == [WHEEL]
    assert world.blobs.is_public(published.files[0].key)


def test_a_second_session_of_the_release_names_the_live_one(world: World, alice: Principal) -> None:
    live = world.services.sessions.create_session(alice, "demo", "1.0").session
    with pytest.raises(SessionInProgress) as refused:
        world.services.sessions.create_session(alice, "demo", "1.0.0")
    assert refused.value.session.id == live.id


def test_a_new_name_is_its_first_publishers_alone(world: World, alice: Principal) -> None:
    world.services.sessions.create_session(alice, "demo", "1.0")
    bob = world.principal("bob")
    with pytest.raises(NotPermitted):
        world.services.sessions.create_session(bob, "demo", "2.0")


def test_a_file_still_uploading_is_named_when_another_of_its_name_is_started(
    world: World, alice: Principal
) -> None:
    session = world.services.sessions.create_session(alice, "demo", "1.0").session
    first = world.start(alice, session.id, WHEEL).file
    with pytest.raises(FileInProgress) as refused:
        world.start(alice, session.id, WHEEL)
    assert refused.value.file.id == first.id


def test_a_publish_with_unfinished_files_names_each_with_its_state(
    world: World, alice: Principal
) -> None:
    session = world.services.sessions.create_session(alice, "demo", "1.0").session
    world.upload(alice, session.id)
    other = "demo-1.0-py2-none-any.whl"
    world.start(alice, session.id, other)
    with pytest.raises(FilesRefused) as refused:
        world.services.publishing.publish(alice, session.id)
    assert refused.value.reasons == {other: "status is pending"}
    # Refused before anything was reserved or committed: the session is still editable.
    assert world.services.sessions.session_status(alice, session.id).session.status.editable


def test_canceling_a_session_cancels_its_files_and_purges_their_bytes(
    world: World, alice: Principal
) -> None:
    session = world.services.sessions.create_session(alice, "demo", "1.0").session
    file = world.upload(alice, session.id).file
    world.services.sessions.cancel_session(alice, session.id)
    view = world.services.files.file_status(alice, session.id, file.id)
    assert view.status is FileStatus.CANCELED
    assert world.services.sessions.session_status(alice, session.id).files == []
    assert world.blobs.head(file.key) is None


def test_the_sweep_expires_a_session_past_its_expiry_once(world: World, alice: Principal) -> None:
    session = world.services.sessions.create_session(alice, "demo", "1.0").session
    world.clock.advance(session.expires_at - world.clock.now())
    assert world.services.sweep.expire_due() == 1
    assert world.services.sweep.expire_due() == 0
    expired = world.services.sessions.session_status(alice, session.id).session
    assert expired.status is SessionStatus.CANCELED
    assert expired.notices == ["The session expired and was canceled."]
    # The release is free again.
    assert world.services.sessions.create_session(alice, "demo", "1.0").session.id != session.id


class RefusingQueue(MemoryJobQueue):
    """A queue that does not take the next `refusals` jobs (SQS unreachable)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def send(self, job: dict[str, str]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise QueueUnavailable("SQS did not answer")
        super().send(job)


def test_work_the_queue_did_not_take_is_put_back_and_can_be_retried(
    world: World, alice: Principal, settings: Settings
) -> None:
    """A deferred completion or publish whose job the queue refuses leaves the file
    pending and the session open, as before the request (a 503 to retry), not stuck in
    processing until the session expires."""
    queue = RefusingQueue(refusals=1)
    deferring = runtime.build(
        replace(settings, inline_max=0, inline_publish_max_files=0),
        store=world.services.store,
        blobs=world.blobs,
        queue=queue,
        clock=world.clock,
    )
    session = deferring.sessions.create_session(alice, "demo", "1.0").session
    data = wheel(WHEEL)
    file = deferring.files.create_file(
        alice,
        session.id,
        filename=WHEEL,
        size=len(data),
        hashes={"sha256": hashlib.sha256(data).hexdigest()},
        mechanism=HTTP_POST_BYTES,
    ).file
    deferring.files.upload_bytes(alice, session.id, file.id, data)
    with pytest.raises(QueueUnavailable):
        deferring.completion.complete_file(alice, session.id, file.id)
    assert deferring.files.file_status(alice, session.id, file.id).status is FileStatus.PENDING
    assert deferring.completion.complete_file(alice, session.id, file.id).status is (
        FileStatus.PROCESSING
    )
    deferring.worker.handle(queue.jobs.pop())
    queue.refusals = 1
    with pytest.raises(QueueUnavailable):
        deferring.publishing.publish(alice, session.id)
    assert deferring.sessions.session_status(alice, session.id).session.status is (
        SessionStatus.OPEN
    )
    assert deferring.publishing.publish(alice, session.id).session.status is (
        SessionStatus.PROCESSING
    )
    deferring.worker.handle(queue.jobs.pop())
    assert deferring.sessions.session_status(alice, session.id).session.status is (
        SessionStatus.PUBLISHED
    )


def test_a_large_release_is_published_by_the_worker(
    world: World, alice: Principal, settings: Settings
) -> None:
    deferring = runtime.build(
        replace(settings, inline_publish_max_files=0),
        store=world.services.store,
        blobs=world.blobs,
        queue=world.queue,
        clock=world.clock,
    )
    session = deferring.sessions.create_session(alice, "demo", "1.0").session
    world.upload(alice, session.id)
    view = deferring.publishing.publish(alice, session.id)
    assert view.session.status is SessionStatus.PROCESSING
    assert world.queue.jobs == [{"job": PUBLISH, "session": session.id}]
    deferring.worker.handle(world.queue.jobs.pop())
    assert deferring.sessions.session_status(alice, session.id).session.status is (
        SessionStatus.PUBLISHED
    )
    again = deferring.sessions.create_session(alice, "demo", "1.0").session
    with pytest.raises(Conflict, match="already published"):  # published files never change
        world.start(alice, again.id, WHEEL)


def test_a_project_s_stored_pages_go_a_day_after_a_newer_revision_s(
    settings: Settings,
) -> None:
    clock = FixedClock()
    blobs = MemoryBlobStore(now=clock.now)
    services = runtime.build(
        settings, store=MemoryStore(), blobs=blobs, queue=MemoryJobQueue(), clock=clock
    )

    def store(project: str, name: str) -> str:
        services.index.static_page(project, name, "page", "application/json", "max-age=60")
        return f"{PAGES_PREFIX}{project}/{name}"

    legacy = store("big", "0a0a.json")  # named before pages carried their revision
    first = [store("big", "1-a1.json"), store("big", "1-a2.html")]
    clock.advance(60)
    second = [store("big", "2-b1.json"), store("big", "2-b2.html")]
    clock.advance(STORED_PAGE_GRACE)  # revision 1 is superseded for a day
    third = store("big", "3-c1.json")
    # A slow request stores revision 2's other HTML page last: the name, not the time,
    # says it is not current; it goes with its revision.
    late = store("big", "2-b3.html")
    alone = store("other", "1-d1.json")  # a project's only revision stays, however old
    assert services.index.prune_pages(clock.now()) == 3  # the legacy page and revision 1
    listed = [page.key for page in blobs.listed(PAGES_PREFIX)]
    assert listed == sorted([*second, third, late, alone])
    assert all(blobs.fetch(key, 4) is None for key in [legacy, *first])
    clock.advance(STORED_PAGE_GRACE - 1)  # revision 3 is not a day old yet
    assert services.index.prune_pages(clock.now()) == 0
    clock.advance(1)
    assert services.index.prune_pages(clock.now()) == 3
    assert [page.key for page in blobs.listed(PAGES_PREFIX)] == sorted([third, alone])
