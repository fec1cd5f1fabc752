"""Publishing sessions and their file upload sessions (the SessionStore port), with the
claims a session holds: its release (invariant 3) and, for a first release, its name."""

from __future__ import annotations

import contextlib
from typing import Any

from ...domain.names import InvalidInput
from ...domain.ports import FileChanged, FilenameInUse, LiveSessionExists, ProjectTaken
from ...domain.records import (
    LISTED_FILES_MAX,
    FileRecord,
    FileRef,
    ProjectRecord,
    ProjectStatus,
    PublishedFile,
    SessionRecord,
    Verified,
)
from ...domain.states import (
    EDITABLE_SESSION_STATES,
    LIVE_SESSION_STATES,
    REPLACEABLE_FILE_STATES,
    UPLOADING_FILE_STATES,
    FileEvent,
    FileStatus,
    SessionEvent,
    file_move,
    session_move,
)
from ..schema import LIVE_INDEX, LIVE_INDEX_PARTITION, TTL_ATTRIBUTE
from . import keys
from .access import registered_check
from .index import if_committed
from .items import (
    Item,
    decode,
    encode,
    file_item,
    file_record,
    project_record,
    serialize,
    session_item,
    session_record,
)
from .table import ConditionFailed, Table, Write, editable_condition, status_in

# The project item's condition for a name `:user` may take: none yet, a reservation
# every holder left (free), or the user's own reservation. Uses #status and :reserved.
FREE_OR_RESERVED_BY_USER = (
    "attribute_not_exists(pk) OR (#status = :reserved AND "
    "(attribute_not_exists(holders) OR reserved_for = :user))"
)


def free_release(session: SessionRecord) -> list[Write]:
    """The delete that frees an ending session's release, if it claimed it."""
    if session.legacy:
        return []
    return [
        {
            "Delete": {
                "Key": keys.live_key(session.project, session.version_key),
                "ConditionExpression": "attribute_not_exists(pk) OR #session = :sid",
                "ExpressionAttributeNames": {"#session": "session"},
                "ExpressionAttributeValues": {":sid": {"S": session.id}},
            }
        }
    ]


