"""The deployable template (`make package`) matches what the code expects, and its data
plane deploys into moto's CloudFormation where the adapters then work against it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from moto import mock_aws

from chalicelib.adapters.dynamodb import DynamoStore
from chalicelib.adapters.s3 import PUBLIC_TAG, S3BlobStore
from chalicelib.adapters.schema import LIVE_INDEX, TTL_ATTRIBUTE, table_definition
from chalicelib.adapters.sqs import SqsJobQueue
from chalicelib.config import QUEUE_NAME

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "build" / "template.yaml"
FUNCTIONS = ("APIHandler", "ProcessJobs", "ExpireSessions")
# Read only by the local stack, or supplied to the functions through the SSM parameter
# WHARF_EDGE_PARAMETER (as variables they would make the template circular).
LOCAL_ONLY = {
    "WHARF_HOST",
    "WHARF_PORT",
    "WHARF_MOTO_PORT",
    "WHARF_LOCAL_WORKER",
    "WHARF_LOG_LEVEL",
}
FROM_EDGE_PARAMETER = {"WHARF_PUBLIC_URL", "WHARF_DISTRIBUTION_ID"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    if not TEMPLATE.exists():  # `make test` packages first; a bare pytest run does it here
        subprocess.run(["make", "package"], cwd=ROOT, check=True, capture_output=True)
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_the_table_has_exactly_the_keys_index_and_ttl_the_code_uses(
    template: dict[str, Any],
) -> None:
    table = template["Resources"]["Table"]["Properties"]
    expected = table_definition("unused")
    assert table["KeySchema"] == expected["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        expected["AttributeDefinitions"], key=str
    )
    index = table["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == LIVE_INDEX
    assert index == {**expected["GlobalSecondaryIndexes"][0]}
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionProtectionEnabled"] is True


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        names |= set(re.findall(r'"(WHARF_[A-Z_]+)"', path.read_text()))
    return names


def test_every_setting_the_code_reads_is_set_on_every_function(template: dict[str, Any]) -> None:
    wanted = settings_read_by_the_code() - LOCAL_ONLY - FROM_EDGE_PARAMETER
    assert {"WHARF_TABLE", "WHARF_BUCKET", "WHARF_QUEUE_URL", "WHARF_EDGE_PARAMETER"} <= wanted
    for name in FUNCTIONS:
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert set(variables) == wanted, name


def test_the_bucket_is_private_and_tls_only(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["FilesBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)
    statements = template["Resources"]["FilesBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    deny_plain = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_plain[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "cloudfront.amazonaws.com"}]
    # The edge reads only what publishing tagged public.
    assert allows[0]["Condition"]["StringEquals"][f"s3:ExistingObjectTag/{PUBLIC_TAG}"] == "true"


def test_files_come_from_s3_through_origin_access_control(template: dict[str, Any]) -> None:
    config = template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    files = behaviors["/files/*"]
    origin = origins[files["TargetOriginId"]]
    assert origin["DomainName"] == {"Fn::GetAtt": ["FilesBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["FilesOriginAccessControl", "Id"]}
    assert files["Compress"] is False
    for pattern in ("/simple/*", "/upload/*", "/stage/*", "/admin/*", "/legacy*"):
        assert origins[behaviors[pattern]["TargetOriginId"]]["Id"] == "api", pattern
    uncached = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    for pattern in ("/upload/*", "/stage/*", "/admin/*", "/legacy*"):
        assert behaviors[pattern]["CachePolicyId"] == uncached, pattern
    index_policy = template["Resources"]["IndexCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert index_policy["MaxTTL"] <= 600
    assert index_policy["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"] == [
        "Accept"
    ]


def test_every_iam_statement_is_scoped(template: dict[str, Any]) -> None:
    roles = resources(template, "AWS::IAM::Role")
    assert set(roles) == {"ApiRole", "WorkerRole", "SweeperRole"}
    for name, role in roles.items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                assert all("*" not in a for a in actions), (name, statement)
                targets = statement["Resource"]
                targets = targets if isinstance(targets, list) else [targets]
                assert "*" not in targets, (name, statement)


def test_each_function_runs_as_its_own_role(template: dict[str, Any]) -> None:
    roles = {
        name: template["Resources"][name]["Properties"]["Role"]["Fn::GetAtt"][0]
        for name in FUNCTIONS
    }
    assert roles == {
        "APIHandler": "ApiRole",
        "ProcessJobs": "WorkerRole",
        "ExpireSessions": "SweeperRole",
    }
    assert all(
        not template["Resources"][name]["Properties"]["Runtime"].endswith("3.11")
        for name in FUNCTIONS
    )


def test_the_worker_is_wired_to_the_queue(template: dict[str, Any]) -> None:
    queue = template["Resources"]["JobQueue"]["Properties"]
    assert queue["QueueName"] == QUEUE_NAME
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]
    }
    events = template["Resources"]["ProcessJobs"]["Properties"]["Events"]
    (event,) = events.values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"]["Fn::Sub"].endswith(f":{QUEUE_NAME}")
    assert (
        queue["VisibilityTimeout"] >= template["Resources"]["ProcessJobs"]["Properties"]["Timeout"]
    )
    schedule = template["Resources"]["ExpireSessions"]["Properties"]["Events"]
    assert next(iter(schedule.values()))["Type"] == "Schedule"


@pytest.fixture
def data_plane(template: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The template's table, bucket and queues, deployed by moto's CloudFormation."""
    kept = ("Table", "FilesBucket", "JobQueue", "JobDeadLetterQueue")
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {name: template["Resources"][name] for name in kept},
        "Outputs": {
            "Table": {"Value": {"Ref": "Table"}},
            "Bucket": {"Value": {"Ref": "FilesBucket"}},
            "Queue": {"Value": {"Ref": "JobQueue"}},
        },
    }
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName="wharf", TemplateBody=json.dumps(body))
        stack = cloudformation.describe_stacks(StackName="wharf")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        yield {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_the_adapters_work_against_the_deployed_data_plane(data_plane: dict[str, str]) -> None:
    from chalicelib.runtime import aws_clients
    from tests.test_store_contract import new_session

    dynamodb, s3, sqs = aws_clients()
    store = DynamoStore(dynamodb, data_plane["Table"], retention=60, max_lifetime=3600)
    session = new_session()
    store.create_session(session, reserve_project=True)
    assert store.get_session(session.id) == session
    assert store.expiring_session_ids(session.expires_at) == [session.id]
    assert store.live_session_id("demo", "1") == session.id
    blobs = S3BlobStore(s3, data_plane["Bucket"])
    assert blobs.put_new("files/demo/x/demo-1.0.tar.gz", b"bytes")
    blobs.mark_public("files/demo/x/demo-1.0.tar.gz")
    assert blobs.is_public("files/demo/x/demo-1.0.tar.gz")
    queue = SqsJobQueue(sqs, data_plane["Queue"])
    queue.send({"job": "publish", "session": session.id})
    ((job, _),) = queue.receive(wait_seconds=0)
    assert job == {"job": "publish", "session": session.id}
