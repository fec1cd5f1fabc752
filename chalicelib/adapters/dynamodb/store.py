"""The session store on one DynamoDB table.

Item layout (pk / sk):

    S#<session>   #SESSION          the publishing session
    S#<session>   F#<file>          a file upload session
    S#<session>   N#<filename key>  which file currently holds a filename in the session
    R#<project>#<release>  #LIVE    the one non-terminal session of a release (invariant 3)
    P#<project>   #PROJECT          the project: reserved by a first-release session, or registered
    P#<project>   ROLE#<user>       a user's role on the project
    P#<project>   C#<session>       commit marker: the session's files are published
    P#<project>   F#<release>#<filename key>  a filename of the release, reserved or published
    (a filename key is names.filename_key: one per distribution, however it is spelled)
    INDEX#projects  <project>       a registered project, for the simple API's root
    OUTBOX#expose   <session>       a commit whose files may not be public at the edge yet
    U#<user>      #USER
    U#<user>      TOKEN#<token id>  the user's token (for listing; written with T#)
    U#<user>      ROLE#<project>    the user's role (for listing; written with P# ROLE#)
    INDEX#users   <user>            a user, for the operator's list
    T#<token id>  #TOKEN            the token's hash, never the token

Every state change is a conditional write naming the states it expects (invariant 4);
a failed condition comes back as a domain exception carrying the current record
(ReturnValuesOnConditionCheckFailure), so no second read is needed.

Publishing more files than one transaction holds stays atomic for readers (invariant 2):
filenames are first written as reservations tagged with the session, then one
transaction writes the session's commit marker. Readers list commit markers *before*
files, and show a file only when its session's marker was seen, so a reader sees all of a
session's files or none of them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ...domain.names import filename_key
from ...domain.ports import (
    AlreadyExists,
    FileChanged,
    FilenameInUse,
    LiveSessionExists,
    ProjectTaken,
    SessionChanged,
    StoreBusy,
    UnknownUser,
)
from ...domain.records import (
    FileRecord,
    ProjectRecord,
    ProjectStatus,
    PublishedFile,
    Role,
    SessionRecord,
    TokenRecord,
    Verified,
)
from ...domain.states import (
    EDITABLE_SESSION_STATES,
    REPLACEABLE_FILE_STATES,
    FileEvent,
    FileStatus,
    SessionEvent,
    SessionStatus,
    file_move,
    session_move,
)
from ..client_errors import error_code
from .schema import LIVE_INDEX, LIVE_INDEX_PARTITION, TTL_ATTRIBUTE

TRANSACTION_LIMIT = 100
# Rounds of a BatchGetItem whose keys DynamoDB left unprocessed (throttling) before giving up.
BATCH_ATTEMPTS = 5
PROJECT_INDEX = "INDEX#projects"
EXPOSE_OUTBOX = "OUTBOX#expose"
USER_INDEX = "INDEX#users"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
Item = dict[str, Any]


def _encode(item: Item) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _decode(item: dict[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _status_in(
    sources: frozenset[SessionStatus] | frozenset[FileStatus],
) -> tuple[str, dict[str, Any]]:
    """The write condition of a transition (states.py): the item is in one of `sources`."""
    values = {f":s{i}": {"S": s.value} for i, s in enumerate(sorted(sources))}
    return "#status IN (" + ", ".join(values) + ")", values


def _slot_sk(filename: str) -> str:
    """A session's slot for a filename, by the distribution it names (names.filename_key):
    `FOO-1.0-py3-none-any.whl` and `foo-1.0.0-py3-none-any.whl` share it."""
    return f"N#{filename_key(filename)}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def session_pk(session_id: str) -> str:
    return f"S#{session_id}"


SESSION_SK = "#SESSION"


def _live_key(project: str, version_key: str) -> dict[str, Any]:
    return _key(f"R#{project}#{version_key}", "#LIVE")


def _user_pk(username: str) -> str:
    return f"U#{username}"


def _project_pk(project: str) -> str:
    return f"P#{project}"


def _response(exc: ClientError) -> dict[str, Any]:
    return dict(exc.response)


def _cancellation_reasons(exc: ClientError) -> list[dict[str, Any]]:
    return list(_response(exc).get("CancellationReasons") or [])


def _old_item(exc: ClientError) -> Item | None:
    """The item a failed conditional write found (ReturnValuesOnConditionCheckFailure)."""
    item = _response(exc).get("Item")
    return _decode(item) if item else None


def _failed(reason: dict[str, Any]) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def _lost_a_race(exc: ClientError) -> bool:
    """A write that DynamoDB refused only because another transaction was working on
    the same items at that moment: nothing was written, and trying again is safe."""
    code = error_code(exc)
    if code == "TransactionConflictException":  # a single-item write met a transaction
        return True
    if code != "TransactionCanceledException":
        return False
    codes = {r.get("Code") for r in _cancellation_reasons(exc)}
    return "TransactionConflict" in codes and codes <= {"TransactionConflict", "None", None}


class _RetryingWrites:
    """The DynamoDB client, whose writes retry (with jittered backoff) when they lost a
    race to a concurrent transaction. Every write here is conditional on the state it
    expects, so running it again cannot apply it twice; a condition that failed is an
    answer, never retried. After the last attempt: StoreBusy."""

    WRITES = frozenset({"transact_write_items", "put_item", "update_item", "delete_item"})

    def __init__(self, client: Any, attempts: int = 5, sleep: Any = time.sleep) -> None:
        self._client = client
        self._attempts = attempts
        self._sleep = sleep

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._client, name)
        if name not in self.WRITES:
            return operation

        def write(**kwargs: Any) -> Any:
            attempt = 1
            while True:
                try:
                    return operation(**kwargs)
                except ClientError as exc:
                    if not _lost_a_race(exc):
                        raise
                    if attempt == self._attempts:
                        raise StoreBusy() from exc
                self.back_off(attempt)
                attempt += 1

        return write

    def back_off(self, attempt: int) -> None:
        """A jittered pause before attempt `attempt` + 1 (also for throttled batch reads)."""
        self._sleep(random.uniform(0, 0.025 * 2**attempt))


# -- record <-> item ---------------------------------------------------------------------


def _session_item(s: SessionRecord, ttl: int) -> Item:
    return {
        "pk": session_pk(s.id),
        "sk": SESSION_SK,
        "token": s.token,
        "project": s.project,
        "version": s.version,
        "version_key": s.version_key,
        "status": s.status.value,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "created_by": s.created_by,
        "first_release": s.first_release,
        "legacy": s.legacy,
        "notices": s.notices,
        "ended_at": s.ended_at,
        LIVE_INDEX_PARTITION: None if s.status.terminal else "live",
        TTL_ATTRIBUTE: ttl,
    }


def _session_record(item: Item) -> SessionRecord:
    return SessionRecord(
        id=item["pk"][2:],
        token=item["token"],
        project=item["project"],
        version=item["version"],
        version_key=item["version_key"],
        status=SessionStatus(item["status"]),
        created_at=item["created_at"],
        expires_at=item["expires_at"],
        created_by=item.get("created_by"),
        first_release=item["first_release"],
        legacy=bool(item.get("legacy")),
        notices=list(item.get("notices", [])),
        publish_lock_until=item.get("publish_lock_until"),
        ended_at=item.get("ended_at"),
    )


def _file_item(f: FileRecord, ttl: int) -> Item:
    return {
        "pk": session_pk(f.session_id),
        "sk": f"F#{f.id}",
        "filename": f.filename,
        "size": f.size,
        "hashes": f.hashes,
        "mechanism": f.mechanism,
        "status": f.status.value,
        "key": f.key,
        "created_at": f.created_at,
        "notices": f.notices,
        "upload_id": f.upload_id,
        "signers": set(f.signers) or None,  # DynamoDB has no empty sets
        "metadata_sha256": f.metadata_sha256,
        "requires_python": f.requires_python,
        "uploaded_at": f.uploaded_at,
        TTL_ATTRIBUTE: ttl,
    }


def _file_record(item: Item) -> FileRecord:
    return FileRecord(
        id=item["sk"][2:],
        session_id=item["pk"][2:],
        filename=item["filename"],
        size=item["size"],
        hashes=dict(item["hashes"]),
        mechanism=item["mechanism"],
        status=FileStatus(item["status"]),
        key=item["key"],
        created_at=item["created_at"],
        notices=list(item.get("notices", [])),
        upload_id=item.get("upload_id"),
        signers=frozenset(item.get("signers") or ()),
        metadata_sha256=item.get("metadata_sha256"),
        requires_python=item.get("requires_python"),
        uploaded_at=item.get("uploaded_at"),
    )


class DynamoStore:
    def __init__(self, client: Any, table: str, *, retention: int, max_lifetime: int) -> None:
        self._db = _RetryingWrites(client)
        self._table = table
        self._retention = retention
        self._max_lifetime = max_lifetime

    # -- small helpers -------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> Item | None:
        response = self._db.get_item(TableName=self._table, Key=_key(pk, sk), ConsistentRead=True)
        item = response.get("Item")
        return _decode(item) if item else None

    def _get_many(self, *keys: tuple[str, str]) -> list[Item | None]:
        """The items at `keys` (pk, sk), in order, None where there is none: one strongly
        consistent BatchGetItem where a request would otherwise read them one by one."""
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], Item] = {}
        request: dict[str, Any] = {
            self._table: {"Keys": [_key(pk, sk) for pk, sk in unique], "ConsistentRead": True}
        }
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            response = self._db.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(self._table, []):
                item = _decode(raw)
                found[(item["pk"], item["sk"])] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return [found.get(key) for key in keys]
            # Throttled: DynamoDB hands back what it did not read; ask again after a pause.
            self._db.back_off(attempt)
        raise StoreBusy()

    def _query(self, pk: str, prefix: str = "", *, below: str = "") -> Iterator[Item]:
        """Items of a partition whose sort key starts with `prefix`, or sorts below
        `below`, or all of them."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
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
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                yield _decode(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transact(self, items: Sequence[dict[str, Any]]) -> None:
        self._db.transact_write_items(TransactItems=list(items))

    def _data_ttl(self, session: SessionRecord) -> int:
        # A session cannot outlive created_at + max lifetime, so items that belong to it
        # can carry a TTL fixed at creation.
        return session.created_at + self._max_lifetime + self._retention

    def _live_ttl(self, session: SessionRecord) -> int:
        return session.expires_at + self._retention

    def _editable_condition(
        self, now: int, *, expired: bool = False
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The session accepts changes: open or error, not being published, and not
        expired (or, for the expiry itself, expired)."""
        expiry = "expires_at <= :now" if expired else "expires_at > :now"
        return (
            f"#status IN (:open, :error) AND {expiry} AND "
            "(attribute_not_exists(publish_lock_until) OR publish_lock_until < :now)",
            {
                ":open": {"S": SessionStatus.OPEN.value},
                ":error": {"S": SessionStatus.ERROR.value},
                ":now": {"N": str(now)},
            },
            {"#status": "status"},
        )

    def _session_check(self, session_id: str, now: int) -> dict[str, Any]:
        condition, values, names = self._editable_condition(now)
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": _key(session_pk(session_id), SESSION_SK),
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
                "ExpressionAttributeNames": names,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _current_session(
        self, item: dict[str, Any] | None, session_id: str
    ) -> SessionRecord | None:
        """The session as a failed condition found it (ALL_OLD), else as it is now."""
        return _session_record(_decode(item)) if item else self.get_session(session_id)

    # -- users, tokens, roles ------------------------------------------------------------

    def create_user(self, username: str, now: int) -> None:
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _encode(
                                {"pk": _user_pk(username), "sk": "#USER", "created_at": now}
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": _encode({"pk": USER_INDEX, "sk": username, "created_at": now}),
                        }
                    },
                ]
            )
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                raise AlreadyExists(username) from None
            raise

    def user_exists(self, username: str) -> bool:
        return self.user_created_at(username) is not None

    def user_created_at(self, username: str) -> int | None:
        item = self._get(_user_pk(username), "#USER")
        return int(item["created_at"]) if item else None

    def users(self) -> list[tuple[str, int]]:
        """(username, created at) of every user, by name."""
        return [(item["sk"], int(item["created_at"])) for item in self._query(USER_INDEX)]

    def delete_user(self, username: str) -> bool:
        """Revoke the user's tokens and roles, then remove the user. False if unknown."""
        if not self.user_exists(username):
            return False
        for item in self._query(_user_pk(username), "TOKEN#"):
            self.delete_token(item["sk"].removeprefix("TOKEN#"))
        for item in self._query(_user_pk(username), "ROLE#"):
            self.delete_role(item["sk"].removeprefix("ROLE#"), username)
        self._transact(
            [
                {"Delete": {"TableName": self._table, "Key": _key(_user_pk(username), "#USER")}},
                {"Delete": {"TableName": self._table, "Key": _key(USER_INDEX, username)}},
            ]
        )
        return True

    def put_token(self, token: TokenRecord) -> None:
        listed = {
            "description": token.description,
            "projects": sorted(token.projects) if token.projects is not None else None,
            "created_at": token.created_at,
        }
        self._transact_for_user(
            token.username,
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _encode(
                            {
                                "pk": f"T#{token.id}",
                                "sk": "#TOKEN",
                                "username": token.username,
                                "secret_hash": token.secret_hash,
                                **listed,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _encode(
                            {"pk": _user_pk(token.username), "sk": f"TOKEN#{token.id}", **listed}
                        ),
                    }
                },
            ],
        )

    def _transact_for_user(self, username: str, items: list[dict[str, Any]]) -> None:
        """Write `items` only while the user exists, so that nothing granted races a
        delete_user into a token or role that outlives its user."""
        check = {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": _key(_user_pk(username), "#USER"),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        try:
            self._transact([check, *items])
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                raise UnknownUser(username) from None
            raise

    def get_token(self, token_id: str) -> TokenRecord | None:
        item = self._get(f"T#{token_id}", "#TOKEN")
        if item is None:
            return None
        projects = item.get("projects")
        return TokenRecord(
            id=token_id,
            username=item["username"],
            secret_hash=item["secret_hash"],
            description=item.get("description", ""),
            projects=frozenset(projects) if projects is not None else None,
            created_at=item["created_at"],
        )

    def user_tokens(self, username: str) -> list[TokenRecord]:
        found = (
            self.get_token(item["sk"].removeprefix("TOKEN#"))
            for item in self._query(_user_pk(username), "TOKEN#")
        )
        return [token for token in found if token is not None]

    def delete_token(self, token_id: str) -> bool:
        token = self.get_token(token_id)
        if token is None:
            return False
        self._transact(
            [
                {"Delete": {"TableName": self._table, "Key": _key(f"T#{token_id}", "#TOKEN")}},
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _key(_user_pk(token.username), f"TOKEN#{token_id}"),
                    }
                },
            ]
        )
        return True

    def _role_puts(self, project: str, username: str, role: Role) -> list[dict[str, Any]]:
        """The role as the project holds it (for authorization) and as the user does (for
        listing), always written together."""
        return [
            {"Put": {"TableName": self._table, "Item": _encode(item)}}
            for item in (
                {"pk": _project_pk(project), "sk": f"ROLE#{username}", "role": role.value},
                {"pk": _user_pk(username), "sk": f"ROLE#{project}", "role": role.value},
            )
        ]

    def put_role(self, project: str, username: str, role: Role) -> None:
        self._transact_for_user(username, self._role_puts(project, username, role))

    def delete_role(self, project: str, username: str) -> bool:
        try:
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": _key(_project_pk(project), f"ROLE#{username}"),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": _key(_user_pk(username), f"ROLE#{project}"),
                        }
                    },
                ]
            )
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                return False
            raise
        return True

    def get_standing(self, project: str, username: str) -> tuple[ProjectRecord | None, Role | None]:
        """The project (as get_project) and the user's role on it, in one round trip: what
        every authorization of an upload reads."""
        item, role = self._get_many(
            (_project_pk(project), "#PROJECT"), (_project_pk(project), f"ROLE#{username}")
        )
        return _project_record(project, item), Role(role["role"]) if role else None

    def project_roles(self, project: str) -> list[tuple[str, Role]]:
        """(username, role) of everyone with a role on the project, by name."""
        return [
            (item["sk"].removeprefix("ROLE#"), Role(item["role"]))
            for item in self._query(_project_pk(project), "ROLE#")
        ]

    def user_roles(self, username: str) -> list[tuple[str, Role]]:
        """(project, role) of every role the user holds, by project."""
        return [
            (item["sk"].removeprefix("ROLE#"), Role(item["role"]))
            for item in self._query(_user_pk(username), "ROLE#")
        ]

    # -- projects -------------------------------------------------------------------------

    def get_project(self, project: str) -> ProjectRecord | None:
        """The project, or None for a free name: never held, or a reservation whose
        every holder ended (the item stays, with no holders)."""
        return _project_record(project, self._get(_project_pk(project), "#PROJECT"))

    # -- publishing sessions ------------------------------------------------------------

    def create_session(self, session: SessionRecord, *, reserve_project: bool) -> None:
        """Store a new open session, claiming its release (and, for a first release, the
        project name) in the same transaction."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _encode(_session_item(session, self._live_ttl(session))),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._claim_release(session),
        ]
        if reserve_project:
            items.append(self._reserve_name(session))
        else:
            items.append(self._registered(session.project))
        try:
            self._transact(items)
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if len(reasons) > 1 and _failed(reasons[1]):
                holder = self.live_session_id(session.project, session.version_key)
                if holder is not None:
                    raise LiveSessionExists(holder) from None
                raise ProjectTaken(session.project) from None
            if len(reasons) > 2 and _failed(reasons[2]):
                raise ProjectTaken(session.project) from None
            raise

    def _registered(self, project: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": _key(_project_pk(project), "#PROJECT"),
                "ConditionExpression": "#status = :registered",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":registered": {"S": ProjectStatus.REGISTERED.value}},
            }
        }

    def _claim_release(self, session: SessionRecord) -> dict[str, Any]:
        """The release's one live session (invariant 3); a legacy upload's session only
        checks that no PEP 694 session is live, and claims nothing."""
        if session.legacy:
            return {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": _live_key(session.project, session.version_key),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **_live_key(session.project, session.version_key),
                    "session": {"S": session.id},
                    TTL_ATTRIBUTE: {"N": str(self._data_ttl(session))},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _reserve_name(self, session: SessionRecord) -> dict[str, Any]:
        """Hold a new name for the first release, or join its creator's reservation: the
        name stays reserved while any first-release session of the creator is live, so
        one publisher can open several versions of a new project (PEP 694 "Create a
        Publishing Session"). A reservation with no holders left is a free name."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(_project_pk(session.project), "#PROJECT"),
                "UpdateExpression": (
                    "SET #status = :reserved, reserved_for = :user, "
                    "created_at = if_not_exists(created_at, :now) ADD holders :sid"
                ),
                "ConditionExpression": (
                    "attribute_not_exists(pk) OR (#status = :reserved AND "
                    "(attribute_not_exists(holders) OR reserved_for = :user))"
                ),
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
        item = self._get(f"R#{project}#{version_key}", "#LIVE")
        return item["session"] if item else None

    def get_session(self, session_id: str) -> SessionRecord | None:
        item = self._get(session_pk(session_id), SESSION_SK)
        return _session_record(item) if item else None

    def get_session_and_files(
        self, session_id: str
    ) -> tuple[SessionRecord | None, list[FileRecord]]:
        """The session and all its file upload sessions, canceled ones included, in one
        query of the session's partition ('#SESSION' and 'F#...' sort below 'N#...')."""
        session = None
        files = []
        for item in self._query(session_pk(session_id), below="N#"):
            if item["sk"] == SESSION_SK:
                session = _session_record(item)
            elif item["sk"].startswith("F#"):
                files.append(_file_record(item))
        return session, files

    def move_session(
        self,
        session: SessionRecord,
        event: SessionEvent,
        now: int,
        *,
        notices: list[str] | None = None,
    ) -> SessionRecord:
        """Apply a session transition other than a publish commit, conditionally.

        A move to `canceled` also frees the release (invariant 3) and a first release's
        name reservation, in the same transaction.
        """
        sources, target = session_move(event)
        if sources == EDITABLE_SESSION_STATES:
            condition, values, names = self._editable_condition(
                now, expired=event is SessionEvent.EXPIRE
            )
        else:
            condition, values = _status_in(sources)
            names = {"#status": "status"}
        sets = ["#status = :target"]
        values = {**values, ":target": {"S": target.value}}
        removes: list[str] = []
        if notices is not None:
            sets.append("notices = :notices")
            values[":notices"] = _serializer.serialize(notices)
        if target.terminal:
            sets += ["ended_at = :ended", "#ttl = :ttl"]
            names = {**names, "#ttl": TTL_ATTRIBUTE}
            values[":ended"] = {"N": str(now)}
            values[":ttl"] = {"N": str(now + self._retention)}
            removes += [LIVE_INDEX_PARTITION, "publish_lock_until"]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(session_pk(session.id), SESSION_SK),
                    "UpdateExpression": update,
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": values,
                    "ExpressionAttributeNames": names,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        if target.terminal:
            items += self._release_claims(session)
        try:
            self._transact(items)
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                raise SessionChanged(
                    self._current_session(reasons[0].get("Item"), session.id)
                ) from None
            raise
        updated = self.get_session(session.id)
        assert updated is not None
        return updated

    def _free_release(self, session: SessionRecord) -> list[dict[str, Any]]:
        """The delete that frees an ending session's release, if it claimed it."""
        if session.legacy:
            return []
        return [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _live_key(session.project, session.version_key),
                    "ConditionExpression": "attribute_not_exists(pk) OR #session = :sid",
                    "ExpressionAttributeNames": {"#session": "session"},
                    "ExpressionAttributeValues": {":sid": {"S": session.id}},
                }
            }
        ]

    def _release_claims(self, session: SessionRecord) -> list[dict[str, Any]]:
        """Writes that free a terminated session's release and (first release) name."""
        items = self._free_release(session)
        if session.first_release:
            # Leave the creator's reservation; with no holder left the name is free.
            # The item exists: create_session wrote it and nothing deletes it.
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(_project_pk(session.project), "#PROJECT"),
                        "UpdateExpression": "DELETE holders :sid",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":sid": {"SS": [session.id]}},
                    }
                }
            )
        return items

    def extend_session(self, session: SessionRecord, expires_at: int, now: int) -> SessionRecord:
        """Move expires-at later (never earlier), while the session is not terminal."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_key(session_pk(session.id), SESSION_SK),
                UpdateExpression="SET expires_at = :expires, #ttl = :ttl",
                ConditionExpression=(
                    "#status IN (:open, :error, :processing) AND expires_at > :now "
                    "AND expires_at <= :expires"
                ),
                ExpressionAttributeNames={"#status": "status", "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":expires": {"N": str(expires_at)},
                    ":ttl": {"N": str(expires_at + self._retention)},
                    ":now": {"N": str(now)},
                    ":open": {"S": SessionStatus.OPEN.value},
                    ":error": {"S": SessionStatus.ERROR.value},
                    ":processing": {"S": SessionStatus.PROCESSING.value},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                item = _response(exc).get("Item")
                raise SessionChanged(self._current_session(item, session.id)) from None
            raise
        return _session_record(_decode(response["Attributes"]))

    def expiring_session_ids(self, now: int, limit: int = 100) -> list[str]:
        """Ids of non-terminal sessions whose expires-at has passed."""
        response = self._db.query(
            TableName=self._table,
            IndexName=LIVE_INDEX,
            KeyConditionExpression="#live = :live AND expires_at <= :now",
            ExpressionAttributeNames={"#live": LIVE_INDEX_PARTITION},
            ExpressionAttributeValues={":live": {"S": "live"}, ":now": {"N": str(now)}},
            Limit=limit,
        )
        return [_decode(item)["pk"][2:] for item in response.get("Items", [])]

    # -- file upload sessions ----------------------------------------------------------

    def get_file(self, session_id: str, file_id: str) -> FileRecord | None:
        item = self._get(session_pk(session_id), f"F#{file_id}")
        return _file_record(item) if item else None

    def get_session_and_file(
        self, session_id: str, file_id: str
    ) -> tuple[SessionRecord | None, FileRecord | None]:
        """A file upload session and its publishing session, in one round trip."""
        session, file = self._get_many(
            (session_pk(session_id), SESSION_SK), (session_pk(session_id), f"F#{file_id}")
        )
        return (
            _session_record(session) if session else None,
            _file_record(file) if file else None,
        )

    def filename_in_release(
        self, session: SessionRecord, filename: str
    ) -> tuple[FileRecord | None, PublishedFile | None]:
        """What holds `filename` for a new file of the session: the session's live (not
        canceled) file of that name, and the release's published file of that name. One
        round trip, and one more for each that exists."""
        slot, published = self._get_many(
            (session_pk(session.id), _slot_sk(filename)),
            (_project_pk(session.project), self._published_sk(session.version_key, filename)),
        )
        return (
            self.get_file(session.id, slot["file_id"]) if slot else None,
            self._if_committed(session.project, published),
        )

    def add_file(
        self, session: SessionRecord, file: FileRecord, now: int, *, replaces: FileRecord | None
    ) -> None:
        """Add a pending file to an editable session. The filename slot makes a filename
        unique among the session's live files; `replaces` (a completed or failed file of
        the same name) is canceled in the same transaction."""
        ttl = self._data_ttl(session)
        slot_condition = "attribute_not_exists(pk)"
        slot_values: dict[str, Any] = {}
        if replaces is not None:
            slot_condition += " OR file_id = :old"
            slot_values = {":old": {"S": replaces.id}}
        put_slot: dict[str, Any] = {
            "TableName": self._table,
            "Item": _encode(
                {
                    "pk": session_pk(session.id),
                    "sk": _slot_sk(file.filename),
                    "file_id": file.id,
                    TTL_ATTRIBUTE: ttl,
                }
            ),
            "ConditionExpression": slot_condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if slot_values:
            put_slot["ExpressionAttributeValues"] = slot_values
        items: list[dict[str, Any]] = [
            self._session_check(session.id, now),
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _encode(_file_item(file, ttl)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": put_slot},
        ]
        if replaces is not None:
            items.append(
                self._file_update(replaces, FileEvent.CANCEL, only_from=REPLACEABLE_FILE_STATES)
            )
        try:
            self._transact(items)
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                raise SessionChanged(
                    self._current_session(reasons[0].get("Item"), session.id)
                ) from None
            if len(reasons) > 2 and _failed(reasons[2]):
                holder = reasons[2].get("Item")
                raise FilenameInUse(_decode(holder)["file_id"] if holder else "") from None
            if len(reasons) > 3 and _failed(reasons[3]):
                raise FileChanged(
                    self.get_file(session.id, replaces.id if replaces else "")
                ) from None
            raise

    def _file_update(
        self,
        file: FileRecord,
        event: FileEvent,
        notices: list[str] | None = None,
        *,
        only_from: frozenset[FileStatus] | None = None,
        verified: Verified | None = None,
    ) -> dict[str, Any]:
        sources, target = file_move(event)
        if only_from is not None:
            sources = sources & only_from
        condition, values = _status_in(sources)
        values[":target"] = {"S": target.value}
        update = "SET #status = :target"
        if notices is not None:
            update += ", notices = :notices"
            values[":notices"] = _serializer.serialize(notices)
        if verified is not None:
            update += ", metadata_sha256 = :msha, requires_python = :rp, uploaded_at = :at"
            values[":msha"] = _serializer.serialize(verified.metadata_sha256)
            values[":rp"] = _serializer.serialize(verified.requires_python)
            values[":at"] = {"N": str(verified.uploaded_at)}
        return {
            "Update": {
                "TableName": self._table,
                "Key": _key(session_pk(file.session_id), f"F#{file.id}"),
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
        items: list[dict[str, Any]] = [
            self._session_check(file.session_id, now),
            self._file_update(file, event, notices, verified=verified),
        ]
        if event is FileEvent.CANCEL:
            items.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": _key(session_pk(file.session_id), _slot_sk(file.filename)),
                        "ConditionExpression": "attribute_not_exists(pk) OR file_id = :fid",
                        "ExpressionAttributeValues": {":fid": {"S": file.id}},
                    }
                }
            )
        try:
            self._transact(items)
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                raise SessionChanged(
                    self._current_session(reasons[0].get("Item"), file.session_id)
                ) from None
            if len(reasons) > 1 and _failed(reasons[1]):
                item = reasons[1].get("Item")
                raise FileChanged(
                    _file_record(_decode(item)) if item else self.get_file(file.session_id, file.id)
                ) from None
            raise
        # What the transaction wrote, without reading it back: the condition held, so the
        # file was in a source state and is now in the target one.
        _, target = file_move(event)
        moved = replace(file, status=target, notices=file.notices if notices is None else notices)
        if verified is None:
            return moved
        return replace(
            moved,
            metadata_sha256=verified.metadata_sha256,
            requires_python=verified.requires_python,
            uploaded_at=verified.uploaded_at,
        )

    def add_signer(self, file: FileRecord, token_id: str) -> None:
        """Record that `token_id` had part URLs signed for the pending file."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(session_pk(file.session_id), f"F#{file.id}"),
                UpdateExpression="ADD signers :token",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":token": {"SS": [token_id]},
                    ":pending": {"S": FileStatus.PENDING.value},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                item = _response(exc).get("Item")
                raise FileChanged(_file_record(_decode(item)) if item else None) from None
            raise

    def add_file_notices(self, file: FileRecord, notices: list[str]) -> None:
        """Tell a file's own status why a deferred publish failed (PEP 694: the reason
        goes in the file's notices too, where it is attributable to the file)."""
        self._db.update_item(
            TableName=self._table,
            Key=_key(session_pk(file.session_id), f"F#{file.id}"),
            UpdateExpression="SET notices = list_append(if_not_exists(notices, :empty), :new)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={
                ":empty": {"L": []},
                ":new": _serializer.serialize(notices),
            },
        )

    # -- publishing ----------------------------------------------------------------------

    def lock_for_publish(self, session: SessionRecord, now: int, until: int) -> SessionRecord:
        """Hold the session still while it publishes: every change to an editable session
        requires no live lock. A lock outlives a crashed publisher only until `until`."""
        condition, values, names = self._editable_condition(now)
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_key(session_pk(session.id), SESSION_SK),
                UpdateExpression="SET publish_lock_until = :until",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":until": {"N": str(until)}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                item = _response(exc).get("Item")
                raise SessionChanged(self._current_session(item, session.id)) from None
            raise
        return _session_record(_decode(response["Attributes"]))

    def unlock_publish(self, session: SessionRecord) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(session_pk(session.id), SESSION_SK),
                UpdateExpression="REMOVE publish_lock_until",
                ConditionExpression="publish_lock_until = :until",
                ExpressionAttributeValues={":until": {"N": str(session.publish_lock_until)}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _published_sk(self, version_key: str, filename: str) -> str:
        return f"F#{version_key}#{filename_key(filename)}"

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
                self._transact([{"Put": self._reservation(session, f, now)} for f in chunk])
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                # Someone holds at least one name: settle the chunk file by file.
                for file in chunk:
                    holder = self._reserve_one(session, file, now)
                    if holder is not None:
                        conflicts[file.filename] = holder
        return conflicts

    def _reservation(
        self, session: SessionRecord, file: FileRecord, now: int, *, stale_holder: str | None = None
    ) -> dict[str, Any]:
        item = {
            "pk": _project_pk(session.project),
            "sk": self._published_sk(session.version_key, file.filename),
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
        holder = stale_holder or session.id
        return {
            "TableName": self._table,
            "Item": _encode(item),
            "ConditionExpression": "attribute_not_exists(pk) OR #session = :holder",
            "ExpressionAttributeNames": {"#session": "session"},
            "ExpressionAttributeValues": {":holder": {"S": holder}},
        }

    def _reserve_one(self, session: SessionRecord, file: FileRecord, now: int) -> str | None:
        """Reserve one filename; the holding session's id if someone live holds it."""
        stale: str | None = None
        for _attempt in range(3):
            try:
                self._db.put_item(
                    **self._reservation(session, file, now, stale_holder=stale),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return None
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                found = _old_item(exc) or self._get(
                    _project_pk(session.project),
                    self._published_sk(session.version_key, file.filename),
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
        if self._get(_project_pk(project), f"C#{holder}") is not None:
            return False  # published: permanent
        other = self.get_session(holder)
        if other is None:
            return True
        if other.status is SessionStatus.PROCESSING:
            return False
        return other.publish_lock_until is None or other.publish_lock_until < now

    def release_filenames(self, session: SessionRecord, files: Iterable[FileRecord]) -> None:
        """Give back the session's reservations after a publish that did not commit.

        Guarded by the commit marker's absence in the same transaction: a commit whose
        answer was lost (a timeout, or a failure just after it) must never have its
        published files deleted by the clean-up that follows."""
        marker = _key(_project_pk(session.project), f"C#{session.id}")
        for file in files:
            try:
                self._transact(
                    [
                        {
                            "ConditionCheck": {
                                "TableName": self._table,
                                "Key": marker,
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Delete": {
                                "TableName": self._table,
                                "Key": _key(
                                    _project_pk(session.project),
                                    self._published_sk(session.version_key, file.filename),
                                ),
                                "ConditionExpression": "#session = :sid",
                                "ExpressionAttributeNames": {"#session": "session"},
                                "ExpressionAttributeValues": {":sid": {"S": session.id}},
                            }
                        },
                    ]
                )
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                if not reasons:
                    raise
                if _failed(reasons[0]):
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
        first-release sessions registered the name meanwhile.

        A publish within the request (PUBLISH) must still hold its lock; a deferred one
        (PROCESSING_SUCCEEDED) is protected by the processing state itself."""
        sources, target = session_move(event)
        condition, status_values = _status_in(sources)
        lock_condition, lock_values = "", {}
        if event is SessionEvent.PUBLISH:
            lock_condition = " AND publish_lock_until = :lock"
            lock_values = {":lock": {"N": str(session.publish_lock_until)}}
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(session_pk(session.id), SESSION_SK),
                    "UpdateExpression": (
                        "SET #status = :target, ended_at = :now, #ttl = :ttl "
                        f"REMOVE publish_lock_until, {LIVE_INDEX_PARTITION}"
                    ),
                    "ConditionExpression": condition + lock_condition,
                    "ExpressionAttributeNames": {"#status": "status", "#ttl": TTL_ATTRIBUTE},
                    "ExpressionAttributeValues": {
                        **status_values,
                        ":target": {"S": target.value},
                        ":now": {"N": str(now)},
                        ":ttl": {"N": str(now + self._retention)},
                        **lock_values,
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _encode(
                        {
                            "pk": _project_pk(session.project),
                            "sk": f"C#{session.id}",
                            "version": session.version,
                            "committed_at": now,
                        }
                    ),
                }
            },
            *self._free_release(session),
            # Taken away once the files are public: if the publisher dies between this
            # commit and the tagging, the sweep finds the commit here and finishes it.
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _encode(
                        {
                            "pk": EXPOSE_OUTBOX,
                            "sk": session.id,
                            "project": session.project,
                            "committed_at": now,
                        }
                    ),
                }
            },
        ]
        if registers is None:
            registers = session.first_release
        if registers:
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(_project_pk(session.project), "#PROJECT"),
                        "UpdateExpression": (
                            "SET #status = :registered REMOVE holders, reserved_for"
                        ),
                        "ConditionExpression": "#status = :reserved AND contains(holders, :sid)",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":registered": {"S": ProjectStatus.REGISTERED.value},
                            ":reserved": {"S": ProjectStatus.RESERVED.value},
                            ":sid": {"S": session.id},
                        },
                    }
                }
            )
            # The project list of the simple API's root page.
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _encode({"pk": PROJECT_INDEX, "sk": session.project}),
                    }
                }
            )
            if owner is not None:
                items += self._role_puts(session.project, owner, Role.OWNER)
        else:
            # A release of a registered project: never of a name reserved, or free.
            items.append(self._registered(session.project))
        try:
            self._transact(items)
        except ClientError as exc:
            reasons = _cancellation_reasons(exc)
            if reasons and _failed(reasons[0]):
                raise SessionChanged(
                    self._current_session(reasons[0].get("Item"), session.id)
                ) from None
            if any(_failed(r) for r in reasons):
                raise ProjectTaken(session.project) from None
            raise
        updated = self.get_session(session.id)
        assert updated is not None
        return updated

    def unexposed(self, committed_before: int) -> list[tuple[str, str]]:
        """(session id, project) of commits before that time whose files were not yet
        reported public (mark_exposed)."""
        return [
            (item["sk"], item["project"])
            for item in self._query(EXPOSE_OUTBOX)
            if item["committed_at"] < committed_before
        ]

    def mark_exposed(self, session_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=_key(EXPOSE_OUTBOX, session_id))

    # -- what readers see ----------------------------------------------------------------

    def project_names(self) -> list[str]:
        """Registered projects, for the simple API's root."""
        return [item["sk"] for item in self._query(PROJECT_INDEX)]

    def published_file(self, project: str, version_key: str, filename: str) -> PublishedFile | None:
        """The published file of that name in the release, if its publish committed."""
        return self._if_committed(
            project, self._get(_project_pk(project), self._published_sk(version_key, filename))
        )

    def _if_committed(self, project: str, item: Item | None) -> PublishedFile | None:
        """A filename item as a published file, unless it is only reserved (its session's
        commit marker is not there)."""
        if item is None or self._get(_project_pk(project), f"C#{item['session']}") is None:
            return None
        return _published_record(project, item)

    def committed_sessions(self, project: str) -> frozenset[str]:
        """The sessions whose publish of this project has committed (their markers)."""
        return frozenset(item["sk"][2:] for item in self._query(_project_pk(project), "C#"))

    def published_files(
        self, project: str, committed: frozenset[str] | None = None
    ) -> list[PublishedFile]:
        """Every published file of the project, as the simple API lists them.

        Commit markers are read first (or given, as read by the caller just before): a
        file whose marker was seen was written before that marker, so it is there when
        the files are read next; a publish that commits between the two reads is left
        out whole (invariant 2)."""
        if committed is None:
            committed = self.committed_sessions(project)
        return [
            _published_record(project, item)
            for item in self._query(_project_pk(project), "F#")
            if item["session"] in committed
        ]


def _project_record(project: str, item: Item | None) -> ProjectRecord | None:
    if item is None:
        return None
    status = ProjectStatus(item["status"])
    holders = frozenset(item.get("holders") or ())
    if status is ProjectStatus.RESERVED and not holders:
        return None
    return ProjectRecord(
        name=project,
        status=status,
        reserved_for=item.get("reserved_for") or None,
        holders=holders,
        created_at=item["created_at"],
    )


def _published_record(project: str, item: Item) -> PublishedFile:
    return PublishedFile(
        project=project,
        version=item["version"],
        filename=item["filename"],
        session_id=item["session"],
        file_id=item["file_id"],
        key=item["key"],
        size=item["size"],
        hashes=dict(item["hashes"]),
        published_at=item["published_at"],
        metadata_sha256=item.get("metadata_sha256"),
        requires_python=item.get("requires_python"),
        uploaded_at=item.get("uploaded_at"),
        yanked=item.get("yanked"),
    )
