"""Items of the table and the records they hold: the one place that knows both shapes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ...domain.records import (
    FileRecord,
    ProjectRecord,
    ProjectStatus,
    PublishedFile,
    SessionRecord,
    TokenRecord,
)
from ...domain.states import FileStatus, SessionStatus
from ..schema import LIVE_INDEX_PARTITION, TTL_ATTRIBUTE
from . import keys

Item = dict[str, Any]


def serialize(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's typed form, as boto3's TypeSerializer writes
    it (written out here: importing boto3 for it cost the API's cold start boto3's own
    imports, s3transfer and multiprocessing among them)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: a bool is one
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, set | frozenset):
        return _serialized_set(value)
    if isinstance(value, list | tuple):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    raise TypeError(f"{type(value).__name__} is not stored in DynamoDB (a float: use Decimal)")


def _serialized_set(value: set[Any] | frozenset[Any]) -> dict[str, Any]:
    if value and all(isinstance(v, str) for v in value):
        return {"SS": list(value)}
    if value and all(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": [str(v) for v in value]}
    if value and all(isinstance(v, bytes | bytearray) for v in value):
        return {"BS": [bytes(v) for v in value]}
    raise TypeError("a set stored in DynamoDB is not empty, and of strings, numbers or bytes")


def encode(item: Item) -> dict[str, Any]:
    return {k: serialize(v) for k, v in item.items() if v is not None}


def decode(item: Mapping[str, Any]) -> Item:
    """An item from DynamoDB's typed form: numbers as int (this table stores whole
    numbers only), sets as sets, binary as bytes. Written out rather than
    boto3's TypeDeserializer plus a pass turning its Decimals into ints: every item
    every request reads goes through here (a seventh of a first `/simple/` read of
    2,000 files went to those two passes)."""
    return {name: _value(typed) for name, typed in item.items()}


def _value(typed: Mapping[str, Any]) -> Any:
    ((kind, value),) = typed.items()
    if kind == "S" or kind == "BOOL":
        return value
    if kind == "N":
        return _number(value)
    if kind == "M":
        return {name: _value(v) for name, v in value.items()}
    if kind == "L":
        return [_value(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {_number(v) for v in value}
    if kind == "NULL":
        return None
    if kind == "B":
        return value
    if kind == "BS":
        return set(value)
    raise TypeError(f"{kind!r} is not a DynamoDB type")


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # an exponent or a fraction: as int(Decimal) always did
        return int(Decimal(text))


def session_item(s: SessionRecord, ttl: int) -> Item:
    return {
        "pk": keys.session_pk(s.id),
        "sk": keys.SESSION_SK,
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
        # Sessions stored before the table kept their file ids have no marker: their
        # ids are unknown (None), not none.
        "lists_files": s.file_ids is not None or None,
        "file_ids": set(s.file_ids or ()) or None,  # DynamoDB has no empty sets
        "revision": s.revision,
        LIVE_INDEX_PARTITION: None if s.status.terminal else "live",
        TTL_ATTRIBUTE: ttl,
    }


def session_record(item: Item) -> SessionRecord:
    return SessionRecord(
        id=keys.session_id_of(item["pk"]),
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
        file_ids=frozenset(item.get("file_ids") or ()) if item.get("lists_files") else None,
        revision=int(item.get("revision", 0)),
    )


def file_item(f: FileRecord, ttl: int) -> Item:
    return {
        "pk": keys.session_pk(f.session_id),
        "sk": keys.file_sk(f.id),
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


def file_record(item: Item) -> FileRecord:
    return FileRecord(
        id=keys.file_id_of(item["sk"]),
        session_id=keys.session_id_of(item["pk"]),
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


def project_record(project: str, item: Item | None) -> ProjectRecord | None:
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
        revision=int(item.get("revision", 0)),
        last_commit=item.get("last_commit"),
        last_commit_at=item.get("last_commit_at"),
    )


def published_record(project: str, item: Item) -> PublishedFile:
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


def token_record(token_id: str, item: Item) -> TokenRecord:
    projects = item.get("projects")
    return TokenRecord(
        id=token_id,
        username=item["username"],
        secret_hash=item["secret_hash"],
        description=item.get("description", ""),
        projects=frozenset(projects) if projects is not None else None,
        created_at=item["created_at"],
    )
