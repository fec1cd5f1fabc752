"""Records, while the tests run, the AWS calls each Lambda function makes, as the requests
IAM authorizes them by (tests/test_iam.py checks them against the packaged roles).

How: a handler for botocore's `before-parameter-build.<service>.<Operation>` event, which
fires for every API call and for every `generate_presigned_url` (a presigned URL is
authorized against the role of whoever signed it, when it is used). The handler goes into
botocore's BUILTIN_HANDLERS, which every new botocore session registers: moto's mock_aws()
resets boto3's default session, so a handler on the session in place at start-up would miss
every client the tests build inside it.

Which function: the innermost entry point on the Python stack at the time of the call (the
Lambda handlers and what the tests call in their place, `ENTRY_POINTS`); in a thread of a
ThreadPoolExecutor, the function that submitted the work (the code tags a release's files
in parallel). Calls made with no entry point on the stack (fixtures, adapter contract
tests) are not recorded, nor are calls made by the local stack, which runs in another
process.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore import handlers

from tests.iam_policy import ACCOUNT, REGION, SECRET_SUFFIX, Request

ROOT = Path(__file__).resolve().parent.parent
CHALICE = "<chalice>/app.py"

# (file relative to the project, or CHALICE; function's qualified name) -> Lambda function.
ENTRY_POINTS = {
    ("app.py", "process_jobs"): "ProcessJobs",
    ("app.py", "expire_sessions"): "ExpireSessions",
    ("chalicelib/services/worker.py", "Worker.handle"): "ProcessJobs",
    # What the SQS event source mapping does, with the worker's role, around each job.
    ("tests/conftest.py", "run_worker"): "ProcessJobs",
    ("chalicelib/services/sweep.py", "Sweep.run"): "ExpireSessions",
    ("chalicelib/services/sweep.py", "Sweep.expire_due"): "ExpireSessions",
    ("chalicelib/services/publishing.py", "Publisher.expose_unfinished"): "ExpireSessions",
    (CHALICE, "Chalice.__call__"): "APIHandler",
    (CHALICE, "RestAPIEventHandler.__call__"): "APIHandler",
}
API_FILE = "app.py"  # any other function of app.py is (part of) a view: APIHandler


@dataclass(frozen=True)
class Call:
    """One API call (or presigned URL) a function made, and what IAM checks for it."""

    function: str
    service: str
    operation: str
    requests: tuple[Request, ...]
    unmapped: bool = False  # the operation is missing from OPERATIONS
    presigned: bool = False  # a URL signed for someone else to call, not a call made


@dataclass
class Session:
    """What the test session collected besides tests/test_iam.py's final checks (set by
    conftest), and every distinct call recorded."""

    other_tests: int = 0
    api_tests: int = 0  # of them, tests that use the `api` fixture (chalice.test.Client)
    calls: set[Call] = field(default_factory=set)


SESSION = Session()
_listeners: list[list[Call]] = []


# -- operation -> IAM requests --------------------------------------------------------------

Params = dict[str, Any]
Mapper = Callable[[Params, str], list[Request]]


class UnknownOperation(KeyError):
    pass


def _object(action: str, *, tagging: bool = False) -> Mapper:
    def requests(params: Params, region: str) -> list[Request]:
        arn = f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
        # Tags set with the object are authorized as s3:PutObjectTagging as well.
        extra = ["s3:PutObjectTagging"] if tagging and params.get("Tagging") else []
        return [Request(a, arn) for a in (action, *extra)]

    return requests


def _list_bucket(params: Params, region: str) -> list[Request]:
    context = (("s3:prefix", params.get("Prefix", "")),)
    return [Request("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", context)]


def _table(region: str, name: str, index: str | None = None) -> str:
    arn = name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _item(action: str) -> Mapper:
    def requests(params: Params, region: str) -> list[Request]:
        table = _table(region, params["TableName"], params.get("IndexName"))
        return [Request(action, table)]

    return requests


def _per_table(action: str) -> Mapper:
    def requests(params: Params, region: str) -> list[Request]:
        return [Request(action, _table(region, name)) for name in params["RequestItems"]]

    return requests


# A transaction is authorized item by item, by the actions of the single-item operations.
_TRANSACT = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _transact(params: Params, region: str) -> list[Request]:
    return [
        Request(_TRANSACT[kind], _table(region, body["TableName"]))
        for item in params["TransactItems"]
        for kind, body in item.items()
    ]


def _queue_arn(url: str, region: str) -> str:
    """https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (or a local endpoint) -> its ARN."""
    parts = urlsplit(url)
    account, name = parts.path.strip("/").split("/")[-2:]
    host = parts.hostname or ""
    if host.startswith("sqs.") and host.endswith(".amazonaws.com"):
        region = host.split(".")[1]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _queue(action: str) -> Mapper:
    def requests(params: Params, region: str) -> list[Request]:
        return [Request(action, _queue_arn(params["QueueUrl"], region))]

    return requests


def _queue_by_name(params: Params, region: str) -> list[Request]:
    account = params.get("QueueOwnerAWSAccountId", ACCOUNT)
    return [Request("sqs:GetQueueUrl", f"arn:aws:sqs:{region}:{account}:{params['QueueName']}")]


def _parameter(region: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{name.removeprefix('/')}"


def _parameters(action: str, key: str) -> Mapper:
    def requests(params: Params, region: str) -> list[Request]:
        names = params[key] if isinstance(params[key], list) else [params[key]]
        return [Request(action, _parameter(region, n)) for n in names]

    return requests


def _secret(action: str) -> Mapper:
    """A secret's ARN ends in -XXXXXX (random): normalised to SECRET_SUFFIX, which the
    evaluator gives the template's secrets too. A name is the ARN it stands for."""

    def requests(params: Params, region: str) -> list[Request]:
        secret = str(params["SecretId"])
        if secret.startswith("arn:"):
            prefix, _, name = secret.partition(":secret:")
            name = name.rsplit("-", 1)[0]
        else:
            prefix, name = f"arn:aws:secretsmanager:{region}:{ACCOUNT}", secret
        return [Request(action, f"{prefix}:secret:{name}-{SECRET_SUFFIX}")]

    return requests


