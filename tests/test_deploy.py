"""The README's deploy commands, run as written against moto: `aws cloudformation package`
uploads the code to an artifacts bucket, then the packaged template, SAM-transformed locally
and without what moto cannot create (CloudFront, the API Gateway pieces: pinned below), is
deployed by the README's `aws cloudformation deploy`, twice, as two stacks side by side.

And CloudFormation's refusal of a circular dependency (cfn-lint E3004), before and after the
SAM transform, checked by tests/deploy_sim.py's detector."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from tests.deploy_sim import (
    PLACEHOLDER,
    dependency_cycles,
    for_moto,
    load_template,
    sam_transform,
)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
MARKER = "<!-- deploy-commands -->"
FUNCTIONS = {"APIHandler": "ApiRole", "ProcessJobs": "WorkerRole", "ExpireSessions": "SweeperRole"}
# What moto's CloudFormation cannot create, so the moto deploy leaves out (the SAM deployment's
# hash suffix elided): a new entry means a resource no local tool checks any more.
DROPPED_FOR_MOTO = [
    "AdminTokenSecret (AWS::SecretsManager::Secret)",
    "DeadLetterAlarm (AWS::CloudWatch::Alarm)",
    "Distribution (AWS::CloudFront::Distribution)",
    "EdgeGuard (AWS::CloudFront::Function)",
    "FilesBucketPolicy (AWS::S3::BucketPolicy)",
    "FilesCachePolicy (AWS::CloudFront::CachePolicy)",
    "FilesOriginAccessControl (AWS::CloudFront::OriginAccessControl)",
    "IndexCachePolicy (AWS::CloudFront::CachePolicy)",
    "OriginVerifySecret (AWS::SecretsManager::Secret)",
    "RestAPI (AWS::ApiGateway::RestApi)",
    "RestAPIDeployment<hash> (AWS::ApiGateway::Deployment)",
    "RestAPIStage (AWS::ApiGateway::Stage)",
    "ViewerTlsOriginRequestPolicy (AWS::CloudFront::OriginRequestPolicy)",
]
# CloudFormation takes a template body up to this size; a larger one needs --s3-bucket.
TEMPLATE_BODY_LIMIT = 51_200


# -- the README's commands -----------------------------------------------------------------------


def readme_commands(text: str) -> list[str]:
    """The shell commands of the fenced block after MARKER, continuation lines joined,
    comment-only and blank lines left out."""
    lines = text.splitlines()
    assert MARKER in (line.strip() for line in lines), f"README.md lost its {MARKER}"
    start = [line.strip() for line in lines].index(MARKER)
    fences = [i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("```")]
    assert len(fences) >= 2, f"no fenced block after {MARKER} in README.md"
    commands: list[str] = []
    pending = ""
    for line in lines[fences[0] + 1 : fences[1]]:
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            continue
        if pending and not pending.startswith("#"):
            commands.append(pending)
        pending = ""
    return commands


def command(commands: list[str], prefix: str) -> str:
    (found,) = [c for c in commands if c.startswith(prefix)]
    return found


def option(cmd: str, name: str) -> str:
    (value,) = re.findall(rf"{name}[ =](\S+)", cmd)
    assert isinstance(value, str)
    return value.strip("'\"")


@pytest.fixture(scope="module")
def commands() -> dict[str, str]:
    found = readme_commands(README.read_text())
    picked = {
        "make": command(found, "make package"),
        "package": command(found, "aws cloudformation package "),
        "deploy": command(found, "aws cloudformation deploy "),
    }
    assert '"$ARTIFACTS_BUCKET"' in picked["package"], picked["package"]
    assert '"$STACK"' in picked["deploy"], "the deploy command must take the stack's name"
    assert option(picked["package"], "--output-template-file") == option(
        picked["deploy"], "--template-file"
    ), "deploy must deploy what package wrote"
    return picked


def test_readme_commands_are_read_from_the_marked_block() -> None:
    readme = "\n".join(
        [
            "text",
            MARKER,
            "",
            "```sh",
            "make package   # comment",
            "# a comment line",
            "aws cloudformation package --template-file build/template.yaml \\",
            '    --s3-bucket "$ARTIFACTS_BUCKET" --output-template-file build/packaged.yaml',
            "```",
            "```sh",
            "not this",
            "```",
        ]
    )
    assert readme_commands(readme) == [
        "make package   # comment",
        "aws cloudformation package --template-file build/template.yaml --s3-bucket "
        '"$ARTIFACTS_BUCKET" --output-template-file build/packaged.yaml',
    ]


# -- circular dependencies -----------------------------------------------------------------------


def test_the_cycle_detector_finds_every_kind_of_reference() -> None:
    def resource(properties: Any, **extra: Any) -> dict[str, Any]:
        return {"Type": "AWS::SQS::Queue", "Properties": properties, **extra}

    cyclic: dict[str, Any] = {
        "Parameters": {"P": {"Type": "String"}},
        "Conditions": {"C": {"Fn::Equals": [{"Ref": "P"}, ""]}},
        "Resources": {
            # A -> B (Ref in Fn::If's false branch) -> C (GetAtt, string form in Fn::Join)
            # -> D (Sub ${D.Arn}) -> A (DependsOn); E -> E (Sub ${E}); F -> G -> F (Sub
            # variables, GetAtt list form).
            "A": resource({"X": {"Fn::If": ["C", "plain", {"Ref": "B"}]}}),
            "B": resource({"X": {"Fn::Join": ["", [{"Fn::GetAtt": "C.Arn"}]]}}),
            "C": resource({"X": {"Fn::Sub": "arn:${AWS::Partition}:${D.Arn}/${P}"}}),
            "D": resource({}, DependsOn=["A"]),
            "E": resource({"X": {"Fn::Sub": "${E}"}}),
            "F": resource({"X": {"Fn::Sub": ["${V}", {"V": {"Fn::GetAtt": ["G", "Arn"]}}]}}),
            "G": resource({"X": {"Ref": "F"}}),
            # Not cycles: a Sub variable shadowing a resource, a literal ${!H}, a condition
            # named like a resource, parameters and pseudo parameters.
            "H": resource(
                {
                    "X": {"Fn::Sub": ["${H}${!H}", {"H": "literal"}]},
                    "Y": {"Fn::If": ["H", {"Ref": "P"}, {"Ref": "AWS::Region"}]},
                },
                Condition="C",
            ),
        },
    }
    assert dependency_cycles(cyclic) == [["A", "B", "C", "D"], ["E"], ["F", "G"]]
    del cyclic["Resources"]["D"]["DependsOn"]
    assert dependency_cycles(cyclic) == [["E"], ["F", "G"]]


def with_code_in_s3(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `aws cloudformation package` leaves it: every CodeUri in S3."""
    packaged: dict[str, Any] = json.loads(json.dumps(template))
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/deployment.zip"
    return packaged


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    if not (BUILD / "template.yaml").exists():  # `make test` packages first
        subprocess.run(["make", "package"], cwd=ROOT, check=True, capture_output=True)
    return load_template(BUILD / "template.yaml")


