"""The embedded AWS under concurrent requests (devserver/moto_guard.py, issue 10): many
clients write at once and nothing is lost, nothing answers 500, and a transaction's or a
query's cost does not grow with the table (counted, never timed)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
    UpdateExpressionParser,  # moto marks the module "type: ignore"
)
from moto.dynamodb.responses import DynamoHandler

from chalicelib.adapters.schema import table_definition
from devserver import moto_guard
from devserver.moto_guard import EmbeddedAws, MotoChanged

REGION = "us-east-1"
THREADS = 12


def client(embedded: EmbeddedAws, service: str) -> Any:
    """A client that never retries: a 500 from the embedded AWS reaches the test."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=embedded.url,
        region_name=REGION,
        aws_access_key_id="wharf-local",
        aws_secret_access_key="wharf-local",
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=THREADS * 2),
    )


def status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def s(value: str) -> dict[str, str]:
    return {"S": value}


# -- the hooks fail loudly when moto changes ------------------------------------------------------


def written_by(db: Any, writer: int) -> set[str]:
    """The sort keys of what one writer of the concurrency test committed."""
    items = db.query(
        TableName="guard-writes",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": s(f"W#{writer}")},
        ConsistentRead=True,
    )["Items"]
    return {item["sk"]["S"] for item in items}


def test_the_hooks_match_this_moto(embedded: EmbeddedAws) -> None:
    assert moto_guard.installed()
    moto_guard.check_shape()
    assert DynamoDBBackend.transact_write_items is moto_guard.transact_write_items


@pytest.mark.parametrize(
    ("owner", "name", "replacement"),
    [
        (DynamoDBBackend, "transact_write_items", lambda self, items, token: None),
        (DynamoDBBackend, "update_item", lambda self, table_name, key: None),
        (Table, "delete_item", lambda self, key: None),
        # The partition read no longer agrees with moto's listing of the table.
        (Table, "all_items", lambda self: []),
    ],
)
def test_a_moto_of_another_shape_is_refused(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, replacement: Any
) -> None:
    monkeypatch.setattr(moto_guard, "_replaced", {})  # as before install()
    monkeypatch.setattr(owner, name, replacement)
    with pytest.raises(MotoChanged):
        moto_guard.check_shape()


def test_a_parser_that_records_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_guard, "_replaced", {})
    monkeypatch.setattr(ConditionExpressionParser, "parse", lambda self: None)
    with pytest.raises(MotoChanged):
        moto_guard.check_shape()


def test_a_condition_is_parsed_once_for_the_same_inputs(
    embedded: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[str] = []
    own = moto_guard.original(ConditionExpressionParser, "parse")

    def counted(self: ConditionExpressionParser) -> Any:
        parses.append(self.condition_expression or "")
        return own(self)

    remembered = moto_guard._remembered(counted)
    expression = "#s IN (:a, :b) AND n > :n"

    def parsed(n: str) -> tuple[Any, ConditionExpressionParser]:
        parser = ConditionExpressionParser(
            expression, {"#s": "status"}, {":a": s("open"), ":b": s("x"), ":n": {"N": n}}
        )
        return remembered(parser), parser

    first, one = parsed("1")
    again, two = parsed("1")
    other, _ = parsed("2")
    assert again is first and other is not first
    assert len(parses) == 2  # the repeat was remembered
    # What the handler's validation reads is there on a remembered parse too.
    assert two.expr_attr_names_found == one.expr_attr_names_found == ["#s", "n"]
    assert sorted(two.expr_attr_values_found) == [":a", ":b", ":n"]
    item = Item(DynamoType(s("k")), None, {"status": s("open"), "n": {"N": "5"}})
    assert again.expr(item) and not parsed("9")[0].expr(item)
    with pytest.raises(Exception):  # noqa: B017 (moto's own error for a broken expression)
        remembered(ConditionExpressionParser("n >", None, None))
    with pytest.raises(Exception):  # noqa: B017 (an invalid expression is parsed each time)
        remembered(ConditionExpressionParser("n >", None, None))
    assert parses.count("n >") == 2


def test_an_update_expression_is_parsed_once_and_its_tree_never_changed(
    embedded: EmbeddedAws,
) -> None:
    expression = "SET #s = :s, n = n + :one REMOVE gone"
    first = UpdateExpressionParser.make(expression)
    assert UpdateExpressionParser.make(expression) is first  # remembered
    assert UpdateExpressionParser.make("SET n = :n") is not first
    db = client(embedded, "dynamodb")
    db.create_table(**table_definition("guard-updates"))
    # The same expression twice (the second parse remembered), other values: the tree
    # holds placeholders, and each update applies its own values.
    for value in ("a", "b"):
        db.update_item(
            TableName="guard-updates",
            Key={"pk": s("k"), "sk": s("#")},
            UpdateExpression="SET #s = :s, n = if_not_exists(n, :zero) + :one REMOVE gone",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": s(value), ":zero": {"N": "0"}, ":one": {"N": "1"}},
        )
    item = db.get_item(TableName="guard-updates", Key={"pk": s("k"), "sk": s("#")})["Item"]
    assert item["status"] == s("b") and item["n"] == {"N": "2"}


def test_a_method_gone_from_moto_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_guard, "_replaced", {})
    monkeypatch.delattr(DynamoDBBackend, "transact_write_items")
    with pytest.raises(MotoChanged):
        moto_guard.check_shape()


