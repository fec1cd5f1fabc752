"""The deployable template (`make package`) matches what the code expects, and its data
plane deploys into moto's CloudFormation where the adapters then work against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.dynamodb.store import DynamoStore
from chalicelib.adapters.s3 import PUBLIC_TAG, S3BlobStore
from chalicelib.adapters.schema import LIVE_INDEX, TTL_ATTRIBUTE, table_definition
from chalicelib.adapters.sqs import SqsJobQueue
from chalicelib.config import DAY
from chalicelib.domain.records import PUBLISH_AT_ONCE_MAX_FILES
from chalicelib.services.index import LISTINGS_PREFIX
from chalicelib.services.publishing import PUBLISH_LOCK_SECONDS
from infra.finish_package import SERVICES

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("APIHandler", "ProcessJobs", "ExpireSessions")
# Read only by the local stack, or supplied to the functions through the SSM parameter
# WHARF_EDGE_PARAMETER (as variables they would make the template circular).
LOCAL_ONLY = {
    "WHARF_HOST",
    "WHARF_PORT",
    "WHARF_MOTO_PORT",
    "WHARF_LOCAL_WORKER",
    "WHARF_LOG_LEVEL",
    "WHARF_QUEUE_NAME",
    # Tests of clients against a server offering only some mechanisms; AWS keeps the
    # default (both).
    "WHARF_MECHANISMS",
}
FROM_EDGE_PARAMETER = {"WHARF_PUBLIC_URL", "WHARF_DISTRIBUTION_ID"}
# In AWS read from Secrets Manager (the *_SECRET variables name the secrets).
FROM_SECRETS = {"WHARF_ADMIN_TOKEN", "WHARF_ORIGIN_VERIFY"}
# What the worker and the sweeper need: the store, the bucket, the edge, the lifetimes.
# The API gets everything; nothing else gets a secret.
BACKGROUND = {
    "WHARF_TABLE",
    "WHARF_BUCKET",
    "WHARF_EDGE_PARAMETER",
    "WHARF_SESSION_LIFETIME",
    "WHARF_SESSION_MAX_LIFETIME",
    "WHARF_SESSION_RETENTION",
}


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


def variables(template: dict[str, Any], function: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][function]["Properties"]["Environment"][
        "Variables"
    ]
    return found


def test_the_api_publishes_within_the_request_only_a_release_of_one_write(
    template: dict[str, Any],
) -> None:
    """A larger one goes to the worker: 3 round trips, where the locked protocol is 7."""
    limit = variables(template, "APIHandler")["WHARF_INLINE_PUBLISH_MAX_FILES"]
    assert int(limit) == PUBLISH_AT_ONCE_MAX_FILES


def test_the_api_gets_every_setting_the_code_reads(template: dict[str, Any]) -> None:
    wanted = (
        settings_read_by_the_code()
        - LOCAL_ONLY
        - FROM_EDGE_PARAMETER
        - FROM_SECRETS
        - {"WHARF_JOB_ATTEMPTS"}  # the worker's alone
    )
    assert {"WHARF_QUEUE_URL", "WHARF_ADMIN_TOKEN_SECRET", "WHARF_ORIGIN_VERIFY_SECRET"} <= wanted
    assert set(variables(template, "APIHandler")) == wanted


def test_only_the_api_can_read_a_secret(template: dict[str, Any]) -> None:
    assert set(variables(template, "ProcessJobs")) == BACKGROUND | {"WHARF_JOB_ATTEMPTS"}
    assert set(variables(template, "ExpireSessions")) == BACKGROUND
    for name in FUNCTIONS:
        assert not any("TOKEN" in v and "SECRET" not in v for v in variables(template, name))
    assert "AdminToken" not in template["Parameters"]
    assert {
        r["Type"] for r in template["Resources"].values() if "GenerateSecretString" in str(r)
    } == {"AWS::SecretsManager::Secret"}


def test_the_bucket_is_private_and_tls_only(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["FilesBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    statements = template["Resources"]["FilesBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    deny_plain = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_plain[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in allows] == [{"Service": "cloudfront.amazonaws.com"}]
    # The edge reads only what publishing tagged public.
    assert allows[0]["Condition"]["StringEquals"][f"s3:ExistingObjectTag/{PUBLIC_TAG}"] == "true"


def test_abandoned_uploads_are_aborted_only_after_the_longest_session(
    template: dict[str, Any],
) -> None:
    rules = template["Resources"]["FilesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (abort,) = (r["AbortIncompleteMultipartUpload"] for r in rules if "Abort" in str(r))
    longest = template["Parameters"]["SessionMaxLifetime"]["MaxValue"]
    # S3 counts whole days; a day more covers the sweep's lag.
    assert abort["DaysAfterInitiation"] * DAY >= longest + DAY


def test_listings_are_expired_by_a_lifecycle_rule(template: dict[str, Any]) -> None:
    """The index replaces a project's listing as it is published and deletes none itself:
    in the versioned bucket, a replaced listing is kept one day, not the replaced files'
    retention (S3 applies the shorter of two expirations)."""
    rules = template["Resources"]["FilesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if LISTINGS_PREFIX.startswith(r.get("Prefix") or "-")]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] <= 31
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1


def test_the_api_ends_before_api_gateway_does(template: dict[str, Any]) -> None:
    api = template["Resources"]["APIHandler"]["Properties"]
    assert api["Timeout"] < 29  # API Gateway's integration timeout
    assert 2 * api["Timeout"] <= PUBLISH_LOCK_SECONDS


def test_a_failing_job_reaches_the_dead_letter_queue_within_an_hour(
    template: dict[str, Any],
) -> None:
    queue = template["Resources"]["JobQueue"]["Properties"]
    worker = template["Resources"]["ProcessJobs"]["Properties"]
    assert worker["Timeout"] <= queue["VisibilityTimeout"]  # Lambda refuses less
    assert queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"] <= 3600
    # The worker knows its last delivery, to settle what it leaves in error.
    attempts = variables(template, "ProcessJobs")["WHARF_JOB_ATTEMPTS"]
    assert int(attempts) == queue["RedrivePolicy"]["maxReceiveCount"]
    alarm = template["Resources"]["DeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["JobDeadLetterQueue", "QueueName"]}


def test_nothing_carries_a_fixed_physical_name(template: dict[str, Any]) -> None:
    """The stack name is the only namespace: a second stack must deploy beside the first.
    Names of account-wide CloudFront objects include the stack name and the region."""
    names = {
        (logical, key): value
        for logical, resource in template["Resources"].items()
        for config in [resource.get("Properties", {}), *resource.get("Properties", {}).values()]
        if isinstance(config, dict)
        for key, value in config.items()
        if key in ("Name", "QueueName", "BucketName", "TableName", "FunctionName", "LogGroupName")
    }
    for where, value in names.items():
        assert isinstance(value, dict), where  # never a literal
        if "Fn::Sub" in value:
            assert "${AWS::StackName}" in str(value["Fn::Sub"]), where
        else:  # a reference to another resource's generated name
            assert set(value) <= {"Ref", "Fn::GetAtt"}, where
    assert "wharf-jobs" not in json.dumps(template)


def test_every_function_logs_to_its_own_group_with_a_retention(template: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        group = template["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert template["Resources"][group]["Properties"]["RetentionInDays"] == {
            "Ref": "LogRetentionDays"
        }


def test_the_api_is_regional_with_one_stage_and_problem_gateway_responses(
    template: dict[str, Any],
) -> None:
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["EndpointConfiguration"] == "REGIONAL"
    assert api["OpenApiVersion"] == "2.0"  # no SAM "Stage" stage
    for kind, status in (("MISSING_AUTHENTICATION_TOKEN", 404), ("REQUEST_TOO_LARGE", 413)):
        response = api["GatewayResponses"][kind]
        assert response["StatusCode"] == status
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert body["status"] == status
    assert "vnd-wharf-s3multipart-presigned-v1" in str(api["GatewayResponses"])
    assert not resources(template, "AWS::ApiGateway::GatewayResponse")


def test_the_package_holds_only_what_runs() -> None:
    with zipfile.ZipFile(ROOT / "build" / "deployment.zip") as package:
        names = package.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"app.py", "chalicelib", "chalice", "pydantic", "packaging"} <= tops
    for tool in ("pip", "setuptools", "wheel", "click", "yaml", "inquirer"):
        assert tool not in tops, tool
    # chalice's runtime only, never its CLI.
    assert not any(name.startswith("chalice/cli/") for name in names)


def test_the_package_makes_every_client_the_code_makes(tmp_path: Path) -> None:
    """botocore's data is packaged for the services the code calls only (issue 13: the
    package's size): each client runtime.py makes is made from the package alone."""
    made = set(
        re.findall(r'_client\(\s*"([a-z0-9-]+)"', (ROOT / "chalicelib" / "runtime.py").read_text())
    )
    assert made == SERVICES
    with zipfile.ZipFile(ROOT / "build" / "deployment.zip") as package:
        package.extractall(tmp_path, [n for n in package.namelist() if n.startswith("botocore/")])
        packaged = {
            n.split("/")[2]
            for n in package.namelist()
            if n.count("/") > 2 and n.startswith("botocore/data/")
        }
    assert packaged == SERVICES
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); import botocore.session\n"
        "session = botocore.session.get_session()\n"
        "for service in sys.argv[2:]:\n"
        "    session.create_client(service, region_name='us-east-1', aws_access_key_id='a',"
        " aws_secret_access_key='b')\n"
        "print(botocore.__file__)"
    )
    run = subprocess.run(
        [sys.executable, "-I", "-c", check, str(tmp_path), *sorted(made)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert run.stdout.startswith(str(tmp_path))  # the package's botocore, not this one's


def test_the_package_carries_bytecode_for_the_runtime(template: dict[str, Any]) -> None:
    """/var/task is read-only: without bytecode each cold start compiles every module."""
    runtime = template["Resources"]["APIHandler"]["Properties"]["Runtime"]  # python3.13
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    with zipfile.ZipFile(ROOT / "build" / "deployment.zip") as package:
        names = set(package.namelist())
    for module in ("app", "chalicelib/runtime", "chalicelib/services/files", "pydantic/main"):
        head, _, stem = module.rpartition("/")
        cached = f"{head}/__pycache__/{stem}.{tag}.pyc".lstrip("/")
        assert cached in names, cached


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


def test_the_worker_is_wired_to_the_stacks_own_queue(template: dict[str, Any]) -> None:
    queue = template["Resources"]["JobQueue"]["Properties"]
    assert "QueueName" not in queue
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]
    }
    events = template["Resources"]["ProcessJobs"]["Properties"]["Events"]
    (event,) = events.values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["JobQueue", "Arn"]}
    schedule = template["Resources"]["ExpireSessions"]["Properties"]["Events"]
    assert next(iter(schedule.values()))["Type"] == "Schedule"


@pytest.fixture
def data_plane(template: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The template's table, bucket and queues, deployed by moto's CloudFormation."""
    kept = ("Table", "FilesBucket", "JobQueue", "JobDeadLetterQueue")
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": template["Parameters"],
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
    blobs.mark_public(["files/demo/x/demo-1.0.tar.gz"])
    assert blobs.is_public("files/demo/x/demo-1.0.tar.gz")
    queue = SqsJobQueue(sqs, data_plane["Queue"])
    queue.send({"job": "publish", "session": session.id})
    ((job, _),) = queue.receive(wait_seconds=0)
    assert job == {"job": "publish", "session": session.id}
