"""The publish protocol (the PublishStore port, PEP 694 "Atomic Publication and
Conflicts"): every filename of the session is reserved in its release, then one
transaction commits them (index.py says how readers see all of them or none), and an
outbox remembers commits whose files the edge may not serve yet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from ...domain.ports import ProjectTaken, Unexposed
from ...domain.records import (
    PUBLISH_AT_ONCE_MAX_FILES,
    FileRecord,
    ProjectStatus,
    Role,
    SessionRecord,
    reservation_abandoned,
)
from ...domain.states import SessionEvent, session_move
from ..schema import LIVE_INDEX_PARTITION, TTL_ATTRIBUTE
from . import keys
from .access import role_puts
from .items import encode, file_item, session_item, session_record
from .sessions import FREE_OR_RESERVED_BY_USER, free_release
from .table import (
    TRANSACTION_LIMIT,
    ConditionFailed,
    Table,
    Write,
    editable_condition,
    status_in,
)


class DynamoPublishing:
    def __init__(self, table: Table) -> None:
        self._t = table

    def reserve_filenames(
        self, session: SessionRecord, files: Sequence[FileRecord], now: int
    ) -> dict[str, str]:
        """Reserve the session's filenames in its release (PEP 694 "Atomic Publication and
        Conflicts"). Returns {filename: holding session} for those held by another
        session that is published or publishing; the others are reserved for us.
        A reservation left by a publisher that crashed (lock lapsed, never committed) is
        taken over."""
        conflicts: dict[str, str] = {}
        for start in range(0, len(files), TRANSACTION_LIMIT):
            chunk = files[start : start + TRANSACTION_LIMIT]
            try:
                self._t.transact([{"Put": self._reservation(session, f, now)} for f in chunk])
            except ConditionFailed:
                # Someone holds at least one name: settle the chunk file by file.
                for file in chunk:
                    holder = self._reserve_one(session, file, now)
                    if holder is not None:
                        conflicts[file.filename] = holder
        return conflicts

    def _reservation(
        self, session: SessionRecord, file: FileRecord, now: int, *, stale_holder: str | None = None
    ) -> Write:
        item = {
            "pk": keys.project_pk(session.project),
            "sk": keys.published_sk(session.version_key, file.filename),
            "session": session.id,
            "file_id": file.id,
            "filename": file.filename,
            "version": session.version,
            "key": file.key,
            "size": file.size,
            "hashes": file.hashes,
            "published_at": now,
            "metadata_sha256": file.metadata_sha256,
            "requires_python": file.requires_python,
            "uploaded_at": file.uploaded_at,
        }
        return {
            "Item": encode(item),
            "ConditionExpression": "attribute_not_exists(pk) OR #session = :holder",
            "ExpressionAttributeNames": {"#session": "session"},
            "ExpressionAttributeValues": {":holder": {"S": stale_holder or session.id}},
        }

    def _reserve_one(self, session: SessionRecord, file: FileRecord, now: int) -> str | None:
        """Reserve one filename; the holding session's id if someone live holds it."""
        stale: str | None = None
        for _attempt in range(3):
            try:
                self._t.put(
                    **self._reservation(session, file, now, stale_holder=stale),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except ConditionFailed as refusal:
                found = refusal.found[0] or self._t.get(
                    keys.published_key(session.project, session.version_key, file.filename)
                )
            if found is None:
                stale = None  # released meanwhile: try a plain reservation again
                continue
            holder = str(found["session"])
            if not self._reservation_is_stale(session.project, holder, now):
                return holder
            stale = holder  # take it over, if it is still that holder's
        return stale or "unknown"

    def _reservation_is_stale(self, project: str, holder: str, now: int) -> bool:
        """A reservation left by a publisher that never committed and will not."""
        marker, item = self._t.get_many(keys.commit_key(project, holder), keys.session_key(holder))
        if marker is not None:
            return False  # published: permanent
        return item is None or reservation_abandoned(session_record(item), now)

    def release_filenames(self, session: SessionRecord, files: Iterable[FileRecord]) -> None:
        """Give back the session's reservations after a publish that did not commit.

        Guarded by the commit marker's absence in the same transaction: a commit whose
        answer was lost (a timeout, or a failure just after it) must never have its
        published files deleted by the clean-up that follows."""
        marker = keys.commit_key(session.project, session.id)
        for file in files:
            try:
                self._t.transact(
                    [
                        {
                            "ConditionCheck": {
                                "Key": marker,
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Delete": {
                                "Key": keys.published_key(
                                    session.project, session.version_key, file.filename
                                ),
                                "ConditionExpression": "#session = :sid",
                                "ExpressionAttributeNames": {"#session": "session"},
                                "ExpressionAttributeValues": {":sid": {"S": session.id}},
                            }
                        },
                    ]
                )
            except ConditionFailed as refusal:
                if refusal.at(0):
                    return  # committed after all: these are published files now
                # Otherwise the name is not ours (never reserved, or taken over).

    def commit_publish(
        self,
        session: SessionRecord,
        now: int,
        *,
        owner: str | None,
        event: SessionEvent = SessionEvent.PUBLISH,
        registers: bool | None = None,
    ) -> SessionRecord:
        """The single write that makes a publish visible: the session becomes published,
        its commit marker appears, the release is freed, and a first release's reserved
        name becomes registered (with the creator as owner). `registers` defaults to the
        session being a first release; it is False when another of the creator's
        first-release sessions registered the name meanwhile. The session as given, moved
        (no read back).

        A publish within the request (PUBLISH) must still hold its lock; a deferred one
        (PROCESSING_SUCCEEDED) is protected by the processing state itself."""
        if registers is None:
            registers = session.first_release
        published = self._published_session(session, event, now, _held(session, event))
        items = [published, *self._commit(session, now, owner=owner, registers=registers)]
        try:
            self._t.transact(items, session_id=session.id)
        except ConditionFailed:  # the name is not (or no longer) as `registers` says
            raise ProjectTaken(session.project) from None
        return session.after(event, now)

    def publish_at_once(
        self, session: SessionRecord, files: Sequence[FileRecord], now: int
    ) -> SessionRecord | None:
        """Reserve the filenames and commit in one transaction, without a lock: on the
        condition that the session is still editable, unlocked and unexpired, with the
        files it had when it was read (its revision), that no other session holds any
        of the names, and that a first release's name is still reserved by it. None
        when one of these fails or the release has more than PUBLISH_AT_ONCE_MAX_FILES
        files (no write is made): the locked protocol (reserve_filenames, then commit_publish)
        then says which, and takes over names a crashed publisher left."""
        if len(files) > PUBLISH_AT_ONCE_MAX_FILES:
            return None
        # (A session stored before revisions were counted has none: the condition fails.)
        registers = session.first_release
        unchanged, values = editable_condition(now)
        values[":revision"] = {"N": str(session.revision)}
        as_read = (f"{unchanged} AND revision = :revision", values)
        items = [
            self._published_session(session, SessionEvent.PUBLISH, now, as_read),
            *({"Put": self._reservation(session, f, now)} for f in files),
            *self._commit(session, now, owner=session.first_owner, registers=registers),
        ]
        if len(items) > TRANSACTION_LIMIT:  # PUBLISH_AT_ONCE_MAX_FILES outgrown: a bug
            return None
        try:
            self._t.transact(items)
        except ConditionFailed:
            return None
        return session.after(SessionEvent.PUBLISH, now)

    def publish_whole(self, session: SessionRecord, file: FileRecord, now: int) -> bool:
        """A legacy upload in one write: its session (published), its one file
        (completed), the filename in the release, the commit and its outbox entry. On
        the condition that no Upload 2.0 session of the release is live, no session holds
        the name, and the project is as `session.first_release` says: registered, or a
        free name or its creator's own reservation, which it registers (the creator its
        owner). False, with nothing written, when any of that fails."""
        if not session.legacy:
            raise ValueError("only a legacy upload's session, which claims no release")
        listed = replace(session, file_ids=frozenset({file.id}), revision=1)
        published = listed.after(SessionEvent.PUBLISH, now)
        registers = session.first_release
        items: list[Write] = [
            {
                "Put": {
                    "Item": encode(session_item(published, now + self._t.retention)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": {"Item": encode(file_item(file, self._t.data_ttl(session)))}},
            {
                "ConditionCheck": {
                    "Key": keys.live_key(session.project, session.version_key),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": self._reservation(session, file, now)},
            *self._commit(
                session,
                now,
                owner=session.first_owner,
                registers=registers,
                claimed=False,
            ),
        ]
        try:
            self._t.transact(items)
        except ConditionFailed:
            return False
        return True

    def _commit(
        self,
        session: SessionRecord,
        now: int,
        *,
        owner: str | None,
        registers: bool,
        claimed: bool = True,
    ) -> list[Write]:
        """What goes with the session's move in the commit's transaction."""
        items: list[Write] = [
            {"Put": {"Item": encode(self._commit_marker(session, now))}},
            *free_release(session),
            # Taken away by the sweep once it saw the files public: if the publisher dies
            # between this commit and the tagging, the sweep finds the commit here and
            # finishes it.
            {"Put": {"Item": encode(self._outbox_entry(session, now))}},
        ]
        if registers:
            items += self._registration(session, owner, now, claimed=claimed)
        else:
            items.append(self._release_of(session, now))
        return items

    def _published_session(
        self,
        session: SessionRecord,
        event: SessionEvent,
        now: int,
        held: tuple[str, dict[str, Any]],
    ) -> Write:
        """The session's move to published, on the condition `held` (which may use :now)."""
        _, target = session_move(event)
        condition, values = held
        return {
            "Update": {
                "Key": keys.session_key(session.id),
                "UpdateExpression": (
                    "SET #status = :target, ended_at = :now, #ttl = :ttl "
                    f"REMOVE publish_lock_until, {LIVE_INDEX_PARTITION}"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status", "#ttl": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": {
                    **values,
                    ":target": {"S": target.value},
                    ":now": {"N": str(now)},
                    ":ttl": {"N": str(now + self._t.retention)},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    @staticmethod
    def _commit_marker(session: SessionRecord, now: int) -> dict[str, object]:
        return {
            "pk": keys.project_pk(session.project),
            "sk": keys.commit_sk(session.id),
            "version": session.version,
            "version_key": session.version_key,
            "committed_at": now,
        }

    @staticmethod
    def _outbox_entry(session: SessionRecord, now: int) -> dict[str, object]:
        return {
            "pk": keys.EXPOSE_OUTBOX,
            "sk": session.id,
            "project": session.project,
            "version_key": session.version_key,
            "committed_at": now,
        }

    @staticmethod
    def _release_of(session: SessionRecord, now: int) -> Write:
        """A release of a registered project (never of a name reserved, or free) counts
        one more revision of the project, made by this session now (ProjectRecord.state)."""
        return {
            "Update": {
                "Key": keys.project_key(session.project),
                "UpdateExpression": (
                    "SET last_commit = :commit, last_commit_at = :at ADD revision :one"
                ),
                "ConditionExpression": "#status = :registered",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":registered": {"S": ProjectStatus.REGISTERED.value},
                    ":one": {"N": "1"},
                    ":commit": {"S": session.id},
                    ":at": {"N": str(now)},
                },
            }
        }

    @staticmethod
    def _registration(
        session: SessionRecord, owner: str | None, now: int, *, claimed: bool
    ) -> list[Write]:
        """A first release's name becomes registered, listed on the simple API's root,
        and owned by its creator: the name its session reserved (`claimed`), or, for a
        legacy upload, which reserves nothing, a free name or its creator's reservation."""
        values: dict[str, Any] = {
            ":registered": {"S": ProjectStatus.REGISTERED.value},
            ":reserved": {"S": ProjectStatus.RESERVED.value},
            ":one": {"N": "1"},
            ":commit": {"S": session.id},
            ":at": {"N": str(now)},
        }
        if claimed:
            values[":sid"] = {"S": session.id}
            condition = "#status = :reserved AND contains(holders, :sid)"
            created = ""
        else:
            values[":user"] = {"S": session.created_by or ""}
            values[":now"] = {"N": str(session.created_at)}
            condition = FREE_OR_RESERVED_BY_USER
            created = ", created_at = if_not_exists(created_at, :now)"
        writes: list[Write] = [
            {
                "Update": {
                    "Key": keys.project_key(session.project),
                    "UpdateExpression": (
                        "SET #status = :registered, last_commit = :commit, "
                        f"last_commit_at = :at{created} "
                        "REMOVE holders, reserved_for ADD revision :one"
                    ),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                }
            },
            {"Put": {"Item": encode({"pk": keys.PROJECT_INDEX, "sk": session.project})}},
        ]
        if owner is not None:
            writes += role_puts(session.project, owner, Role.OWNER)
        return writes

    def unexposed(self, committed_before: int) -> list[Unexposed]:
        """Commits before that time whose files were not yet reported public
        (mark_exposed)."""
        return [
            Unexposed(item["sk"], item["project"], item.get("version_key"))
            for item in self._t.query(keys.EXPOSE_OUTBOX)
            if item["committed_at"] < committed_before
        ]

    def mark_exposed(self, session_id: str) -> None:
        self._t.delete(Key=keys.outbox_key(session_id))


def _held(session: SessionRecord, event: SessionEvent) -> tuple[str, dict[str, Any]]:
    """The commit's condition in the locked protocol: the session is in the event's
    sources and, for a publish within the request, still under the publisher's lock."""
    sources, _ = session_move(event)
    condition, values = status_in(sources)
    if event is SessionEvent.PUBLISH:
        condition += " AND publish_lock_until = :lock"
        values[":lock"] = {"N": str(session.publish_lock_until or 0)}
    return condition, values
