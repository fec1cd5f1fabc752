"""The DynamoDB table and S3 bucket the adapters use, as created locally and in tests.

infra/ declares the same keys, index and TTL attribute; a test keeps the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "ttl"
# A sparse index over sessions that are not terminal, ordered by expiry, so the expiry
# sweep reads only what is due (DynamoDB TTL is late, and moto never fires it).
LIVE_INDEX = "live-by-expiry"
LIVE_INDEX_PARTITION = "live"
LIVE_INDEX_SORT = "expires_at"


def table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": SORT_KEY, "AttributeType": "S"},
            {"AttributeName": LIVE_INDEX_PARTITION, "AttributeType": "S"},
            {"AttributeName": LIVE_INDEX_SORT, "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": LIVE_INDEX,
                "KeySchema": [
                    {"AttributeName": LIVE_INDEX_PARTITION, "KeyType": "HASH"},
                    {"AttributeName": LIVE_INDEX_SORT, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    }


def create_table(dynamodb: DynamoDBClient, name: str) -> None:
    dynamodb.create_table(**table_definition(name))
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def create_bucket(s3: S3Client, name: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        # A region name from the environment; S3 refuses one it does not know.
        location: Any = {"LocationConstraint": region}
        s3.create_bucket(Bucket=name, CreateBucketConfiguration=location)


def create_queue(sqs: SQSClient, name: str) -> str:
    """The deferred-processing queue; its URL. Five minutes of visibility: a job whose
    worker died is delivered again after that."""
    response = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "300"})
    return str(response["QueueUrl"])
