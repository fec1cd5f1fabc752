"""Every AWS call a function makes on the test suite's paths is allowed by that function's
role in the packaged template (build/template.yaml).

tests/aws_calls.py records the calls while the other tests run; tests/iam_policy.py reads
the roles. The checks marked `runs_last` run after every other test (conftest.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import QUEUE_NAME, Settings
from chalicelib.runtime import Services
from tests import aws_calls
from tests.aws_calls import Call, requests_for
from tests.conftest import ADMIN_TOKEN, Api
from tests.iam_policy import (
    REGION,
    Condition,
    Deployment,
    Policy,
    Request,
    Resolver,
    Statement,
    Unsupported,
    functions,
    role_policy,
    without,
)

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION_ID = "E2WHARFTEST"
# The secrets the template generates, by logical id: the names the cold-start test gives them.
SECRETS = {
    "AdminTokenSecret": "wharf-test-admin-token",
    "OriginVerifySecret": "wharf-test-origin-verify",
}


@pytest.fixture
def deployment(settings: Settings) -> Deployment:
    """The template's resources as the test suite names them (conftest's `settings`, and
    the queue conftest creates)."""
    return Deployment(
        names={
            "Table": settings.table_name,
            "FilesBucket": settings.bucket_name,
            "JobQueue": QUEUE_NAME,
            "Distribution": DISTRIBUTION_ID,
            **SECRETS,
        },
        parameters={"AdminToken": ADMIN_TOKEN},
    )


def problems(template: dict[str, Any], deployment: Deployment, calls: Iterable[Call]) -> list[str]:
    """One line per operation the recorder cannot map and per request a role denies."""
    policies: dict[str, Policy] = {}
    found: set[str] = set()
    for call in calls:
        if call.unmapped:
            found.add(
                f"{call.function}: {call.service} {call.operation} is missing from "
                "tests/aws_calls.py OPERATIONS"
            )
            continue
        if call.function not in policies:
            policies[call.function] = role_policy(template, call.function, deployment)
        for request in call.requests:
            if not policies[call.function].allows(request):
                found.add(
                    f"{call.function} denied {request.action} on {request.resource}"
                    f" ({call.service} {call.operation})"
                )
    return sorted(found)


@pytest.mark.runs_last
def test_every_recorded_call_is_allowed_by_its_functions_role(
    template: dict[str, Any], deployment: Deployment
) -> None:
    session = aws_calls.SESSION
    if not session.other_tests:
        pytest.skip("records the calls of the other tests: none ran")
    calls = aws_calls.recorded()
    if session.api_tests:  # the recorder must not break silently
        assert any(c.function == "APIHandler" for c in calls), (
            f"{session.api_tests} tests used the API, yet no APIHandler call was recorded"
        )
    found = problems(template, deployment, calls)
    assert not found, "\n".join(found)


# -- a role without a needed statement fails the check ---------------------------------------

# A call each function makes on the suite's paths, in case the session recorded none.
SAMPLES = {
    "APIHandler": Call(
        "APIHandler",
        "dynamodb",
        "GetItem",
        tuple(requests_for("dynamodb", "GetItem", {"TableName": "wharf-test"}, REGION)),
    ),
    "ProcessJobs": Call(
        "ProcessJobs",
        "s3",
        "GetObject",
        tuple(
            requests_for(
                "s3", "GetObject", {"Bucket": "wharf-test-files", "Key": "files/a/b/c"}, REGION
            )
        ),
    ),
}


@pytest.mark.runs_last
@pytest.mark.parametrize("function", sorted(SAMPLES))
def test_removing_a_needed_statement_fails_the_check(
    template: dict[str, Any], deployment: Deployment, function: str
) -> None:
    sample = SAMPLES[function]
    calls = {c for c in aws_calls.recorded() if c.function == function} | {sample}
    policy = role_policy(template, function, deployment)
    needed = {s.path for request in sample.requests for s in policy.allowing(request)}
    assert needed, f"{function}: no statement allows {sample}"
    mutated = copy.deepcopy(template)
    for path in sorted(needed, reverse=True):  # later list items first: indices stay valid
        without(mutated, path)
    before = problems(template, deployment, calls)
    after = problems(mutated, deployment, calls)
    assert set(before) < set(after)
    assert any(
        f"{function} denied {r.action} on {r.resource}" in p for r in sample.requests for p in after
    )


# -- the evaluator ----------------------------------------------------------------------------


def allow(action: Any, resource: Any, **condition: dict[str, Any]) -> Statement:
    actions = tuple(action) if isinstance(action, list) else (action,)
    resources = tuple(resource) if isinstance(resource, list) else (resource,)
    conditions = tuple(
        Condition(op, key, tuple(v) if isinstance(v, list) else (v,))
        for op, block in condition.items()
        for key, v in block.items()
    )
    return Statement("Allow", actions, resources, conditions)


def test_actions_match_without_case_and_with_wildcards_resources_with_case() -> None:
    policy = Policy(
        (
            allow("S3:get*", "arn:aws:s3:::bucket/files/*"),
            allow("sqs:?eceiveMessage", "arn:aws:sqs:*:123456789012:q"),
        )
    )
    assert policy.allows(Request("s3:GetObject", "arn:aws:s3:::bucket/files/a/b"))
    assert policy.allows(Request("s3:GetObjectTagging", "arn:aws:s3:::bucket/files/x"))
    assert not policy.allows(Request("s3:PutObject", "arn:aws:s3:::bucket/files/x"))
    assert not policy.allows(Request("s3:GetObject", "arn:aws:s3:::bucket/FILES/x"))
    assert not policy.allows(Request("s3:GetObject", "arn:aws:s3:::bucket"))
    assert policy.allows(Request("sqs:ReceiveMessage", "arn:aws:sqs:eu-west-1:123456789012:q"))
    assert not policy.allows(Request("sqs:ReceiveMessage", "arn:aws:sqs:eu-west-1:1:q"))


def test_conditions_read_the_request_context() -> None:
    bucket = "arn:aws:s3:::bucket"
    policy = Policy((allow("s3:ListBucket", bucket, StringLike={"s3:prefix": ["files/*", ""]}),))
    assert policy.allows(Request("s3:ListBucket", bucket, (("s3:prefix", "files/a"),)))
    assert policy.allows(Request("s3:ListBucket", bucket, (("s3:prefix", ""),)))
    assert not policy.allows(Request("s3:ListBucket", bucket, (("s3:prefix", "stage/a"),)))
    assert not policy.allows(Request("s3:ListBucket", bucket))  # an absent key matches nothing
    # ...but satisfies a negated operator, as in IAM.
    negated = Policy((allow("s3:ListBucket", bucket, StringNotEquals={"s3:prefix": "x"}),))
    assert negated.allows(Request("s3:ListBucket", bucket))
    assert not negated.allows(Request("s3:ListBucket", bucket, (("s3:prefix", "x"),)))
    tls = Policy((allow("s3:*", bucket, Bool={"aws:SecureTransport": "true"}),))
    assert tls.allows(Request("s3:ListBucket", bucket))  # every Lambda call is over TLS
    unknown = Policy((allow("s3:*", bucket, NumericLessThan={"s3:max-keys": "10"}),))
    with pytest.raises(Unsupported, match="NumericLessThan"):
        unknown.allows(Request("s3:ListBucket", bucket))


def test_an_explicit_deny_wins() -> None:
    deny = Statement("Deny", ("s3:DeleteObject",), ("arn:aws:s3:::bucket/files/*",))
    policy = Policy((allow("s3:*", "*"), deny))
    assert policy.allows(Request("s3:GetObject", "arn:aws:s3:::bucket/files/x"))
    assert not policy.allows(Request("s3:DeleteObject", "arn:aws:s3:::bucket/files/x"))


def test_intrinsic_functions_resolve_to_the_deployment() -> None:
    template = {
        "Parameters": {"Stage": {"Type": "String", "Default": "api"}},
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table"},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}},
            "Unknown": {"Type": "AWS::Foo::Bar"},
        },
    }
    resolver = Resolver(template, Deployment(names={"Table": "t"}))
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    assert resolver.resolve({"Fn::GetAtt": ["Table", "Arn"]}) == table
    assert resolver.resolve({"Fn::GetAtt": "Table.Arn"}) == table
    assert resolver.resolve({"Fn::Sub": "${Table.Arn}/index/${Stage}"}) == f"{table}/index/api"
    assert resolver.resolve({"Fn::Sub": ["${X}-${!Y}", {"X": {"Ref": "Queue"}}]}) == (
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs-${Y}"
    )
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "AWS::Region"}]]}) == "a/us-east-1"
    assert resolver.resolve({"Fn::If": ["C", "yes", "no"]}) == "no"
    assert resolver.resolve([1, {"Ref": "AWS::NoValue"}]) == [1]
    with pytest.raises(Unsupported, match="Unknown"):
        resolver.resolve({"Ref": "Unknown"})
    with pytest.raises(Unsupported, match="Fn::Select"):
        resolver.resolve({"Fn::Select": [0, ["a"]]})


def test_each_function_has_a_policy_it_can_read(
    template: dict[str, Any], deployment: Deployment
) -> None:
    assert functions(template) == ["APIHandler", "ExpireSessions", "ProcessJobs"]
    for function in functions(template):
        assert role_policy(template, function, deployment).statements


def test_an_unknown_operation_is_reported_by_name(
    template: dict[str, Any], deployment: Deployment
) -> None:
    with pytest.raises(KeyError, match="s3 ListBuckets"):
        requests_for("s3", "ListBuckets", {}, REGION)
    unmapped = Call("APIHandler", "s3", "ListBuckets", (), unmapped=True)
    assert problems(template, deployment, [unmapped]) == [
        "APIHandler: s3 ListBuckets is missing from tests/aws_calls.py OPERATIONS"
    ]


def test_operations_map_to_the_requests_iam_checks() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "t"}},
            {"ConditionCheck": {"TableName": "t"}},
            {"Update": {"TableName": "t"}},
        ]
    }
    assert [
        r.action for r in requests_for("dynamodb", "TransactWriteItems", transaction, REGION)
    ] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:UpdateItem"]
    query = {"TableName": "t", "IndexName": "live-by-expiry"}
    assert requests_for("dynamodb", "Query", query, REGION) == [
        Request("dynamodb:Query", f"{table}/index/live-by-expiry")
    ]
    tagged = {"Bucket": "b", "Key": "k", "Tagging": "a=b"}
    assert [r.action for r in requests_for("s3", "PutObject", tagged, REGION)] == [
        "s3:PutObject",
        "s3:PutObjectTagging",
    ]
    queue = {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"}
    assert requests_for("sqs", "SendMessage", queue, REGION) == [
        Request("sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:jobs")
    ]
    assert requests_for("ssm", "GetParameter", {"Name": "/wharf/edge"}, REGION) == [
        Request("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/wharf/edge")
    ]
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wharf/admin-Xy12Ab"
    assert requests_for("secretsmanager", "GetSecretValue", {"SecretId": secret}, REGION) == (
        requests_for("secretsmanager", "GetSecretValue", {"SecretId": "wharf/admin"}, REGION)
    )


# -- the recorder -----------------------------------------------------------------------------


def test_calls_are_recorded_for_the_function_whose_entry_point_made_them(
    api: Api, services: Services
) -> None:
    with aws_calls.capture() as calls:
        assert api.get("/simple/").status == 200
        services.sweep.run()
        services.store.get_session("no-such-session")  # no entry point: not recorded
    by_function = {(c.function, c.service, c.operation) for c in calls}
    assert ("APIHandler", "dynamodb", "Query") in by_function
    assert ("ExpireSessions", "dynamodb", "Query") in by_function
    assert all(c.operation != "GetItem" for c in calls)
    index = "arn:aws:dynamodb:us-east-1:123456789012:table/wharf-test/index/live-by-expiry"
    assert any(r.resource == index for c in calls for r in c.requests)


def test_calls_from_a_thread_pool_are_the_submitting_function_s(
    me: Api, session: dict[str, Any]
) -> None:
    me.add_file(session, "demo-1.0.tar.gz")
    with aws_calls.capture() as calls:
        assert me.publish(session).status == 201
    tagged = [c for c in calls if c.operation == "PutObjectTagging"]
    assert tagged and {c.function for c in tagged} == {"APIHandler"}


def test_presigned_urls_are_recorded_as_calls_of_the_signer(
    me: Api, session: dict[str, Any]
) -> None:
    mechanism = "vnd-wharf-s3multipart-presigned-v1"
    with aws_calls.capture() as calls:
        # One part: sent whole, its URL signed with the creation.
        me.create_file(session, "demo-1.0.tar.gz", b"x" * 1024, mechanism=mechanism)
        # Two parts: a multipart upload, its URLs signed on request.
        file = me.create_file(
            session, "demo-1.0-py3-none-any.whl", b"x" * (9 << 20), mechanism=mechanism
        ).json()
        digest = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        signed = me.post(
            file["mechanism"]["parts_url"],
            {"meta": {"api-version": "2.0"}, "parts": [{"number": 1, "sha256": digest}]},
        )
        assert signed.status == 200, signed.body
    assert {(c.function, c.operation, c.requests[0].action) for c in calls} >= {
        ("APIHandler", "PutObject", "s3:PutObject"),
        ("APIHandler", "CreateMultipartUpload", "s3:PutObject"),
        ("APIHandler", "UploadPart", "s3:PutObject"),
    }


def test_each_function_s_cold_start_is_recorded(
    aws: tuple[Any, Any, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rest of the suite installs its services; this builds them as each Lambda does on
    a cold start (runtime.services()), reading the edge parameter and the API's secrets."""
    import boto3
    from chalice.test import Client

    from app import app
    from chalicelib import runtime
    from chalicelib.http.parsing import ORIGIN_VERIFY_HEADER

    _, _, sqs = aws
    edge = {"public_url": "https://wharf.test", "distribution_id": DISTRIBUTION_ID}
    boto3.client("ssm").put_parameter(Name="/wharf/edge", Value=json.dumps(edge), Type="String")
    secrets = boto3.client("secretsmanager")
    arns = {
        logical: secrets.create_secret(Name=name, SecretString=f"{name}-value")["ARN"]
        for logical, name in SECRETS.items()
    }
    environment = {
        "WHARF_TABLE": settings.table_name,
        "WHARF_BUCKET": settings.bucket_name,
        "WHARF_QUEUE_URL": sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"],
        "WHARF_EDGE_PARAMETER": "/wharf/edge",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        with aws_calls.capture() as calls, Client(app) as client:
            with monkeypatch.context() as api_only:  # only the API is given the secrets
                api_only.setenv("WHARF_ADMIN_TOKEN_SECRET", arns["AdminTokenSecret"])
                api_only.setenv("WHARF_ORIGIN_VERIFY_SECRET", arns["OriginVerifySecret"])
                runtime.install(None)
                verify = {ORIGIN_VERIFY_HEADER: f"{SECRETS['OriginVerifySecret']}-value"}
                assert client.http.get("/simple/", headers=verify).status_code == 200
            runtime.install(None)
            event = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])
            client.lambda_.invoke("expire_sessions", event)
            runtime.install(None)
            jobs = client.events.generate_sqs_event(['{"job": "none"}'], QUEUE_NAME)
            client.lambda_.invoke("process_jobs", jobs)
    finally:
        runtime.install(None)
    made = {(c.function, r.action) for c in calls for r in c.requests}
    assert {
        ("APIHandler", "ssm:GetParameter"),
        ("APIHandler", "secretsmanager:GetSecretValue"),
        ("ExpireSessions", "ssm:GetParameter"),
        ("ProcessJobs", "ssm:GetParameter"),
    } <= made
    assert ("ExpireSessions", "secretsmanager:GetSecretValue") not in made


def test_policies_attached_to_the_role_count_with_its_own() -> None:
    def document(action: str) -> dict[str, Any]:
        return {"Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}

    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Role": {"Fn::GetAtt": "Role.Arn"}},
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Policies": [{"PolicyName": "own", "PolicyDocument": document("a:Own")}],
                    "ManagedPolicyArns": [{"Ref": "Managed"}],
                },
            },
            "Inline": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": document("a:Inl")},
            },
            "Managed": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": document("a:Man")},
            },
            "Other": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "X"}], "PolicyDocument": document("a:Not")},
            },
        }
    }
    policy = role_policy(template, "Fn", Deployment())
    assert [policy.allows(Request(f"a:{a}", "r")) for a in ("Own", "Inl", "Man", "Not")] == [
        True,
        True,
        True,
        False,
    ]
