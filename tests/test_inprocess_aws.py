"""The local stack's own AWS calls answered in-process (devserver/inprocess.py), and the
guard's plain answers to DynamoDB item reads (devserver/moto_guard.py, point 6): what a
boto3 client gets is what it got over HTTP from moto's own code."""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from moto.core.responses import BaseResponse

from chalicelib.adapters.schema import create_bucket, create_queue, create_table
from devserver import moto_guard
from devserver.harness import free_port
from devserver.inprocess import InProcessAws
from devserver.moto_guard import EmbeddedAws

REGION = "us-east-1"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def nowhere() -> str:
    """An endpoint nothing listens on: a call that went over the network would fail."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def session(embedded: EmbeddedAws, nowhere: str) -> boto3.Session:
    core = botocore.session.get_session()
    InProcessAws(nowhere, embedded.app).install(core)
    return boto3.Session(
        aws_access_key_id="wharf-local",
        aws_secret_access_key="wharf-local",
        region_name=REGION,
        botocore_session=core,
    )


def client(session: boto3.Session, endpoint: str, service: str) -> Any:
    return session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]


def test_every_service_is_answered_without_the_network(
    session: boto3.Session, nowhere: str
) -> None:
    dynamodb = client(session, nowhere, "dynamodb")
    s3 = client(session, nowhere, "s3")
    sqs = client(session, nowhere, "sqs")
    create_table(dynamodb, "inprocess")
    dynamodb.put_item(TableName="inprocess", Item={"pk": {"S": "a"}, "sk": {"S": "b"}})
    found = dynamodb.get_item(TableName="inprocess", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
    assert found["Item"]["pk"] == {"S": "a"}

    create_bucket(s3, "inprocess-files", REGION)
    data = os.urandom(3 * MIB + 5)
    s3.put_object(Bucket="inprocess-files", Key="k", Body=data)
    body = s3.get_object(Bucket="inprocess-files", Key="k")["Body"]
    chunks = list(body.iter_chunks(MIB))
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [MIB, MIB, MIB, 5]  # streamed, a chunk at a time
    ranged = s3.get_object(Bucket="inprocess-files", Key="k", Range="bytes=10-19")
    assert ranged["Body"].read() == data[10:20]
    assert ranged["ContentRange"] == f"bytes 10-19/{len(data)}"
    # Keys as a URL path quotes them (a local version's "+", spaces, "%"), read back as put.
    odd = "files/demo/x/demo-1.0+local.1-py3-none-any.whl/a b%20c"
    s3.put_object(Bucket="inprocess-files", Key=odd, Body=b"odd")
    assert s3.get_object(Bucket="inprocess-files", Key=odd)["Body"].read() == b"odd"
    listed = s3.list_objects_v2(Bucket="inprocess-files", Prefix="files/")["Contents"]
    assert [o["Key"] for o in listed] == [odd]
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket="inprocess-files", Key="absent")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    queue = create_queue(sqs, "inprocess")
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    received = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    assert [m["Body"] for m in received["Messages"]] == ["hello"]


def test_other_endpoints_are_sent_as_usual(embedded: EmbeddedAws, nowhere: str) -> None:
    answering = InProcessAws(nowhere, embedded.app)
    elsewhere = AWSPreparedRequest("GET", "http://127.0.0.1:1/x", HTTPHeaders(), b"", False)
    assert answering.answer(elsewhere) is None


ITEM: dict[str, Any] = {
    "pk": {"S": "p"},
    "sk": {"S": "s1"},
    "n": {"N": "1.50"},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01\x02"]},
    "b": {"B": b"\x00\xff"},
    "l": {"L": [{"S": "q"}, {"NULL": True}, {"BOOL": False}]},
    "m": {"M": {"k": {"N": "3"}, "e": {"S": ""}}},
}


def _reads(dynamodb: Any) -> list[Any]:
    keys = [{"pk": {"S": "p"}, "sk": {"S": s}} for s in ("s1", "s2", "absent")]
    answers = [
        dynamodb.get_item(TableName="plain", Key=keys[0], ConsistentRead=True),
        dynamodb.get_item(TableName="plain", Key=keys[2]),
        dynamodb.batch_get_item(RequestItems={"plain": {"Keys": keys, "ConsistentRead": True}}),
        dynamodb.query(
            TableName="plain",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
        ),
        dynamodb.query(
            TableName="plain",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
            Limit=1,
        ),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


def test_item_reads_answer_as_motos_serializer_does(
    session: boto3.Session, nowhere: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb = client(session, nowhere, "dynamodb")
    create_table(dynamodb, "plain")
    dynamodb.put_item(TableName="plain", Item=ITEM)
    dynamodb.put_item(TableName="plain", Item={**ITEM, "sk": {"S": "s2"}})
    assert moto_guard.installed()
    plain = _reads(dynamodb)
    monkeypatch.setattr(BaseResponse, "serialized", moto_guard.original(BaseResponse, "serialized"))
    assert plain == _reads(dynamodb)
    assert plain[0]["Item"] == ITEM