# -- DynamoDB: many writers, nothing lost, no 500 ------------------------------------------------


def grow_guard_table(db: Any) -> None:
    """The concurrency test's table, holding others' items, a counter and a string."""
    db.create_table(**table_definition("guard-writes"))
    # A table grown by earlier work: moto's own transaction copied all of it, each time.
    for start in range(0, 1500, 25):
        db.batch_write_item(
            RequestItems={
                "guard-writes": [
                    {"PutRequest": {"Item": {"pk": s(f"FILLER#{i % 50}"), "sk": s(str(i))}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    db.put_item(TableName="guard-writes", Item={"pk": s("COUNTER"), "sk": s("#"), "n": {"N": "0"}})
    db.put_item(TableName="guard-writes", Item={"pk": s("TEXT"), "sk": s("#"), "n": s("text")})


def put_mine(me: dict[str, str], sk: str, condition: str | None = None) -> dict[str, Any]:
    """A transaction's Put of one of a writer's own items."""
    op: dict[str, Any] = {"TableName": "guard-writes", "Item": {"pk": me, "sk": s(sk)}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def add_one(pk: str, expression: str) -> dict[str, Any]:
    """A transaction's Update of a shared item, by `expression` with :one."""
    return {
        "Update": {
            "TableName": "guard-writes",
            "Key": {"pk": s(pk), "sk": s("#")},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def write_round(db: Any, n: int, j: int, committed: Counter[int]) -> None:
    """Writer `n`'s round `j`: a committed transaction (counted in `committed`), plain
    puts and a delete, and two transactions refused whole."""
    me = s(f"W#{n}")
    # Committed: a and b together, and the shared counter.
    db.transact_write_items(
        TransactItems=[
            put_mine(me, f"a{j}", "attribute_not_exists(pk)"),
            put_mine(me, f"b{j}"),
            add_one("COUNTER", "ADD n :one"),
        ]
    )
    committed[n] += 1
    db.put_item(TableName="guard-writes", Item={"pk": me, "sk": s(f"c{j}")})
    db.put_item(TableName="guard-writes", Item={"pk": me, "sk": s(f"d{j}")})
    db.delete_item(TableName="guard-writes", Key={"pk": me, "sk": s(f"d{j}")})
    # Canceled by a condition: nothing of it may stay.
    with pytest.raises(ClientError) as refused:
        db.transact_write_items(
            TransactItems=[put_mine(me, f"x{j}"), put_mine(me, f"a{j}", "attribute_not_exists(pk)")]
        )
    assert code(refused.value) == "TransactionCanceledException"
    # Refused while being applied (a number added to a string): the put applied
    # before it is taken back.
    with pytest.raises(ClientError) as invalid:
        db.transact_write_items(
            TransactItems=[put_mine(me, f"y{j}"), add_one("TEXT", "SET n = n + :one")]
        )
    assert status(invalid.value) == 400, invalid.value.response


def watch_writers(db: Any, done: threading.Event, failures: list[str], torn: list[str]) -> None:
    """Read every writer's items until `done`, noting an a{j} seen without its b{j} (or
    the reverse)."""
    # A transaction is never seen half applied: a{j} and b{j} appear together.
    while not done.is_set():
        for n in range(THREADS):
            try:
                keys = written_by(db, n)
            except ClientError as exc:
                failures.append(f"reader: {exc!r}")
                continue
            torn.extend(
                k for k in keys if k[0] in "ab" and ("ba"["ab".index(k[0])] + k[1:]) not in keys
            )


def test_concurrent_transactions_and_writes_lose_nothing(embedded: EmbeddedAws) -> None:
    db = client(embedded, "dynamodb")
    grow_guard_table(db)
    rounds = 15
    failures: list[str] = []
    committed = Counter[int]()
    done = threading.Event()

    def writer(n: int) -> None:
        db = client(embedded, "dynamodb")
        for j in range(rounds):
            try:
                write_round(db, n, j, committed)
            except (ClientError, AssertionError) as exc:
                failures.append(f"writer {n} round {j}: {exc!r}")

    torn: list[str] = []
    watcher = threading.Thread(
        target=watch_writers, args=(client(embedded, "dynamodb"), done, failures, torn)
    )
    watcher.start()
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(writer, range(THREADS)))
    finally:
        done.set()
        watcher.join()

    assert failures == []
    assert torn == []
    assert sum(committed.values()) == THREADS * rounds
    for n in range(THREADS):
        keys = sorted(written_by(db, n))
        assert keys == sorted(f"{p}{j}" for p in "abc" for j in range(rounds)), n
    counter = db.get_item(TableName="guard-writes", Key={"pk": s("COUNTER"), "sk": s("#")})
    assert counter["Item"]["n"] == {"N": str(THREADS * rounds)}
    assert db.describe_table(TableName="guard-writes")["Table"]["ItemCount"] == (
        1500 + 2 + THREADS * rounds * 3
    )


# -- the replacement answers what moto's own transaction answers ----------------------------------

SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]


def backend_with(size: int, name: str = "t") -> DynamoDBBackend:
    """A DynamoDB backend of its own (not the server's) holding a table of `size` items
    besides the few the transactions use."""
    backend = DynamoDBBackend(REGION, "123456789012")
    table = Table(  # type: ignore[abstract]  # as DynamoDBBackend.create_table builds it
        name, account_id="123456789012", region=REGION, schema=SCHEMA, attr=ATTRS
    )
    backend.tables[name] = table
    for i in range(size):
        table.put_item({"pk": s(f"FILLER#{i % 97}"), "sk": s(str(i)), "data": s("x" * 40)})
    table.put_item({"pk": s("P"), "sk": s("old"), "status": s("open"), "n": {"N": "1"}})
    table.put_item({"pk": s("P"), "sk": s("text"), "n": s("text")})
    return backend


def put(sk: str, condition: str | None = None, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": s("P"), "sk": s(sk)}, **extra}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def update(sk: str, expression: str, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": s("P"), "sk": s(sk)},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
            **extra,
        }
    }


TRANSACTIONS: dict[str, list[dict[str, Any]]] = {
    "committed": [
        put("new", "attribute_not_exists(pk)"),
        update(
            "old",
            "SET #s = :s ADD n :one",
            {":s": s("done"), ":one": {"N": "1"}},
            ExpressionAttributeNames={"#s": "status"},
        ),
        {"Delete": {"TableName": "t", "Key": {"pk": s("P"), "sk": s("text")}}},
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": {"pk": s("FILLER#1"), "sk": s("1")},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ],
    "refused with the current item": [
        put("new"),
        put("old", "attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        update("text", "SET m = :m", {":m": s("m")}),
    ],
    "refused while applied": [
        put("new"),
        update(
            "old", "SET #s = :s", {":s": s("changed")}, ExpressionAttributeNames={"#s": "status"}
        ),
        update("text", "SET n = n + :one", {":one": {"N": "1"}}),
    ],
    "one item twice": [put("new"), put("new")],
    "unknown table": [put("new"), {"Put": {"TableName": "nowhere", "Item": {"pk": s("P")}}}],
}


def outcome(
    transact: Callable[[DynamoDBBackend, list[dict[str, Any]]], None], items: list[dict[str, Any]]
) -> tuple[str, str, list[Any]]:
    """What a transaction answers, and the table afterwards."""
    backend = backend_with(20)
    try:
        transact(backend, copy.deepcopy(items))
        answer = "ok"
    except Exception as exc:
        answer = f"{type(exc).__name__}: {getattr(exc, 'description', exc)}"
    table = backend.tables["t"]
    state = [item.to_json() for item in moto_guard.original(Table, "all_items")(table)]
    return answer, type(answer).__name__, state


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_a_transaction_answers_as_moto_does(embedded: EmbeddedAws, name: str) -> None:
    items = TRANSACTIONS[name]
    mine = outcome(moto_guard.transact_write_items, items)
    motos = outcome(moto_guard.original(DynamoDBBackend, "transact_write_items"), items)
    assert mine == motos


# -- costs that do not grow with the table (counted, not timed) -----------------------------------


class Counting:
    """Counts every deep copy of an object, nested ones included (copy.deepcopy recurses
    through the module's own name, which this replaces)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        deepcopy = copy.deepcopy

        def counted(value: Any, memo: Any = None, _nil: Any = None) -> Any:
            self.calls += 1
            return deepcopy(value, memo) if _nil is None else deepcopy(value, memo, _nil)

        monkeypatch.setattr(copy, "deepcopy", counted)


def copies(
    monkeypatch: pytest.MonkeyPatch,
    transact: Callable[[DynamoDBBackend, list[dict[str, Any]]], None],
    size: int,
    items: list[dict[str, Any]],
) -> int:
    backend = backend_with(size)
    with monkeypatch.context() as patch:
        counting = Counting(patch)
        with contextlib.suppress(Exception):  # a refusal costs copies too
            transact(backend, items)
    return counting.calls


@pytest.mark.parametrize(
    "name", ["committed", "refused with the current item", "refused while applied"]
)
def test_a_transaction_copies_what_it_touches_not_the_table(
    embedded: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    items = TRANSACTIONS[name]
    small = copies(monkeypatch, moto_guard.transact_write_items, 10, items)
    large = copies(monkeypatch, moto_guard.transact_write_items, 2000, items)
    assert small == large
    # The instrument sees the problem it guards against: moto's own copies the table.
    motos = moto_guard.original(DynamoDBBackend, "transact_write_items")
    assert copies(monkeypatch, motos, 2000, items) > copies(monkeypatch, motos, 10, items) + 2000


def comparisons(monkeypatch: pytest.MonkeyPatch, backend: DynamoDBBackend) -> tuple[int, Any]:
    """How many key comparisons one base-table query makes, and what it answers."""
    counted = Counter[str]()
    with monkeypatch.context() as patch:
        for name in ("__eq__", "__lt__"):
            method = getattr(DynamoType, name)

            def counting(self: Any, other: Any, _name: str = name, _method: Any = method) -> Any:
                counted[_name] += 1
                return _method(self, other)

            patch.setattr(DynamoType, name, counting)
        # No start key: None, which moto's annotation leaves out.
        query: Any = backend.query
        items, scanned, last = query("t", s("P"), "BEGINS_WITH", [s("o")], 10, None, True, None)
    return sum(counted.values()), ([i.to_json() for i in items], scanned, last)


def test_a_query_reads_its_partition_not_the_table(
    embedded: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, answer = comparisons(monkeypatch, backend_with(10))
    large, same = comparisons(monkeypatch, backend_with(2000))
    assert small == large
    assert answer == same
    assert [item["Attributes"]["sk"] for item in answer[0]] == [s("old")]
    # moto's own listing of the table answers the same, at the table's cost.
    with monkeypatch.context() as patch:
        patch.setattr(Table, "all_items", moto_guard.original(Table, "all_items"))
        patch.setattr(Table, "query", moto_guard.original(Table, "query"))
        motos_small, motos_answer = comparisons(monkeypatch, backend_with(10))
        motos_large, _ = comparisons(monkeypatch, backend_with(2000))
    assert motos_answer == answer
    assert motos_large > motos_small + 2000


def test_a_prefix_query_reads_the_items_with_the_prefix_not_the_partition(
    embedded: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    def with_siblings(size: int) -> DynamoDBBackend:
        backend = backend_with(0)
        for i in range(size):  # the partition's other items, e.g. a project's files
            backend.tables["t"].put_item({"pk": s("P"), "sk": s(f"z{i}")})
        return backend

    small, answer = comparisons(monkeypatch, with_siblings(10))
    large, same = comparisons(monkeypatch, with_siblings(2000))
    assert small == large
    assert answer == same
    assert [item["Attributes"]["sk"] for item in answer[0]] == [s("old")]
    # Through the server, as a begins_with KeyConditionExpression.
    db = client(embedded, "dynamodb")
    db.create_table(
        TableName="guard-prefix",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for sk in ("C#1", "C#2", "F#1", "F#2", "F#3", "N#1"):
        db.put_item(TableName="guard-prefix", Item={"pk": s("P"), "sk": s(sk)})
    found = db.query(
        TableName="guard-prefix",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": s("P"), ":prefix": s("F#")},
    )["Items"]
    assert [item["sk"]["S"] for item in found] == ["F#1", "F#2", "F#3"]


# -- a plain read of a partition answers what moto's own query answers --------------------------

PARTITION_TABLE = "guard-partition"
# Every attribute type, nested: what the plain read writes out must be what moto's writes.
EVERY_TYPE: dict[str, Any] = {
    "text": s("é ünicode"),
    "number": {"N": "-12.5"},
    "binary": {"B": b"\x00\xffbytes"},
    "yes": {"BOOL": True},
    "nothing": {"NULL": True},
    "map": {"M": {"sha256": s("ab" * 32), "deep": {"M": {"n": {"N": "1"}, "l": {"L": [s("x")]}}}}},
    "list": {"L": [s("a"), {"N": "2"}, {"B": b"\x01"}, {"M": {"k": {"SS": ["p", "q"]}}}]},
    "strings": {"SS": ["b", "a"]},
    "numbers": {"NS": ["1", "2.5"]},
    "binaries": {"BS": [b"\x02", b"\x03"]},
}


@pytest.fixture(scope="module")
def partition_db(embedded: EmbeddedAws) -> Any:
    """A table whose partition P holds items of every type, sort keys of several prefixes
    and, past 1 MB in all, pages; partition Q its neighbour."""
    db = client(embedded, "dynamodb")
    db.create_table(
        TableName=PARTITION_TABLE,
        KeySchema=SCHEMA,
        AttributeDefinitions=ATTRS,
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(30):
        db.put_item(
            TableName=PARTITION_TABLE,
            Item={"pk": s("P"), "sk": s(f"F#{i:03}"), "pad": s("x" * 60_000), **EVERY_TYPE},
        )
    for sk in ("C#1", "C#2", "N#1", "é", "Z"):
        db.put_item(TableName=PARTITION_TABLE, Item={"pk": s("P"), "sk": s(sk), **EVERY_TYPE})
    db.put_item(TableName=PARTITION_TABLE, Item={"pk": s("Q"), "sk": s("F#000")})
    return db


def every_page(db: Any, **request: Any) -> list[dict[str, Any]]:
    """The pages of a query, followed through LastEvaluatedKey (the answer's metadata
    aside), or the error's code as the only page."""
    pages = []
    request = {"TableName": PARTITION_TABLE, **request}
    while True:
        try:
            page = db.query(**request)
        except ClientError as exc:
            return [{"error": code(exc)}]
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


PARTITION_QUERIES: dict[str, dict[str, Any]] = {
    "partition": {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": s("P")},
    },
    "prefix": {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": s("P"), ":prefix": s("F#")},
        "ConsistentRead": True,
    },
    "below": {
        "KeyConditionExpression": "pk = :pk AND sk < :below",
        "ExpressionAttributeValues": {":pk": s("P"), ":below": s("F#010")},
    },
    "started": {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": s("P")},
        "ExclusiveStartKey": {"pk": s("P"), "sk": s("C#2")},
    },
    "empty": {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": s("R")}},
    # moto's own answers these (the plain read does not take them): the same either way.
    "limited": {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": s("P")},
        "Limit": 3,
    },
    "backwards": {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": s("P"), ":prefix": s("C#")},
        "ScanIndexForward": False,
    },
    "named": {
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":pk": s("Q")},
    },
    "unused value": {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": s("P"), ":other": s("x")},
    },
    "empty prefix": {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": s("P"), ":prefix": s("")},
    },
    "not the hash key": {
        "KeyConditionExpression": "sk = :pk",
        "ExpressionAttributeValues": {":pk": s("P")},
    },
    "no table": {
        "TableName": "guard-no-such-table",
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": s("P")},
    },
}


@pytest.mark.parametrize("name", sorted(PARTITION_QUERIES))
def test_a_partition_read_answers_as_moto_does(
    partition_db: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    ours = every_page(partition_db, **PARTITION_QUERIES[name])
    with monkeypatch.context() as patch:
        patch.setattr(DynamoHandler, "query", moto_guard.original(DynamoHandler, "query"))
        motos = every_page(partition_db, **PARTITION_QUERIES[name])
    assert ours == motos
    if name == "partition":  # past 1 MB: pages, as DynamoDB's
        assert len(ours) == 2
        assert sum(page["Count"] for page in ours) == 35


def test_an_item_is_sized_as_moto_sizes_it() -> None:
    """Where a page ends (what it writes is compared above, page by page)."""
    for attrs in (EVERY_TYPE, {"text": s("é"), "binary": {"B": "AAE="}, "n": {"N": "-1.5"}}):
        item = Item(DynamoType(s("P")), DynamoType(s("x")), {"pk": s("P"), "sk": s("x"), **attrs})
        assert moto_guard._written(item)[1] == item.size()


def test_a_plain_partition_read_leaves_moto_query_alone(
    partition_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("moto's query ran")

    monkeypatch.setattr(Table, "query", refused)
    pages = every_page(partition_db, **PARTITION_QUERIES["prefix"])
    assert [item["sk"]["S"] for page in pages for item in page["Items"]] == [
        f"F#{i:03}" for i in range(30)
    ]


# -- SQS: sends are never lost, a long poll holds nobody back ------------------------------------


def test_a_long_poll_does_not_hold_back_the_send_it_waits_for(embedded: EmbeddedAws) -> None:
    sqs = client(embedded, "sqs")
    url = sqs.create_queue(QueueName="guard-long-poll")["QueueUrl"]
    received: list[list[dict[str, Any]]] = []
    waiting = threading.Thread(
        target=lambda: received.append(
            client(embedded, "sqs")
            .receive_message(QueueUrl=url, WaitTimeSeconds=20)
            .get("Messages", [])
        )
    )
    waiting.start()
    # Were the long poll to hold the queue's lock, this send would wait until the poll gave
    # up empty-handed (and the assertion below fail), whatever the timing.
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    waiting.join()
    assert [m["Body"] for m in received[0]] == ["wake up"]


def test_concurrent_sends_and_deletes_lose_no_message(embedded: EmbeddedAws) -> None:
    sqs = client(embedded, "sqs")
    url = sqs.create_queue(QueueName="guard-jobs", Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]
    per_sender = 15
    sent = {f"job-{n}-{i}" for n in range(8) for i in range(per_sender)}
    received: set[str] = set()
    failures: list[str] = []
    senders_done = threading.Event()

    def send(n: int) -> None:
        queue = client(embedded, "sqs")
        for i in range(per_sender):
            queue.send_message(QueueUrl=url, MessageBody=f"job-{n}-{i}")

    def consume() -> None:
        queue = client(embedded, "sqs")
        empty = False
        while not empty:  # an empty long poll after the last send: the queue is drained
            try:
                messages = queue.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
                for message in messages:
                    received.add(message["Body"])
                    queue.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except ClientError as exc:
                failures.append(repr(exc))
                return
            empty = not messages and senders_done.is_set()

    consumers = [threading.Thread(target=consume) for _ in range(3)]
    for consumer in consumers:
        consumer.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, range(8)))
    finally:
        senders_done.set()
        for consumer in consumers:
            consumer.join()
    assert failures == []
    assert received == sent


# -- S3: conditional writes have one winner -------------------------------------------------------


def test_one_of_many_racing_conditional_puts_wins(embedded: EmbeddedAws) -> None:
    s3 = client(embedded, "s3")
    s3.create_bucket(Bucket="guard-bucket")
    barrier = threading.Barrier(16)

    def put_new(n: int) -> tuple[int, bytes]:
        body = f"writer {n} ".encode() * 10_000
        mine = client(embedded, "s3")
        barrier.wait()
        try:
            mine.put_object(Bucket="guard-bucket", Key="once", Body=body, IfNoneMatch="*")
        except ClientError as exc:
            return status(exc), body
        return 200, body

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(put_new, range(16)))
    winners = [body for answer, body in answers if answer == 200]
    assert sorted(answer for answer, _ in answers) == [200] + [412] * 15
    stored = s3.get_object(Bucket="guard-bucket", Key="once")["Body"].read()
    assert stored == winners[0]


def test_racing_completions_of_one_upload_all_succeed(embedded: EmbeddedAws) -> None:
    s3 = client(embedded, "s3")
    s3.create_bucket(Bucket="guard-multipart")
    data = hashlib.sha256(b"part").digest() * 40000
    upload = s3.create_multipart_upload(Bucket="guard-multipart", Key="assembled")["UploadId"]
    etag = s3.upload_part(
        Bucket="guard-multipart", Key="assembled", UploadId=upload, PartNumber=1, Body=data
    )["ETag"]
    barrier = threading.Barrier(8)

    def complete(_: int) -> int:
        mine = client(embedded, "s3")
        barrier.wait()
        try:
            mine.complete_multipart_upload(
                Bucket="guard-multipart",
                Key="assembled",
                UploadId=upload,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
            )
        except ClientError as exc:
            return status(exc)
        return 200

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(complete, range(8))) == [200] * 8
    assert s3.get_object(Bucket="guard-multipart", Key="assembled")["Body"].read() == data


def test_a_sha256_the_guard_did_not_check_is_not_kept() -> None:
    """A PUT whose SHA-256 the guard cannot check (an aws-chunked body, or none stated)
    does not tell moto the algorithm: moto would keep whatever checksum came with it,
    and the store would later vouch for it."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "PUT",
        "HTTP_X_AMZ_CONTENT_SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM": "SHA256",
        "HTTP_X_AMZ_TRAILER": "x-amz-checksum-sha256",
    }
    assert moto_guard.checksum_refusal(environ) is None
    assert "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM" not in environ
    crc = {"REQUEST_METHOD": "PUT", "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM": "CRC32"}
    assert moto_guard.checksum_refusal(crc) is None
    assert crc["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] == "CRC32"  # not a SHA-256: moto's own