def test_no_circular_dependency_before_the_sam_transform(built: dict[str, Any]) -> None:
    assert dependency_cycles(built) == []


def test_no_circular_dependency_after_the_sam_transform(built: dict[str, Any]) -> None:
    assert dependency_cycles(sam_transform(with_code_in_s3(built))) == []


# -- moto ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    # "localhost", not the address: given a TemplateURL (`deploy --s3-bucket`, which a template
    # over 51,200 bytes needs), moto reads the bucket from the URL's path only for localhost.
    url = f"http://localhost:{port}"

    def reset() -> None:  # moto's state is per process: leave none to other tests
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))

    reset()
    try:
        yield url
    finally:
        reset()
        server.stop()


def client(moto_url: str, service: str) -> Any:
    make: Any = boto3.client  # typed per literal service name; any is fine here
    return make(
        service,
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Deploy:
    """A copy of build/ in a temporary directory, where the README's commands run."""

    moto_url: str
    workdir: Path
    commands: dict[str, str]
    bucket: str = "wharf-artifacts"

    def env(self, stack: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        none = str(self.workdir / "no-aws-config")
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            AWS_ENDPOINT_URL=self.moto_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=none,
            AWS_SHARED_CREDENTIALS_FILE=none,
            AWS_EC2_METADATA_DISABLED="true",
            ARTIFACTS_BUCKET=self.bucket,
            STACK=stack,
        )
        return env

    def run(self, cmd: str, stack: str = "unused") -> str:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", cmd],
            cwd=self.workdir,
            env=self.env(stack),
            capture_output=True,
            text=True,
            timeout=600,  # against a hang only
        )
        assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    @property
    def packaged_path(self) -> Path:
        return self.workdir / option(self.commands["package"], "--output-template-file")

    def deploy(self, template: Path, stack: str) -> None:
        """The README's deploy command, with --template-file naming `template`."""
        cmd, count = re.subn(
            r"--template-file[ =]\S+",
            lambda _: f"--template-file {template}",
            self.commands["deploy"],
        )
        assert count == 1, self.commands["deploy"]
        self.run(cmd, stack)