class DynamoSessions:
    def __init__(self, table: Table) -> None:
        self._t = table

    # -- projects and sessions -------------------------------------------------------------

    def get_project(self, project: str) -> ProjectRecord | None:
        """The project, or None for a free name: never held, or a reservation whose
        every holder ended (the item stays, with no holders)."""
        return project_record(project, self._t.get(keys.project_key(project)))

    def create_session(self, session: SessionRecord, *, reserve_project: bool) -> None:
        """Store a new open session, claiming its release (and, for a first release, the
        project name) in the same transaction."""
        live_ttl = session.expires_at + self._t.retention
        items: list[Write] = [
            {
                "Put": {
                    "Item": encode(session_item(session, live_ttl)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._claim_release(session),
            self._reserve_name(session) if reserve_project else registered_check(session.project),
        ]
        try:
            self._t.transact(items)
        except ConditionFailed as failed:
            if failed.at(1):
                holder = failed.found[1]
                if holder is not None:
                    raise LiveSessionExists(holder["session"]) from None
                raise ProjectTaken(session.project) from None
            if failed.at(2):
                raise ProjectTaken(session.project) from None
            raise

    def _claim_release(self, session: SessionRecord) -> Write:
        """The release's one live session (invariant 3); a legacy upload's session only
        checks that no PEP 694 session is live, and claims nothing."""
        claim: dict[str, Any] = {
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if session.legacy:
            return {
                "ConditionCheck": {
                    "Key": keys.live_key(session.project, session.version_key),
                    **claim,
                }
            }
        item = {
            **keys.live_key(session.project, session.version_key),
            "session": {"S": session.id},
            TTL_ATTRIBUTE: {"N": str(self._t.data_ttl(session))},
        }
        return {"Put": {"Item": item, **claim}}

    def _reserve_name(self, session: SessionRecord) -> Write:
        """Hold a new name for the first release, or join its creator's reservation: the
        name stays reserved while any first-release session of the creator is live, so
        one publisher can open several versions of a new project (PEP 694 "Create a
        Publishing Session"). A reservation with no holders left is a free name."""
        return {
            "Update": {
                "Key": keys.project_key(session.project),
                "UpdateExpression": (
                    "SET #status = :reserved, reserved_for = :user, "
                    "created_at = if_not_exists(created_at, :now) ADD holders :sid"
                ),
                "ConditionExpression": FREE_OR_RESERVED_BY_USER,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":reserved": {"S": ProjectStatus.RESERVED.value},
                    # "" for the operator's admin token, which has no username.
                    ":user": {"S": session.created_by or ""},
                    ":now": {"N": str(session.created_at)},
                    ":sid": {"SS": [session.id]},
                },
            }
        }

    def live_session_id(self, project: str, version_key: str) -> str | None:
        item = self._t.get(keys.live_key(project, version_key))
        return item["session"] if item else None

    def get_session(self, session_id: str) -> SessionRecord | None:
        return self._t.get_session(session_id)

    def get_session_and_files(
        self, session_id: str
    ) -> tuple[SessionRecord | None, list[FileRecord]]:
        """The session and all its file upload sessions, canceled ones included, in one
        query of the session's partition ('#SESSION' and 'F#...' sort below 'N#...')."""
        session = None
        files = []
        for item in self._t.query(keys.session_pk(session_id), below=keys.SLOT_PREFIX):
            if item["sk"] == keys.SESSION_SK:
                session = session_record(item)
            elif item["sk"].startswith(keys.FILE_PREFIX):
                files.append(file_record(item))
        return session, files

    def files_of(self, session: SessionRecord) -> list[FileRecord]:
        """The session's file upload sessions, canceled ones included, as
        get_session_and_files: read by key when the session lists them (answered from
        what files_read_along read with the request's previous round trip)."""
        if session.file_ids is None:
            return self.get_session_and_files(session.id)[1]
        found = self._t.get_many(*_file_keys(session.id, session.file_ids))
        return [file_record(item) for item in found if item is not None]

    def files_read_along(self, session: SessionRecord) -> contextlib.AbstractContextManager[None]:
        if session.file_ids is None:
            # Past LISTED_FILES_MAX: its partition is queried beside the next round trip.
            return self._t.querying_along(keys.session_pk(session.id), below=keys.SLOT_PREFIX)
        if not session.file_ids:
            return contextlib.nullcontext()
        return self._t.reading_along(_file_keys(session.id, session.file_ids))

    def move_session(
        self,
        session: SessionRecord,
        event: SessionEvent,
        now: int,
        *,
        notices: list[str] | None = None,
        by_lock_holder: bool = False,
        as_read: bool = False,
    ) -> SessionRecord:
        """Apply a session transition other than a publish commit, conditionally; the
        session as the caller gave it with the move applied (no read back). The holder
        of the publish lock (`by_lock_holder`, its lock in `session`) moves the session
        it locked, and the move removes the lock.

        A move to `canceled` also frees the release (invariant 3) and a first release's
        name reservation, in the same transaction.
        """
        _, target = session_move(event)
        lock = session.publish_lock_until if by_lock_holder else None
        update = self._session_update(event, now, notices, lock)
        if as_read:
            update["ConditionExpression"] += " AND revision = :revision"
            update["ExpressionAttributeValues"][":revision"] = {"N": str(session.revision)}
        items: list[Write] = [{"Update": {"Key": keys.session_key(session.id), **update}}]
        if target.terminal:
            items += self._release_claims(session)
        self._t.transact(items, session_id=session.id)
        return session.after(event, now, notices)

    def _session_update(
        self, event: SessionEvent, now: int, notices: list[str] | None, lock: int | None
    ) -> dict[str, Any]:
        """The conditional update of a session's state: from the transition's sources
        (editable ones also unlocked, or locked by `lock`, and unexpired, or expired for
        the expiry itself). Any publish lock goes with the move (SessionRecord.after)."""
        sources, target = session_move(event)
        if sources == EDITABLE_SESSION_STATES:
            expired = event is SessionEvent.EXPIRE
            condition, values = editable_condition(now, expired=expired, lock=lock)
        else:
            condition, values = status_in(sources)
        names = {"#status": "status"}
        sets = ["#status = :target"]
        values = {**values, ":target": {"S": target.value}}
        removes = ["publish_lock_until"]
        if notices is not None:
            sets.append("notices = :notices")
            values[":notices"] = serialize(notices)
        if target.terminal:
            sets += ["ended_at = :ended", "#ttl = :ttl"]
            names["#ttl"] = TTL_ATTRIBUTE
            values[":ended"] = {"N": str(now)}
            values[":ttl"] = {"N": str(now + self._t.retention)}
            removes.append(LIVE_INDEX_PARTITION)
        return {
            "UpdateExpression": f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ExpressionAttributeNames": names,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _release_claims(self, session: SessionRecord) -> list[Write]:
        """Writes that free a terminated session's release and (first release) name."""
        items = free_release(session)
        if session.first_release:
            # Leave the creator's reservation; with no holder left the name is free.
            # The item exists: create_session wrote it and nothing deletes it.
            items.append(
                {
                    "Update": {
                        "Key": keys.project_key(session.project),
                        "UpdateExpression": "DELETE holders :sid",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":sid": {"SS": [session.id]}},
                    }
                }
            )
        return items

    def extend_session(self, session: SessionRecord, expires_at: int, now: int) -> SessionRecord:
        """Move expires-at later (never earlier), while the session is not terminal."""
        states, values = status_in(LIVE_SESSION_STATES)
        try:
            item = self._t.update(
                Key=keys.session_key(session.id),
                UpdateExpression="SET expires_at = :expires, #ttl = :ttl",
                ConditionExpression=f"{states} AND expires_at > :now AND expires_at <= :expires",
                ExpressionAttributeNames={"#status": "status", "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    **values,
                    ":expires": {"N": str(expires_at)},
                    ":ttl": {"N": str(expires_at + self._t.retention)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as refusal:
            raise self._t.session_changed(refusal.found[0], session.id) from None
        return session_record(item)

    def expiring_session_ids(self, now: int, limit: int = 100) -> list[str]:
        """Ids of non-terminal sessions whose expires-at has passed."""
        response = self._t.db.query(
            TableName=self._t.name,
            IndexName=LIVE_INDEX,
            KeyConditionExpression="#live = :live AND expires_at <= :now",
            ExpressionAttributeNames={"#live": LIVE_INDEX_PARTITION},
            ExpressionAttributeValues={":live": {"S": "live"}, ":now": {"N": str(now)}},
            Limit=limit,
        )
        return [keys.session_id_of(decode(item)["pk"]) for item in response.get("Items", [])]

    # -- file upload sessions ----------------------------------------------------------

    def get_file(self, session_id: str, file_id: str) -> FileRecord | None:
        item = self._t.get(keys.file_key(session_id, file_id))
        return file_record(item) if item else None

    def get_session_and_file(
        self, session_id: str, file_id: str
    ) -> tuple[SessionRecord | None, FileRecord | None]:
        """A file upload session and its publishing session, in one round trip."""
        session, file = self._t.get_many(
            keys.session_key(session_id), keys.file_key(session_id, file_id)
        )
        return (
            session_record(session) if session else None,
            file_record(file) if file else None,
        )

    def filename_in_release(
        self, session: SessionRecord, filename: str
    ) -> tuple[FileRef | None, PublishedFile | None]:
        """What holds `filename` for a new file of the session: the session's live (not
        canceled) file of that name, as its slot records it, and the release's published
        file of that name. One round trip (read along with the principal's standing when
        a file is created), and one more if a file of that name is published or reserved
        (its commit marker)."""
        slot, published = self._t.get_many(*_filename_holders(session, filename))
        return self._slot_ref(session.id, slot), if_committed(self._t, session.project, published)

    def _slot_ref(self, session_id: str, slot: Item | None) -> FileRef | None:
        """The file holding a filename slot, as the slot records it; a slot written
        before slots kept the file's key is completed by reading the file."""
        if slot is None:
            return None
        if "key" in slot:
            return FileRef(session_id, slot["file_id"], slot["key"], slot.get("upload_id"))
        file = self.get_file(session_id, slot["file_id"])
        return None if file is None else file.ref

    def filename_read_along(
        self, session: SessionRecord, filename: str
    ) -> contextlib.AbstractContextManager[None]:
        try:
            wanted = _filename_holders(session, filename)
        except InvalidInput:  # not a distribution's name: refused before anything reads it
            return contextlib.nullcontext()
        return self._t.reading_along(wanted)

    def add_file(
        self, session: SessionRecord, file: FileRecord, now: int, *, replaces: FileRef | None
    ) -> None:
        """Add a pending file to an editable session. The filename slot makes a filename
        unique among the session's live files; `replaces` (a completed or failed file of
        the same name: the cancel's condition) is canceled in the same transaction."""
        ttl = self._t.data_ttl(session)
        items: list[Write] = [
            self._session_touch(session.id, now, new_file=file.id, listed=session.file_ids),
            {
                "Put": {
                    "Item": encode(file_item(file, ttl)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": self._slot(file, ttl, replaces)},
        ]
        if replaces is not None:
            items.append(
                self._file_update(replaces, FileEvent.CANCEL, only_from=REPLACEABLE_FILE_STATES)
            )
        try:
            self._t.transact(items, session_id=session.id)
        except ConditionFailed as failed:
            if failed.at(2):
                holder = failed.found[2]
                raise FilenameInUse(holder["file_id"] if holder else "") from None
            if failed.at(3) and replaces is not None:
                current = failed.found[3]
                raise FileChanged(file_record(current) if current else None) from None
            raise

    @staticmethod
    def _slot(file: FileRecord, ttl: int, replaces: FileRef | None) -> dict[str, Any]:
        """The session's filename slot, taken by `file` (from `replaces`, if given). It
        keeps what never changes about the file (FileRef), so that replacing the file
        needs no read of it."""
        slot: dict[str, Any] = {
            "Item": encode(
                {
                    "pk": keys.session_pk(file.session_id),
                    "sk": keys.slot_sk(file.filename),
                    "file_id": file.id,
                    "key": file.key,
                    "upload_id": file.upload_id,
                    TTL_ATTRIBUTE: ttl,
                }
            ),
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if replaces is not None:
            slot["ConditionExpression"] += " OR file_id = :old"
            slot["ExpressionAttributeValues"] = {":old": {"S": replaces.id}}
        return slot

    def _session_touch(
        self,
        session_id: str,
        now: int,
        *,
        new_file: str | None = None,
        listed: frozenset[str] | None = None,
    ) -> Write:
        """The session accepts changes to its files (editable, unlocked, unexpired), and
        counts this one (SessionRecord.revision). A new file's id joins the ids the
        session `listed` (if it lists them); at LISTED_FILES_MAX the list is dropped."""
        condition, values = editable_condition(now)
        values[":one"] = {"N": "1"}
        update = "ADD revision :one"
        if new_file is not None and listed is not None:
            if len(listed) < LISTED_FILES_MAX:
                update += ", file_ids :file"
                values[":file"] = {"SS": [new_file]}
            else:
                update += " REMOVE lists_files, file_ids"
        return {
            "Update": {
                "Key": keys.session_key(session_id),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ExpressionAttributeNames": {"#status": "status"},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _file_update(
        self,
        file: FileRecord | FileRef,
        event: FileEvent,
        notices: list[str] | None = None,
        *,
        only_from: frozenset[FileStatus] | None = None,
        verified: Verified | None = None,
    ) -> Write:
        sources, target = file_move(event)
        if only_from is not None:
            sources = sources & only_from
        condition, values = status_in(sources)
        values[":target"] = {"S": target.value}
        update = "SET #status = :target"
        if notices is not None:
            update += ", notices = :notices"
            values[":notices"] = serialize(notices)
        if verified is not None:
            update += ", metadata_sha256 = :msha, requires_python = :rp, uploaded_at = :at"
            values[":msha"] = serialize(verified.metadata_sha256)
            values[":rp"] = serialize(verified.requires_python)
            values[":at"] = {"N": str(verified.uploaded_at)}
        return {
            "Update": {
                "Key": keys.file_key(file.session_id, file.id),
                "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def move_file(
        self,
        file: FileRecord,
        event: FileEvent,
        now: int,
        *,
        notices: list[str] | None = None,
        verified: Verified | None = None,
    ) -> FileRecord:
        """Apply a file transition while its session is editable. Canceling also frees the
        filename slot."""
        items: list[Write] = [
            self._session_touch(file.session_id, now),
            self._file_update(file, event, notices, verified=verified),
        ]
        if event is FileEvent.CANCEL:
            items.append(
                {
                    "Delete": {
                        "Key": keys.slot_key(file.session_id, file.filename),
                        "ConditionExpression": "attribute_not_exists(pk) OR file_id = :fid",
                        "ExpressionAttributeValues": {":fid": {"S": file.id}},
                    }
                }
            )
        try:
            self._t.transact(items, session_id=file.session_id)
        except ConditionFailed as failed:
            if failed.at(1):
                current = failed.found[1]
                raise FileChanged(
                    file_record(current) if current else self.get_file(file.session_id, file.id)
                ) from None
            raise
        # The condition held: the file was in a source state and is now in the target one.
        return file.after(event, notices, verified)

    def add_signer(self, file: FileRecord, token_id: str) -> None:
        """Record that `token_id` had part URLs signed for the file, while it uploads."""
        uploading, values = status_in(UPLOADING_FILE_STATES)
        try:
            self._t.update(
                Key=keys.file_key(file.session_id, file.id),
                UpdateExpression="ADD signers :token",
                ConditionExpression=uploading,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**values, ":token": {"SS": [token_id]}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as refusal:
            current = refusal.found[0]
            raise FileChanged(file_record(current) if current else None) from None

    def add_file_notices(self, file: FileRecord, notices: list[str]) -> None:
        """Tell a file's own status why a deferred publish failed (PEP 694: the reason
        goes in the file's notices too, where it is attributable to the file)."""
        try:
            self._t.update(
                Key=keys.file_key(file.session_id, file.id),
                UpdateExpression="SET notices = list_append(if_not_exists(notices, :empty), :new)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":empty": {"L": []}, ":new": serialize(notices)},
            )
        except ConditionFailed:
            raise FileChanged(None) from None  # gone

    # -- the publish lock ------------------------------------------------------------------

    def lock_for_publish(self, session: SessionRecord, now: int, until: int) -> SessionRecord:
        """Hold the session still while it publishes: every change to an editable session
        requires no live lock. A lock outlives a crashed publisher only until `until`."""
        condition, values = editable_condition(now)
        try:
            item = self._t.update(
                Key=keys.session_key(session.id),
                UpdateExpression="SET publish_lock_until = :until",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={**values, ":until": {"N": str(until)}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as refusal:
            raise self._t.session_changed(refusal.found[0], session.id) from None
        return session_record(item)

    def unlock_publish(self, session: SessionRecord) -> None:
        if session.publish_lock_until is None:
            return  # not locked by this caller: nothing of ours to remove
        # ConditionFailed: another lock, or none: it is not ours to remove.
        with contextlib.suppress(ConditionFailed):
            self._t.update(
                Key=keys.session_key(session.id),
                UpdateExpression="REMOVE publish_lock_until",
                ConditionExpression="publish_lock_until = :until",
                ExpressionAttributeValues={":until": {"N": str(session.publish_lock_until)}},
            )


def _filename_holders(session: SessionRecord, filename: str) -> list[keys.Key]:
    """The keys of what holds `filename` for a new file of the session: its filename
    slot in the session, and the release's published file of that name."""
    return [
        keys.slot_key(session.id, filename),
        keys.published_key(session.project, session.version_key, filename),
    ]


def _file_keys(session_id: str, file_ids: frozenset[str]) -> list[keys.Key]:
    return [keys.file_key(session_id, file_id) for file_id in sorted(file_ids)]
