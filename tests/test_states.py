"""The state machines are exactly PEP 694's transition tables, and the undoing of a
deferral whose job the queue refused (the request answers 503: its move is undone)."""

import pytest

from chalicelib.domain.records import SessionRecord, reservation_abandoned
from chalicelib.domain.states import (
    FILE_TRANSITIONS,
    SESSION_TRANSITIONS,
    FileEvent,
    FileStatus,
    SessionEvent,
    SessionStatus,
)

S = SessionStatus
F = FileStatus


def test_publishing_session_table_matches_the_pep() -> None:
    # (from states, event, to) rows of "Publishing Session States".
    expected = {
        SessionEvent.PUBLISH: ({S.OPEN, S.ERROR}, S.PUBLISHED),
        SessionEvent.DEFER_PUBLISH: ({S.OPEN, S.ERROR}, S.PROCESSING),
        SessionEvent.PROCESSING_SUCCEEDED: ({S.PROCESSING}, S.PUBLISHED),
        SessionEvent.PROCESSING_FAILED: ({S.PROCESSING}, S.ERROR),
        SessionEvent.QUEUE_FAILED: ({S.PROCESSING}, S.OPEN),  # not the PEP's: an undo
        SessionEvent.CANCEL: ({S.OPEN, S.ERROR}, S.CANCELED),
        SessionEvent.EXPIRE: ({S.OPEN, S.ERROR}, S.CANCELED),
    }
    assert {e: (set(src), dst) for e, (src, dst) in SESSION_TRANSITIONS.items()} == expected


def test_nothing_leaves_a_terminal_session_state() -> None:
    for sources, _target in SESSION_TRANSITIONS.values():
        assert not any(s.terminal for s in sources)
    assert {s for s in S if s.terminal} == {S.PUBLISHED, S.CANCELED}


def test_processing_cannot_be_canceled() -> None:
    sources, _ = SESSION_TRANSITIONS[SessionEvent.CANCEL]
    assert S.PROCESSING not in sources


def test_open_and_error_are_the_editable_states() -> None:
    assert {s for s in S if s.editable} == {S.OPEN, S.ERROR}


def test_file_upload_session_table_matches_the_pep() -> None:
    expected = {
        FileEvent.COMPLETE: ({F.PENDING}, F.COMPLETED),
        FileEvent.DEFER_COMPLETE: ({F.PENDING}, F.PROCESSING),
        FileEvent.COMPLETE_FAILED: ({F.PENDING}, F.ERROR),
        FileEvent.PROCESSING_SUCCEEDED: ({F.PROCESSING}, F.COMPLETED),
        FileEvent.PROCESSING_FAILED: ({F.PROCESSING}, F.ERROR),
        FileEvent.QUEUE_FAILED: ({F.PROCESSING}, F.PENDING),  # not the PEP's: an undo
        FileEvent.CANCEL: ({F.PENDING, F.COMPLETED, F.ERROR}, F.CANCELED),
    }
    assert {e: (set(src), dst) for e, (src, dst) in FILE_TRANSITIONS.items()} == expected


def test_only_canceled_is_terminal_for_files() -> None:
    reachable_from = {s for sources, _ in FILE_TRANSITIONS.values() for s in sources}
    assert F.CANCELED not in reachable_from
    assert reachable_from == {F.PENDING, F.PROCESSING, F.COMPLETED, F.ERROR}


@pytest.mark.parametrize(
    ("status", "lock", "abandoned"),
    [
        (SessionStatus.OPEN, None, True),
        (SessionStatus.OPEN, 50, True),  # its publisher's lock lapsed
        (SessionStatus.ERROR, 200, False),  # still publishing
        (SessionStatus.CANCELED, None, True),
        (SessionStatus.PROCESSING, None, False),
        # Published between the reads of its marker and of itself: never taken over.
        (SessionStatus.PUBLISHED, None, False),
    ],
)
def test_a_reservation_is_taken_over_only_from_a_publisher_that_gave_up(
    status: SessionStatus, lock: int | None, abandoned: bool
) -> None:
    holder = SessionRecord(
        id="s",
        token="t",
        project="demo",
        version="1.0",
        version_key="1",
        status=status,
        created_at=0,
        expires_at=1000,
        created_by="alice",
        first_release=False,
        publish_lock_until=lock,
    )
    assert reservation_abandoned(holder, now=100) is abandoned
