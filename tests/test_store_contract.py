"""The store contract: every conditional write refuses what the state machines and
invariants forbid. Each test runs against the in-memory store and against the DynamoDB
store on moto (the reference), so the fake the service tests use behaves as production."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

import pytest

from chalicelib.adapters.dynamodb import keys
from chalicelib.adapters.dynamodb.store import DynamoStore
from chalicelib.adapters.memory.store import MemoryStore
from chalicelib.config import Settings
from chalicelib.domain.ports import (
    AlreadyExists,
    FileChanged,
    FilenameInUse,
    LiveSessionExists,
    ProjectTaken,
    SessionChanged,
    Store,
    UnknownUser,
)
from chalicelib.domain.records import (
    LISTED_FILES_MAX,
    PUBLISH_AT_ONCE_MAX_FILES,
    Commit,
    FileRecord,
    ProjectStatus,
    Role,
    SessionRecord,
    TokenRecord,
    Verified,
)
from chalicelib.domain.states import FileEvent, FileStatus, SessionEvent, SessionStatus
from chalicelib.domain.tokens import new_session_token, random_id, session_id_for

NOW = 1_800_000_000


class ContractStore(Store, Protocol):
    """All four store ports, as both stores implement them."""

    # Not in a port: both stores offer it, for tests to see the release's claim.
    def live_session_id(self, project: str, version_key: str) -> str | None: ...


@pytest.fixture(params=["memory", "dynamodb"], ids=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> ContractStore:
    if request.param == "memory":
        return MemoryStore()
    # Asked for only here, so the memory run never starts moto.
    aws: tuple[Any, Any, Any] = request.getfixturevalue("aws")
    settings: Settings = request.getfixturevalue("settings")
    return DynamoStore(aws[0], settings.table_name, retention=600, max_lifetime=7200)


def new_session(
    project: str = "demo", version: str = "1.0", *, first: bool = True, by: str | None = "alice"
) -> SessionRecord:
    token = new_session_token()
    return SessionRecord(
        id=session_id_for(token),
        token=token,
        project=project,
        version=version,
        version_key=version.removesuffix(".0"),
        status=SessionStatus.OPEN,
        created_at=NOW,
        expires_at=NOW + 3600,
        created_by=by,
        first_release=first,
    )


def new_file(session: SessionRecord, filename: str | None = None) -> FileRecord:
    fid = random_id()
    name = filename or f"{session.project}-{session.version}-1{fid[:6]}-py3-none-any.whl"
    return FileRecord(
        id=fid,
        session_id=session.id,
        filename=name,
        size=3,
        hashes={"sha256": "0" * 64},
        mechanism="http-post-bytes",
        status=FileStatus.PENDING,
        key=f"{session.project}/{fid}/{name}",
        created_at=NOW,
    )


def get_item(request: pytest.FixtureRequest, key: dict[str, Any]) -> dict[str, Any]:
    """A raw GetItem on the DynamoDB store's table (its tests only: starts moto)."""
    aws: tuple[Any, Any, Any] = request.getfixturevalue("aws")
    settings: Settings = request.getfixturevalue("settings")
    return dict(aws[0].get_item(TableName=settings.table_name, Key=key))


def completed(store: ContractStore, file: FileRecord) -> FileRecord:
    return store.move_file(file, FileEvent.COMPLETE, NOW)


def published(
    store: ContractStore, session: SessionRecord, files: list[FileRecord]
) -> SessionRecord:
    locked = store.lock_for_publish(session, NOW, NOW + 900)
    assert store.reserve_filenames(locked, files, NOW) == {}
    return store.commit_publish(locked, NOW, owner=session.created_by)


def test_each_commit_counts_one_revision_of_the_project(store: ContractStore) -> None:
    first = new_session()
    store.create_session(first, reserve_project=True)
    published(store, first, [])
    project = store.get_project("demo")
    assert project is not None and (project.revision, project.last_commit) == (1, first.id)
    second = new_session(version="2.0", first=False)
    store.create_session(second, reserve_project=False)
    assert store.get_project("demo") == project  # a session is not a commit
    published(store, second, [])
    again = store.get_project("demo")
    assert again is not None and (again.revision, again.last_commit) == (2, second.id)


