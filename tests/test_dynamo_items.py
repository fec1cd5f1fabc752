"""The DynamoDB adapter's item codec: `serialize` writes every type as boto3's
TypeSerializer does, `decode` reads every type as its TypeDeserializer does (numbers as
int, what the adapter always kept; binary as bytes), and what `encode` writes reads back
the same through DynamoDB (moto)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from chalicelib.adapters.dynamodb.items import decode, encode, serialize
from chalicelib.config import Settings

TYPED: dict[str, Any] = {
    "text": {"S": "é ünicode"},
    "empty": {"S": ""},
    "whole": {"N": "1795311178"},
    "negative": {"N": "-12"},
    "exponent": {"N": "1E+3"},
    "fraction": {"N": "12.75"},
    "binary": {"B": b"\x00\xff"},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "map": {"M": {"sha256": {"S": "ab"}, "deep": {"M": {"n": {"N": "1"}}}}},
    "list": {"L": [{"S": "a"}, {"N": "2"}, {"L": []}, {"M": {}}]},
    "strings": {"SS": ["b", "a"]},
    "numbers": {"NS": ["1", "2"]},
    "binaries": {"BS": [b"\x02", b"\x03"]},
}


def as_before(value: Any) -> Any:
    """boto3's reading, its Decimals as int and its Binary as bytes: what decode answers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, Binary):
        return bytes(value)  # type: ignore[call-overload]  # Binary has __bytes__
    if isinstance(value, list):
        return [as_before(v) for v in value]
    if isinstance(value, set):
        return {as_before(v) for v in value}
    if isinstance(value, dict):
        return {k: as_before(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("name", sorted(TYPED))
def test_each_type_reads_as_boto3_reads_it(name: str) -> None:
    expected = as_before(TypeDeserializer().deserialize(TYPED[name]))
    found = decode({name: TYPED[name]})[name]
    assert found == expected
    assert type(found) is type(expected)


PLAIN: dict[str, Any] = {
    "nothing": None,
    "yes": True,
    "whole": 1795311178,
    "negative": -12,
    "decimal": Decimal("12.75"),
    "text": "é ünicode",
    "binary": b"\x00\xff",
    "map": {"sha256": "ab", "deep": {"n": 1, "none": None, "l": [1, "a", b"b", False]}},
    "list": ["a", 2, [], {}],
    "strings": {"b", "a"},
    "numbers": frozenset({1, 2}),
    "binaries": {b"\x02", b"\x03"},
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_each_type_is_written_as_boto3_writes_it(name: str) -> None:
    expected: dict[str, Any] = dict(TypeSerializer().serialize(PLAIN[name]))
    found = serialize(PLAIN[name])
    for kind in ("SS", "NS", "BS"):  # a set's order is the set's
        if kind in expected:
            expected[kind], found[kind] = sorted(expected[kind]), sorted(found[kind])
    assert found == expected


@pytest.mark.parametrize("value", [1.5, set(), {"a", 1}, object()])
def test_what_dynamodb_does_not_store_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        serialize(value)


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(TypeError):
        decode({"odd": {"X": "1"}})


def test_what_encode_writes_reads_back_through_dynamodb(
    aws: tuple[Any, Any, Any], settings: Settings
) -> None:
    dynamodb, table = aws[0], settings.table_name
    item = {
        "pk": "P#codec",
        "sk": "F#1",
        "size": 536870912,
        "hashes": {"sha256": "00" * 32},
        "signers": {"a", "b"},
        "notices": ["one", "two"],
        "flag": True,
        "missing": None,  # left out, as DynamoDB has no use for it
    }
    dynamodb.put_item(TableName=table, Item=encode(item))
    stored = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": "P#codec"}, "sk": {"S": "F#1"}}, ConsistentRead=True
    )["Item"]
    assert decode(stored) == {k: v for k, v in item.items() if v is not None}