@pytest.fixture(scope="module")
def deploy(
    moto_url: str, commands: dict[str, str], built: dict[str, Any], tmp_path_factory: Any
) -> Deploy:
    workdir: Path = tmp_path_factory.mktemp("deploy")
    shutil.copytree(BUILD, workdir / "build")
    sim = Deploy(moto_url, workdir, commands)
    client(moto_url, "s3").create_bucket(Bucket=sim.bucket)
    sim.run(commands["package"])
    return sim


@pytest.fixture(scope="module")
def packaged(deploy: Deploy) -> dict[str, Any]:
    return load_template(deploy.packaged_path)


@pytest.fixture(scope="module")
def moto_template(deploy: Deploy, packaged: dict[str, Any]) -> tuple[Path, list[str]]:
    reduced, dropped = for_moto(sam_transform(packaged))
    path = deploy.workdir / "moto-template.json"
    path.write_text(json.dumps(reduced, indent=1))
    return path, dropped


def test_package_uploads_the_code_and_points_every_function_at_it(
    deploy: Deploy, packaged: dict[str, Any]
) -> None:
    code = (deploy.workdir / "build" / "deployment.zip").read_bytes()
    uris = {
        name: resource["Properties"]["CodeUri"]
        for name, resource in packaged["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(uris) == set(FUNCTIONS)
    (uri,) = set(uris.values())
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert bucket == deploy.bucket
    stored = client(deploy.moto_url, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(code).digest()


def test_the_packaged_template_fits_a_template_body(
    deploy: Deploy, commands: dict[str, str]
) -> None:
    """`aws cloudformation deploy` refuses a larger template unless given --s3-bucket."""
    if "--s3-bucket" not in commands["deploy"]:
        size = deploy.packaged_path.stat().st_size
        assert size <= TEMPLATE_BODY_LIMIT, (
            f'{size} bytes: the README\'s deploy command needs --s3-bucket "$ARTIFACTS_BUCKET"'
        )


def test_only_what_moto_lacks_is_left_out(moto_template: tuple[Path, list[str]]) -> None:
    dropped = moto_template[1]
    print("left out of the moto deploy:", *dropped, sep="\n  ")
    elided = [
        re.sub(r"^RestAPIDeployment[0-9a-f]+ ", "RestAPIDeployment<hash> ", d) for d in dropped
    ]
    assert elided == DROPPED_FOR_MOTO


@dataclass
class Stack:
    name: str
    status: str
    parameters: dict[str, str]
    physical: dict[str, str]  # logical id -> physical id


def deploy_stack(deploy: Deploy, template: Path, name: str) -> Stack:
    deploy.deploy(template, name)
    cloudformation = client(deploy.moto_url, "cloudformation")
    (described,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    listed = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return Stack(
        name=name,
        status=described["StackStatus"],
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]},
        physical={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed},
    )


@pytest.fixture(scope="module")
def stack(deploy: Deploy, moto_template: tuple[Path, list[str]]) -> Stack:
    return deploy_stack(deploy, moto_template[0], "wharf-one")


def test_the_stack_is_created(stack: Stack, moto_template: tuple[Path, list[str]]) -> None:
    assert stack.status == "CREATE_COMPLETE"
    resources = json.loads(moto_template[0].read_text())["Resources"]
    assert set(stack.physical) == set(resources)


def resolve(value: Any, stack: Stack) -> str:
    """A value of the moto template as CloudFormation resolves it in `stack` (the intrinsics
    this template's checked values use; a new one fails here, to be added)."""
    names = {**stack.parameters, **stack.physical, "AWS::StackName": stack.name}
    names["AWS::Region"] = REGION
    if isinstance(value, dict) and "Ref" in value:
        return names[value["Ref"]]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        assert attribute == "QueueName", value
        return stack.physical[resource].rsplit("/", 1)[1]
    if isinstance(value, dict) and "Fn::Sub" in value:
        return re.sub(r"\$\{([^}!]+)\}", lambda m: names[m.group(1)], value["Fn::Sub"])
    assert isinstance(value, str | int), value
    return str(value)


@pytest.fixture(scope="module")
def deployed(moto_template: tuple[Path, list[str]]) -> dict[str, Any]:
    """The moto template's resources (references to left-out resources are placeholders)."""
    resources: dict[str, Any] = json.loads(moto_template[0].read_text())["Resources"]
    return resources


def test_each_function_has_its_own_role_and_the_template_environment(
    deploy: Deploy, stack: Stack, deployed: dict[str, Any]
) -> None:
    lambda_, iam, sqs = (client(deploy.moto_url, s) for s in ("lambda", "iam", "sqs"))
    roles = set()
    for function, role in FUNCTIONS.items():
        config = lambda_.get_function(FunctionName=stack.physical[function])["Configuration"]
        assert config["Role"] == iam.get_role(RoleName=stack.physical[role])["Role"]["Arn"]
        roles.add(config["Role"])
        declared = deployed[function]["Properties"]["Environment"]["Variables"]
        expected = {k: resolve(v, stack) for k, v in declared.items()}
        # str(): moto passes a Number parameter on as a number; AWS, as a string.
        actual = {k: str(v) for k, v in config["Environment"]["Variables"].items()}
        assert actual == expected, function
        if "WHARF_QUEUE_URL" in expected:  # the stack's queue
            sqs.get_queue_attributes(QueueUrl=expected["WHARF_QUEUE_URL"])
    assert len(roles) == len(FUNCTIONS)


def queue_attributes(deploy: Deploy, url: str) -> dict[str, str]:
    sqs = client(deploy.moto_url, "sqs")
    found: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return found


def test_the_worker_consumes_the_job_queue_which_redrives_to_its_dead_letter_queue(
    deploy: Deploy, stack: Stack, deployed: dict[str, Any]
) -> None:
    jobs = queue_attributes(deploy, stack.physical["JobQueue"])
    dead = queue_attributes(deploy, stack.physical["JobDeadLetterQueue"])
    mappings = client(deploy.moto_url, "lambda").list_event_source_mappings(
        FunctionName=stack.physical["ProcessJobs"]
    )["EventSourceMappings"]
    assert [m["EventSourceArn"] for m in mappings] == [jobs["QueueArn"]]
    declared = deployed["JobQueue"]["Properties"]
    redrive = json.loads(jobs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dead["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
    assert int(jobs["VisibilityTimeout"]) == declared["VisibilityTimeout"]
    retention = deployed["JobDeadLetterQueue"]["Properties"]
    assert int(dead["MessageRetentionPeriod"]) == retention["MessageRetentionPeriod"]


def test_the_sweeper_runs_on_its_schedule(deploy: Deploy, stack: Stack) -> None:
    events = client(deploy.moto_url, "events")
    sweeper = client(deploy.moto_url, "lambda").get_function(
        FunctionName=stack.physical["ExpireSessions"]
    )["Configuration"]["FunctionArn"]
    rules = [
        name
        for name, physical in stack.physical.items()
        if name.startswith("ExpireSessions") and name.endswith("Event")
    ]
    (rule,) = rules
    described = events.describe_rule(Name=stack.physical[rule])
    assert described["ScheduleExpression"].startswith("rate(")
    targets = events.list_targets_by_rule(Rule=stack.physical[rule])["Targets"]
    assert [t["Arn"] for t in targets] == [sweeper]


def unless_moto_ignores(call: Any, missing: str, **kwargs: Any) -> Any:
    """`call(**kwargs)`, or None when moto answers `missing`: its CloudFormation did not apply
    that property (then nothing local checks it; a newer moto may, and the test then does)."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if error.response["Error"]["Code"] != missing:
            raise
        print(f"not checked: moto's CloudFormation did not apply {call.__name__}")
        return None


def test_the_table_is_created_as_declared(
    deploy: Deploy, stack: Stack, deployed: dict[str, Any]
) -> None:
    dynamodb = client(deploy.moto_url, "dynamodb")
    name = stack.physical["Table"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    declared = deployed["Table"]["Properties"]
    assert table["KeySchema"] == declared["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [
        i["IndexName"] for i in declared["GlobalSecondaryIndexes"]
    ]
    assert table["DeletionProtectionEnabled"] is declared["DeletionProtectionEnabled"]
    if "SSEDescription" in table:  # moto 5.2.5 does not report it
        assert table["SSEDescription"]["Status"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl["TimeToLiveStatus"] != "DISABLED":
        assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"]
    # Not checked: moto 5.2.5's CloudFormation ignores TimeToLiveSpecification and
    # PointInTimeRecoverySpecification (it reports both DISABLED whatever the template says);
    # tests/test_infra.py checks that the template declares them.


def test_the_bucket_is_created_as_declared(
    deploy: Deploy, stack: Stack, deployed: dict[str, Any]
) -> None:
    s3 = client(deploy.moto_url, "s3")
    bucket = stack.physical["FilesBucket"]
    declared = deployed["FilesBucket"]["Properties"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert [r["ApplyServerSideEncryptionByDefault"] for r in encryption["Rules"]] == [
        r["ServerSideEncryptionByDefault"]
        for r in declared["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    ]
    # moto 5.2.5's CloudFormation applies only BucketEncryption and Tags to a bucket; the rest
    # is compared when moto reports it.
    lifecycle = unless_moto_ignores(
        s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", Bucket=bucket
    )
    if lifecycle is not None:
        assert [r["ID"] for r in lifecycle["Rules"]] == [
            r["Id"] for r in declared["LifecycleConfiguration"]["Rules"]
        ]
    blocked = unless_moto_ignores(
        s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration", Bucket=bucket
    )
    if blocked is not None:
        assert all(blocked["PublicAccessBlockConfiguration"].values())
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if versioning is not None or "VersioningConfiguration" not in declared:
        assert versioning == declared.get("VersioningConfiguration", {}).get("Status")


def test_the_edge_parameter_is_named_after_the_stack(deploy: Deploy, stack: Stack) -> None:
    ssm = client(deploy.moto_url, "ssm")
    value = ssm.get_parameter(Name=f"/{stack.name}/edge")["Parameter"]["Value"]
    assert PLACEHOLDER in value  # the distribution is not in moto


def test_every_function_logs_to_a_group_with_retention(
    deploy: Deploy, stack: Stack, deployed: dict[str, Any]
) -> None:
    logs = client(deploy.moto_url, "logs")
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    for name, resource in deployed.items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            retention = resource["Properties"].get("RetentionInDays")
            assert retention is not None, f"{name} would keep logs forever"
            group = groups[stack.physical[name]]
            assert str(group.get("retentionInDays")) == resolve(retention, stack), name
    for function in FUNCTIONS:
        # Not checked by moto: its Lambda ignores LoggingConfig (and then logs nowhere).
        logging = deployed[function]["Properties"].get("LoggingConfig", {})
        group_name = (
            resolve(logging["LogGroup"], stack)
            if "LogGroup" in logging
            else f"/aws/lambda/{stack.physical[function]}"
        )
        assert group_name in groups, f"{function} logs to {group_name}, which is not created"
        assert groups[group_name].get("retentionInDays"), group_name


def test_a_second_stack_deploys_beside_the_first(
    deploy: Deploy, stack: Stack, moto_template: tuple[Path, list[str]]
) -> None:
    """Nothing carries a fixed physical name: a second stack in the same account and region
    (staging beside production) gets its own of everything."""
    second = deploy_stack(deploy, moto_template[0], "wharf-two")
    assert second.status == "CREATE_COMPLETE"
    shared = {
        name: physical
        for name, physical in second.physical.items()
        if physical and stack.physical.get(name) == physical  # moto: a permission has no id
    }
    assert shared == {}, "these have a fixed name; two stacks would collide in AWS"