def test_one_live_session_per_release(store: ContractStore) -> None:
    first = new_session()
    store.create_session(first, reserve_project=True)
    with pytest.raises(LiveSessionExists) as caught:
        store.create_session(new_session(), reserve_project=True)
    assert caught.value.session_id == first.id


def test_a_first_release_reserves_the_name(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    project = store.get_project("demo")
    assert project is not None
    assert project.status is ProjectStatus.RESERVED
    assert project.holders == {session.id} and project.reserved_for == "alice"
    with pytest.raises(ProjectTaken):
        store.create_session(new_session(version="2.0", by="bob"), reserve_project=True)
    # Its creator may hold it for another version too.
    other = new_session(version="2.0")
    store.create_session(other, reserve_project=True)
    project = store.get_project("demo")
    assert project is not None and project.holders == {session.id, other.id}
    # A session that is not a first release needs a registered project.
    with pytest.raises(ProjectTaken):
        store.create_session(new_session(version="3.0", first=False), reserve_project=False)


def test_the_name_is_free_once_no_first_release_session_holds_it(store: ContractStore) -> None:
    first, second = new_session(), new_session(version="2.0")
    store.create_session(first, reserve_project=True)
    store.create_session(second, reserve_project=True)
    store.move_session(first, SessionEvent.CANCEL, NOW)
    project = store.get_project("demo")
    assert project is not None and project.holders == {second.id}
    with pytest.raises(ProjectTaken):
        store.create_session(new_session(version="3.0", by="bob"), reserve_project=True)
    store.move_session(second, SessionEvent.CANCEL, NOW)
    assert store.get_project("demo") is None
    store.create_session(new_session(version="3.0", by="bob"), reserve_project=True)


def test_a_sibling_first_release_publishes_after_the_name_is_registered(
    store: ContractStore,
) -> None:
    first, second = new_session(), new_session(version="2.0")
    store.create_session(first, reserve_project=True)
    store.create_session(second, reserve_project=True)
    published(store, first, [new_file(first)])
    locked = store.lock_for_publish(second, NOW, NOW + 900)
    with pytest.raises(ProjectTaken):  # it no longer registers the name
        store.commit_publish(locked, NOW, owner="alice")
    store.commit_publish(locked, NOW, owner=None, registers=False)
    assert store.get_standing("demo", "alice")[1] is Role.OWNER


def test_canceling_frees_the_release_and_the_name(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    canceled = store.move_session(session, SessionEvent.CANCEL, NOW)
    assert canceled.status is SessionStatus.CANCELED and canceled.ended_at == NOW
    assert store.get_project("demo") is None
    assert store.live_session_id("demo", "1") is None
    store.create_session(new_session(), reserve_project=True)


def test_only_the_lock_holder_moves_a_locked_session(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    locked = store.lock_for_publish(session, NOW, NOW + 900)
    with pytest.raises(SessionChanged):  # anyone else: the session is being published
        store.move_session(session, SessionEvent.CANCEL, NOW)
    with pytest.raises(SessionChanged):  # a copy read while locked is not the holder
        store.move_session(locked, SessionEvent.CANCEL, NOW)
    with pytest.raises(SessionChanged):  # a lapsed lock holds nothing any more
        store.move_session(locked, SessionEvent.DEFER_PUBLISH, NOW + 1000, by_lock_holder=True)
    moved = store.move_session(locked, SessionEvent.DEFER_PUBLISH, NOW, by_lock_holder=True)
    assert moved.status is SessionStatus.PROCESSING and moved.publish_lock_until is None
    stored = store.get_session(session.id)
    assert stored is not None
    assert stored.status is SessionStatus.PROCESSING and stored.publish_lock_until is None
    with pytest.raises(SessionChanged):  # the lock went with the move
        store.move_session(locked, SessionEvent.DEFER_PUBLISH, NOW, by_lock_holder=True)


def test_illegal_moves_report_the_current_state(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    store.move_session(session, SessionEvent.CANCEL, NOW)
    with pytest.raises(SessionChanged) as caught:
        store.move_session(session, SessionEvent.CANCEL, NOW)
    assert caught.value.current is not None
    assert caught.value.current.status is SessionStatus.CANCELED
    with pytest.raises(SessionChanged):
        store.move_session(session, SessionEvent.PROCESSING_SUCCEEDED, NOW)


def test_expiry_applies_only_once_expires_at_has_passed(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    with pytest.raises(SessionChanged):
        store.move_session(session, SessionEvent.EXPIRE, NOW)
    assert store.expiring_session_ids(NOW) == []
    assert store.expiring_session_ids(session.expires_at) == [session.id]
    expired = store.move_session(session, SessionEvent.EXPIRE, session.expires_at)
    assert expired.status is SessionStatus.CANCELED
    assert store.expiring_session_ids(session.expires_at) == []


def test_a_filename_is_held_by_one_live_file(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    first = new_file(session, "demo-1.0.tar.gz")
    store.add_file(session, first, NOW, replaces=None)
    with pytest.raises(FilenameInUse) as caught:
        store.add_file(session, new_file(session, "demo-1.0.tar.gz"), NOW, replaces=None)
    assert caught.value.file_id == first.id
    # The slot says which file holds the name, and what replacing it needs.
    assert store.filename_in_release(session, "demo-1.0.tar.gz") == (first.ref, None)
    # A pending file cannot be replaced (the refusal says how it is); a completed one
    # can, and is canceled with it.
    with pytest.raises(FileChanged) as changed:
        store.add_file(session, new_file(session, "demo-1.0.tar.gz"), NOW, replaces=first.ref)
    assert changed.value.current is not None
    assert changed.value.current.status is FileStatus.PENDING
    done = completed(store, first)
    replacement = new_file(session, "demo-1.0.tar.gz")
    store.add_file(session, replacement, NOW, replaces=done.ref)
    old = store.get_file(session.id, first.id)
    assert old is not None and old.status is FileStatus.CANCELED
    assert store.filename_in_release(session, "demo-1.0.tar.gz") == (replacement.ref, None)


def test_a_slot_stored_before_slots_kept_the_key_is_completed_by_reading_the_file(
    store: ContractStore, request: pytest.FixtureRequest
) -> None:
    if not isinstance(store, DynamoStore):
        pytest.skip("slots as DynamoDB stored them before: the memory store has no history")
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session, "demo-1.0.tar.gz")
    store.add_file(session, file, NOW, replaces=None)
    aws: tuple[Any, Any, Any] = request.getfixturevalue("aws")
    settings: Settings = request.getfixturevalue("settings")
    aws[0].update_item(
        TableName=settings.table_name,
        Key=keys.slot_key(session.id, file.filename),
        UpdateExpression="REMOVE #key, upload_id",
        ExpressionAttributeNames={"#key": "key"},
    )
    assert store.filename_in_release(session, "demo-1.0.tar.gz") == (file.ref, None)


def test_file_moves_follow_the_table(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    failed = store.move_file(file, FileEvent.COMPLETE_FAILED, NOW, notices=["bad hash"])
    assert failed.status is FileStatus.ERROR and failed.notices == ["bad hash"]
    with pytest.raises(FileChanged) as caught:
        store.move_file(failed, FileEvent.COMPLETE, NOW)
    assert caught.value.current is not None
    assert caught.value.current.status is FileStatus.ERROR
    assert store.move_file(failed, FileEvent.CANCEL, NOW).status is FileStatus.CANCELED
    # The name is free again.
    store.add_file(session, new_file(session, file.filename), NOW, replaces=None)


def test_a_move_answers_the_file_as_stored(store: ContractStore) -> None:
    # move_file does not read the file back: what it answers must be what is stored.
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    verified = Verified(metadata_sha256="1" * 64, requires_python=">=3.10", uploaded_at=NOW)
    done = store.move_file(file, FileEvent.COMPLETE, NOW, verified=verified)
    assert done == store.get_file(session.id, file.id)
    other = new_file(session)
    store.add_file(session, other, NOW, replaces=None)
    failed = store.move_file(other, FileEvent.COMPLETE_FAILED, NOW, notices=["bad hash"])
    assert failed == store.get_file(session.id, other.id)
    assert store.move_file(failed, FileEvent.CANCEL, NOW) == store.get_file(session.id, other.id)


def test_reads_ahead_answer_each_first_read_once(store: ContractStore) -> None:
    # A request reads its token, session and file ahead in one round trip; a read after
    # the request changed the item must see the change, not what was read ahead.
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    before = store.get_session(session.id)
    with store.reading_ahead(token_id=None, session_id=session.id, file_id=file.id):
        first = store.get_session_and_file(session.id, file.id)
        store.move_file(file, FileEvent.COMPLETE, NOW)
        again = store.get_file(session.id, file.id)
        assert again is not None and again.status is FileStatus.COMPLETED
    assert first == (before, file)
    # Written before its first read: the write is what a read answers.
    other = new_file(session)
    store.add_file(session, other, NOW, replaces=None)
    with store.reading_ahead(token_id=None, session_id=session.id, file_id=other.id):
        store.move_file(other, FileEvent.CANCEL, NOW)
        canceled = store.get_file(session.id, other.id)
        assert canceled is not None and canceled.status is FileStatus.CANCELED
    with store.reading_ahead(token_id=random_id(), session_id=random_id(), file_id=None):
        pass  # nothing there, nothing read: no error either


def test_batched_reads_agree_with_single_reads(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session, "demo-1.0.tar.gz")
    store.add_file(session, file, NOW, replaces=None)
    stored = store.get_file(session.id, file.id)
    absent = random_id()
    assert store.get_session_and_file(session.id, file.id) == (
        store.get_session(session.id),
        stored,
    )
    assert store.get_session_and_file(session.id, absent) == (store.get_session(session.id), None)
    assert store.get_session_and_file(absent, file.id) == (None, None)
    assert store.get_standing("demo", "alice") == (store.get_project("demo"), None)
    assert stored is not None
    assert store.filename_in_release(session, "demo-1.0.tar.gz") == (stored.ref, None)
    published(store, session, [completed(store, file)])
    later = new_session(first=False)
    store.create_session(later, reserve_project=False)
    listed = store.published_file("demo", "1", "demo-1.0.tar.gz")
    assert listed is not None
    assert store.filename_in_release(later, "demo-1.0.tar.gz") == (None, listed)
    assert store.get_standing("demo", "alice") == (store.get_project("demo"), Role.OWNER)


def test_a_session_being_published_accepts_no_changes(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    store.lock_for_publish(session, NOW, NOW + 900)
    with pytest.raises(SessionChanged):
        store.add_file(session, new_file(session), NOW, replaces=None)
    with pytest.raises(SessionChanged):
        store.move_file(file, FileEvent.CANCEL, NOW)
    with pytest.raises(SessionChanged):
        store.move_session(session, SessionEvent.CANCEL, NOW)
    with pytest.raises(SessionChanged):
        store.lock_for_publish(session, NOW, NOW + 900)
    # A publisher that died holds the session only until its lock lapses.
    store.add_file(session, new_file(session), NOW + 901, replaces=None)


def test_publish_registers_the_name_and_makes_the_creator_owner(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    done = published(store, session, [completed(store, file)])
    assert done.status is SessionStatus.PUBLISHED and done.publish_lock_until is None
    project = store.get_project("demo")
    assert project is not None and project.status is ProjectStatus.REGISTERED
    assert store.get_standing("demo", "alice")[1] is Role.OWNER
    assert store.project_names() == ["demo"]
    assert store.live_session_id("demo", "1") is None


def test_readers_see_only_committed_files(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    files = []
    for _ in range(3):
        file = new_file(session)
        store.add_file(session, file, NOW, replaces=None)
        files.append(completed(store, file))
    locked = store.lock_for_publish(session, NOW, NOW + 900)
    assert store.reserve_filenames(locked, files, NOW) == {}
    assert store.published_files("demo") == []
    assert store.published_file("demo", "1", files[0].filename) is None
    store.commit_publish(locked, NOW, owner="alice")
    assert sorted(f.filename for f in store.published_files("demo")) == sorted(
        f.filename for f in files
    )
    assert store.published_file("demo", "1", files[0].filename) is not None


def test_reservations_span_more_than_one_transaction(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    files = [new_file(session) for _ in range(150)]
    locked = store.lock_for_publish(session, NOW, NOW + 900)
    assert store.reserve_filenames(locked, files, NOW) == {}
    store.commit_publish(locked, NOW, owner="alice")
    assert len(store.published_files("demo")) == 150


def test_a_published_filename_is_never_reserved_again(store: ContractStore) -> None:
    first = new_session()
    store.create_session(first, reserve_project=True)
    name = "demo-1.0.tar.gz"
    published(store, first, [new_file(first, name)])
    second = new_session(first=False)
    store.create_session(second, reserve_project=False)
    locked = store.lock_for_publish(second, NOW, NOW + 900)
    other = new_file(second, "demo-1.0-py3-none-any.whl")
    assert store.reserve_filenames(locked, [new_file(second, name), other], NOW) == {name: first.id}
    store.release_filenames(locked, [new_file(second, name), other])
    assert store.published_file("demo", "1", name) is not None


def test_the_clean_up_after_a_lost_commit_answer_keeps_the_files(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    files = [new_file(session) for _ in range(3)]
    locked = store.lock_for_publish(session, NOW, NOW + 900)
    store.reserve_filenames(locked, files, NOW)
    store.commit_publish(locked, NOW, owner="alice")
    # The publisher saw an error although the commit went through, and cleans up.
    store.release_filenames(locked, files)
    assert len(store.published_files("demo")) == 3


def test_an_uncommitted_reservation_is_released(
    store: ContractStore, request: pytest.FixtureRequest
) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    name = "demo-1.0.tar.gz"
    locked = store.lock_for_publish(session, NOW, NOW + 900)
    store.reserve_filenames(locked, [new_file(session, name)], NOW)
    # Through the ports (both stores): no read shows a reservation that did not commit,
    # so another session of the release asks for the name. It is refused while the
    # reservation stands (its holder is open and locked: never stale) and granted once
    # it is gone. reserve_filenames reads no session of its own, so the asking one need
    # not be stored (the release already has its one live session).
    probe = new_session(first=False)
    assert store.reserve_filenames(probe, [new_file(probe, name)], NOW) == {name: session.id}
    # And the item itself, in the DynamoDB module's layout (DynamoDB only).
    dynamodb = isinstance(store, DynamoStore)
    reservation = {"pk": {"S": "P#demo"}, "sk": {"S": "F#1#demo-1.tar.gz"}}
    if dynamodb:
        assert "Item" in get_item(request, reservation)
    store.release_filenames(locked, [new_file(session, name)])
    if dynamodb:
        assert "Item" not in get_item(request, reservation)
    assert store.reserve_filenames(probe, [new_file(probe, name)], NOW) == {}


def test_commits_wait_in_the_outbox_until_exposed(store: ContractStore) -> None:
    first, second = new_session(), new_session(version="2.0", first=False)
    store.create_session(first, reserve_project=True)
    published(store, first, [new_file(first)])
    store.create_session(second, reserve_project=False)
    published(store, second, [new_file(second)])
    assert store.unexposed(NOW) == []  # committed at NOW: not before it
    assert sorted(store.unexposed(NOW + 1)) == sorted(
        [(first.id, "demo", "1"), (second.id, "demo", "2")]
    )
    store.mark_exposed(first.id)
    store.mark_exposed(first.id)  # idempotent
    assert store.unexposed(NOW + 1) == [(second.id, "demo", "2")]


def test_a_session_lists_its_files_and_counts_their_changes(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    first, second = new_file(session), new_file(session)
    store.add_file(session, first, NOW, replaces=None)
    store.add_file(session, second, NOW, replaces=None)
    store.move_file(first, FileEvent.CANCEL, NOW)
    current = store.get_session(session.id)
    assert current is not None
    assert current.file_ids == frozenset({first.id, second.id}) and current.revision == 3
    with store.files_read_along(current):
        files = store.files_of(current)
    assert files == store.get_session_and_files(session.id)[1]
    assert {f.id: f.status for f in files} == {
        first.id: FileStatus.CANCELED,
        second.id: FileStatus.PENDING,
    }


def test_a_move_as_read_needs_the_files_unchanged(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    read = store.get_session(session.id)
    assert read is not None
    store.add_file(session, new_file(session), NOW, replaces=None)
    with pytest.raises(SessionChanged):
        store.move_session(read, SessionEvent.DEFER_PUBLISH, NOW, as_read=True)
    again = store.get_session(session.id)
    assert again is not None
    moved = store.move_session(again, SessionEvent.DEFER_PUBLISH, NOW, as_read=True)
    assert moved.status is SessionStatus.PROCESSING


def test_a_session_of_many_files_stops_listing_them(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    added = []
    for _ in range(LISTED_FILES_MAX + 2):
        current = store.get_session(session.id)
        assert current is not None
        file = new_file(session)
        store.add_file(current, file, NOW, replaces=None)
        added.append(file.id)
    current = store.get_session(session.id)
    assert current is not None and current.file_ids is None
    assert current.revision == LISTED_FILES_MAX + 2
    files = store.files_of(current)
    assert sorted(f.id for f in files) == sorted(added)
    # Read by a query, they are as current as the revision says: it guards the write.
    store.add_file(current, new_file(session), NOW, replaces=None)
    assert store.publish_at_once(current, [], NOW) is None


def test_a_publish_at_once_reserves_and_commits_in_one_write(store: ContractStore) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    done = completed(store, file)
    read = store.get_session(session.id)
    assert read is not None
    published_session = store.publish_at_once(read, [done], NOW)
    assert published_session is not None
    assert published_session.status is SessionStatus.PUBLISHED
    assert [f.filename for f in store.published_files("demo")] == [file.filename]
    project = store.get_project("demo")
    assert project is not None and project.status is ProjectStatus.REGISTERED
    assert project.revision == 1
    assert store.get_standing("demo", "alice")[1] is Role.OWNER
    assert store.live_session_id("demo", "1") is None
    assert store.unexposed(NOW + 1) == [(session.id, "demo", "1")]
    # A release of the registered project counts one more revision.
    later = new_session(version="2.0", first=False)
    store.create_session(later, reserve_project=False)
    assert store.publish_at_once(later, [], NOW) is not None
    project = store.get_project("demo")
    assert project is not None and project.revision == 2


def test_a_publish_at_once_writes_nothing_when_anything_changed(store: ContractStore) -> None:
    owner = new_session()
    store.create_session(owner, reserve_project=True)
    taken = new_file(owner, "demo-2.0.tar.gz")
    published(store, owner, [])
    session = new_session(version="2.0", first=False)
    store.create_session(session, reserve_project=False)
    file = new_file(session)
    store.add_file(session, file, NOW, replaces=None)
    read = store.get_session(session.id)
    assert read is not None
    # A file changed after the session was read: its files as read are not its files.
    done = completed(store, file)
    assert store.publish_at_once(read, [done], NOW) is None
    read = store.get_session(session.id)
    assert read is not None
    # Locked by a publisher at work, or expired.
    locked = store.lock_for_publish(read, NOW, NOW + 900)
    assert store.publish_at_once(read, [done], NOW) is None
    store.unlock_publish(locked)
    assert store.publish_at_once(read, [done], read.expires_at) is None
    # A name another live session holds (reserved while it publishes).
    holder = new_session(version="2.0", first=False)  # not stored: it only reserves
    assert store.reserve_filenames(holder, [taken], NOW) == {}
    assert store.publish_at_once(read, [done, new_file(session, taken.filename)], NOW) is None
    # Nothing was written by any of these.
    assert store.published_file("demo", "2", done.filename) is None
    assert store.get_session(session.id) == read
    assert store.unexposed(NOW + 1) == [(owner.id, "demo", "1")]
    assert store.publish_at_once(read, [done], NOW) is not None


def test_a_release_too_large_for_one_transaction_is_left_to_the_locked_protocol(
    store: ContractStore,
) -> None:
    session = new_session()
    store.create_session(session, reserve_project=True)
    files = [new_file(session) for _ in range(PUBLISH_AT_ONCE_MAX_FILES + 1)]
    assert store.publish_at_once(session, files, NOW) is None
    assert store.published_files("demo") == []
    published(store, session, files)
    assert len(store.published_files("demo")) == PUBLISH_AT_ONCE_MAX_FILES + 1


def test_the_largest_release_published_at_once_fits_one_transaction(
    store: ContractStore,
) -> None:
    # A first release: its commit writes the most (the name registered, its owner).
    session = new_session()
    store.create_session(session, reserve_project=True)
    files = [new_file(session) for _ in range(PUBLISH_AT_ONCE_MAX_FILES)]
    assert store.publish_at_once(session, files, NOW) is not None
    assert len(store.published_files("demo")) == PUBLISH_AT_ONCE_MAX_FILES


def test_a_publish_at_once_of_a_first_release_needs_its_reservation(
    store: ContractStore,
) -> None:
    first, sibling = new_session(), new_session(version="2.0")
    store.create_session(first, reserve_project=True)
    store.create_session(sibling, reserve_project=True)
    store.move_session(first, SessionEvent.CANCEL, NOW)
    assert store.publish_at_once(first, [], NOW) is None  # canceled
    assert store.publish_at_once(sibling, [], NOW) is not None
    again = new_session(version="3.0")
    store.create_session(again, reserve_project=False)
    # Registered by its sibling meanwhile: only the locked protocol commits it as a
    # release of the registered project.
    assert store.publish_at_once(replace(again, first_release=True), [], NOW) is None


def legacy_upload(
    session: SessionRecord, filename: str | None = None
) -> tuple[SessionRecord, FileRecord]:
    """A legacy upload's session and its file, completed, as publish_whole takes them."""
    legacy = replace(session, legacy=True)
    file = replace(new_file(legacy, filename), status=FileStatus.COMPLETED)
    return legacy, file


def test_a_legacy_upload_is_stored_published_in_one_write(store: ContractStore) -> None:
    session, file = legacy_upload(new_session())
    assert store.publish_whole(session, file, NOW)
    stored, files = store.get_session_and_files(session.id)
    assert stored is not None and stored.status is SessionStatus.PUBLISHED
    assert stored.legacy and stored.ended_at == NOW and stored.file_ids == frozenset({file.id})
    assert files == [file]
    assert [f.filename for f in store.published_files("demo")] == [file.filename]
    project = store.get_project("demo")
    assert project is not None and project.status is ProjectStatus.REGISTERED
    assert project.revision == 1
    assert store.get_standing("demo", "alice")[1] is Role.OWNER
    assert store.project_names() == ["demo"]
    assert store.unexposed(NOW + 1) == [(session.id, "demo", "1")]
    # A release of the registered project, by anyone the service let through.
    again, other = legacy_upload(new_session(version="2.0", first=False, by="bob"))
    assert store.publish_whole(again, other, NOW)
    project = store.get_project("demo")
    assert project is not None and project.revision == 2
    assert store.get_standing("demo", "bob")[1] is None


def test_a_legacy_upload_writes_nothing_unless_all_holds(store: ContractStore) -> None:
    open_session = new_session()
    store.create_session(open_session, reserve_project=True)  # alice reserves "demo"
    # Its release has a live Upload 2.0 session.
    assert not store.publish_whole(*legacy_upload(new_session()), NOW)
    # Another user's reservation; and a release of a project that is not registered.
    assert not store.publish_whole(*legacy_upload(new_session("demo", "2.0", by="bob")), NOW)
    assert not store.publish_whole(*legacy_upload(new_session("demo", "2.0", first=False)), NOW)
    # The creator's own reservation, for another version: registered by the upload.
    assert store.publish_whole(*legacy_upload(new_session("demo", "2.0")), NOW)
    # The same name again in that release.
    session, file = legacy_upload(new_session("demo", "2.0", first=False))
    (first,) = store.published_files("demo")
    assert not store.publish_whole(session, replace(file, filename=first.filename), NOW)
    assert store.get_session(session.id) is None
    assert store.published_files("demo") == [first]
    # The open session of the reservation publishes as a release of the project now.
    locked = store.lock_for_publish(open_session, NOW, NOW + 900)
    with pytest.raises(ProjectTaken):
        store.commit_publish(locked, NOW, owner="alice", registers=True)
    store.commit_publish(locked, NOW, owner=None, registers=False)


def test_a_releases_files_are_read_alone(store: ContractStore) -> None:
    first, second = new_session(), new_session(version="2.0", first=False)
    store.create_session(first, reserve_project=True)
    published(store, first, [new_file(first)])
    store.create_session(second, reserve_project=False)
    files = [new_file(second), new_file(second)]
    published(store, second, files)
    listed = store.published_files("demo", frozenset({second.id}), version_key="2")
    assert sorted(f.filename for f in listed) == sorted(f.filename for f in files)
    assert len(store.published_files("demo", version_key="1")) == 1


def test_a_crashed_publishers_reservation_is_taken_over(store: ContractStore) -> None:
    project = new_session()
    store.create_session(project, reserve_project=True)
    published(store, project, [])
    crashed = new_session(version="2.0", first=False)
    store.create_session(crashed, reserve_project=False)
    name = "demo-2.0.tar.gz"
    # A publisher reserves the name and dies before committing; its session ends later.
    locked = store.lock_for_publish(crashed, NOW, NOW + 900)
    store.reserve_filenames(locked, [new_file(crashed, name)], NOW)
    store.move_session(crashed, SessionEvent.CANCEL, NOW + 901)
    assert store.published_file("demo", "2", name) is None  # never committed, never shown
    later = new_session(version="2.0", first=False)
    store.create_session(later, reserve_project=False)
    relocked = store.lock_for_publish(later, NOW + 902, NOW + 1800)
    # The reservation it left behind no longer blocks anyone.
    assert store.reserve_filenames(relocked, [new_file(later, name)], NOW + 902) == {}


def test_users_tokens_and_roles(store: ContractStore) -> None:
    store.create_user("alice", NOW)
    with pytest.raises(AlreadyExists):
        store.create_user("alice", NOW)
    assert store.user_created_at("alice") is not None and store.user_created_at("bob") is None
    store.put_role("demo", "alice", Role.MAINTAINER)
    assert store.get_standing("demo", "alice")[1] is Role.MAINTAINER
    assert store.delete_role("demo", "alice") and not store.delete_role("demo", "alice")
    assert store.get_standing("demo", "alice")[1] is None


def test_user_listings_follow_every_write(store: ContractStore) -> None:
    for name in ("bob", "alice"):
        store.create_user(name, NOW)
    assert store.users() == [("alice", NOW), ("bob", NOW)]
    token = TokenRecord(
        id=random_id(),
        username="alice",
        secret_hash="h",
        description="ci",
        projects=frozenset({"demo"}),
        created_at=NOW,
    )
    store.put_token(token)
    store.put_role("demo", "alice", Role.OWNER)
    store.put_role("other", "alice", Role.MAINTAINER)
    store.put_role("demo", "bob", Role.MAINTAINER)
    assert store.user_tokens("alice") == [token]
    assert store.user_roles("alice") == [("demo", Role.OWNER), ("other", Role.MAINTAINER)]
    assert store.project_roles("demo") == [("alice", Role.OWNER), ("bob", Role.MAINTAINER)]
    store.delete_role("other", "alice")
    assert store.user_roles("alice") == [("demo", Role.OWNER)]
    assert store.delete_user("alice") and not store.delete_user("alice")
    assert store.get_token(token.id) is None and store.user_tokens("alice") == []
    assert store.project_roles("demo") == [("bob", Role.MAINTAINER)]
    assert store.users() == [("bob", NOW)]


def test_nothing_is_granted_to_a_user_that_is_gone(store: ContractStore) -> None:
    token = TokenRecord(
        id=random_id(),
        username="ghost",
        secret_hash="h",
        description="",
        projects=None,
        created_at=NOW,
    )
    with pytest.raises(UnknownUser):
        store.put_token(token)
    with pytest.raises(UnknownUser):
        store.put_role("demo", "ghost", Role.OWNER)
    assert store.get_token(token.id) is None and store.project_roles("demo") == []


def test_commits_name_each_published_session_and_its_version(store: ContractStore) -> None:
    """What a reader that listed the project before needs to read only what is new."""
    first, second = new_session(), new_session(version="2.0", first=False)
    store.create_session(first, reserve_project=True)
    assert store.commits("demo") == {}
    published(store, first, [new_file(first)])
    store.create_session(second, reserve_project=False)
    locked = store.lock_for_publish(second, NOW, NOW + 900)
    assert store.reserve_filenames(locked, [new_file(second)], NOW) == {}
    assert store.commits("demo") == {first.id: Commit("1", NOW)}  # reserved: not committed
    store.commit_publish(locked, NOW + 1, owner=None)
    assert store.commits("demo") == {first.id: Commit("1", NOW), second.id: Commit("2", NOW + 1)}
    project = store.get_project("demo")
    assert project is not None and project.state == (2, second.id, NOW + 1)
    assert store.commits("other") == {}