def _invalidation(params: Params, region: str) -> list[Request]:
    arn = f"arn:aws:cloudfront::{ACCOUNT}:distribution/{params['DistributionId']}"
    return [Request("cloudfront:CreateInvalidation", arn)]


# Every operation the code uses (an unlisted one fails tests/test_iam.py, naming it).
OPERATIONS: dict[tuple[str, str], Mapper] = {
    ("s3", "HeadObject"): _object("s3:GetObject"),
    ("s3", "GetObject"): _object("s3:GetObject"),
    ("s3", "PutObject"): _object("s3:PutObject", tagging=True),
    ("s3", "CreateMultipartUpload"): _object("s3:PutObject", tagging=True),
    ("s3", "UploadPart"): _object("s3:PutObject"),
    ("s3", "CompleteMultipartUpload"): _object("s3:PutObject"),
    ("s3", "ListParts"): _object("s3:ListMultipartUploadParts"),
    ("s3", "AbortMultipartUpload"): _object("s3:AbortMultipartUpload"),
    ("s3", "PutObjectTagging"): _object("s3:PutObjectTagging"),
    ("s3", "GetObjectTagging"): _object("s3:GetObjectTagging"),
    ("s3", "DeleteObject"): _object("s3:DeleteObject"),
    ("s3", "ListObjectsV2"): _list_bucket,
    ("dynamodb", "GetItem"): _item("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _item("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _item("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): _item("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): _item("dynamodb:Query"),
    ("dynamodb", "Scan"): _item("dynamodb:Scan"),
    ("dynamodb", "BatchGetItem"): _per_table("dynamodb:BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _per_table("dynamodb:BatchWriteItem"),
    ("dynamodb", "TransactWriteItems"): _transact,
    ("dynamodb", "TransactGetItems"): _transact,
    ("sqs", "SendMessage"): _queue("sqs:SendMessage"),
    ("sqs", "ReceiveMessage"): _queue("sqs:ReceiveMessage"),
    ("sqs", "DeleteMessage"): _queue("sqs:DeleteMessage"),
    ("sqs", "ChangeMessageVisibility"): _queue("sqs:ChangeMessageVisibility"),
    ("sqs", "GetQueueAttributes"): _queue("sqs:GetQueueAttributes"),
    ("sqs", "GetQueueUrl"): _queue_by_name,
    ("cloudfront", "CreateInvalidation"): _invalidation,
    ("ssm", "GetParameter"): _parameters("ssm:GetParameter", "Name"),
    ("ssm", "GetParameters"): _parameters("ssm:GetParameters", "Names"),
    ("secretsmanager", "GetSecretValue"): _secret("secretsmanager:GetSecretValue"),
    ("secretsmanager", "DescribeSecret"): _secret("secretsmanager:DescribeSecret"),
}


def requests_for(service: str, operation: str, params: Params, region: str) -> list[Request]:
    mapper = OPERATIONS.get((service, operation))
    if mapper is None:
        raise UnknownOperation(f"{service} {operation}")
    return mapper(params, region)


# -- attribution ----------------------------------------------------------------------------

_entries: dict[CodeType, str | None] = {}


def _entry(code: CodeType) -> str | None:
    """The function `code` is an entry point of, if any (cached per code object)."""
    if code not in _entries:
        path = Path(code.co_filename)
        if path.is_relative_to(ROOT) and ".venv" not in path.parts:
            file = path.relative_to(ROOT).as_posix()
        elif path.as_posix().endswith("/chalice/app.py"):
            file = CHALICE
        else:
            file = ""
        found = ENTRY_POINTS.get((file, code.co_qualname))
        if found is None and file == API_FILE and code.co_name != "<module>":
            found = "APIHandler"
        _entries[code] = found
    return _entries[code]


_thread = threading.local()  # .function: what a pool thread runs on behalf of


def function_on_stack(frame: FrameType | None) -> str | None:
    """The Lambda function whose entry point is innermost on the stack from `frame`, or
    else the one that submitted the work this pool thread runs."""
    while frame is not None:
        found = _entry(frame.f_code)
        if found is not None:
            return found
        frame = frame.f_back
    return getattr(_thread, "function", None)


_submit = ThreadPoolExecutor.submit


def _submit_on_behalf(
    self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    """ThreadPoolExecutor.submit (and so .map), carrying the submitter's function over to
    the thread that runs `fn`: a pool thread's stack starts in the pool, not at an entry
    point."""
    function = function_on_stack(sys._getframe(1))
    if function is None:
        return _submit(self, fn, *args, **kwargs)

    def run(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_thread, "function", None)
        _thread.function = function
        try:
            return fn(*args, **kwargs)
        finally:
            _thread.function = outer

    return _submit(self, run, *args, **kwargs)


# -- recording ------------------------------------------------------------------------------

_MISSING_KEY = "wharf_iam_missing_key"


def _record(call: Call) -> None:
    SESSION.calls.add(call)
    for listener in _listeners:
        listener.append(call)


def _before_parameter_build(params: Params, model: Any, context: Any, **_: Any) -> None:
    function = function_on_stack(sys._getframe(1))
    if function is None:
        return
    service, operation = model.service_model.service_name, model.name
    region = context.get("client_region") or REGION  # presigning carries no region
    presigned = bool(context.get("is_presign_request"))  # botocore's generate_presigned_url
    try:
        requests = tuple(requests_for(service, operation, params, region))
    except UnknownOperation:
        _record(Call(function, service, operation, (), unmapped=True, presigned=presigned))
        return
    _record(Call(function, service, operation, requests, presigned=presigned))
    if service == "s3" and operation in ("HeadObject", "GetObject"):
        context[_MISSING_KEY] = (function, params["Bucket"], params["Key"])


def _after_call(http_response: Any, model: Any, context: Any, **_: Any) -> None:
    """S3 answers a missing key with 404 only to a role that may list the bucket, and with
    403 to any other: the code tells a missing object by its 404, so that needs
    s3:ListBucket as well. AWS does not document this check's context; it is taken to be
    the object's key as s3:prefix (what Ceph does "to match AWS behavior"), the
    assumption README.md names among what only AWS can check."""
    missing = context.get(_MISSING_KEY)
    if missing is not None and http_response.status_code == 404:
        function, bucket, key = missing
        request = Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", (("s3:prefix", key),))
        _record(Call(function, "s3", f"{model.name} (missing key: 404)", (request,)))


_HANDLERS: list[tuple[str, Callable[..., None]]] = [
    ("before-parameter-build.*.*", _before_parameter_build),
    ("after-call.s3.*", _after_call),
]


def install() -> None:
    """Record from now on: in every botocore session created later, and in boto3's
    default session if it exists already; attribute pool threads' calls. Idempotent."""
    setattr(ThreadPoolExecutor, "submit", _submit_on_behalf)  # noqa: B010 (mypy: a method)
    for handler in _HANDLERS:
        if handler not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(handler)
            if boto3.DEFAULT_SESSION is not None:
                boto3.DEFAULT_SESSION.events.register(*handler)


def recorded() -> set[Call]:
    return set(SESSION.calls)


@contextmanager
def capture() -> Iterator[list[Call]]:
    """The calls recorded inside the block, repeats included (for the recorder's tests)."""
    calls: list[Call] = []
    _listeners.append(calls)
    try:
        yield calls
    finally:
        _listeners.remove(calls)
