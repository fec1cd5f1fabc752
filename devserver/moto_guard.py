"""The embedded AWS (moto) made safe under concurrent requests (issue 10).

moto keeps every service's state in plain Python objects without locks, and its server
runs each request in a thread of its own. Under concurrent requests that loses data:

- DynamoDB TransactWriteItems deep-copies every table it touches (once per item), applies
  the items one at a time, and on a failure puts the copies back. A write another request
  commits meanwhile is erased by that restore; a copy taken while another request writes
  fails ("dictionary changed size during iteration", a 500); readers see a transaction half
  applied. The copy also makes every transaction cost the whole table.
- Query lists and sorts every item of the table, per request, then keeps one partition.
- SQS DeleteMessage rebuilds the queue's message list from a snapshot, so a message sent
  meanwhile is dropped.
- S3 PutObject with If-None-Match, and CompleteMultipartUpload, check and then write:
  two racing writers can both succeed, the second overwriting the first.

So the embedded AWS is served through `MotoGuard`, a WSGI middleware in front of moto's
application, which

1. serializes every DynamoDB request, reads included (nothing sees a transaction half
   applied; a request costs moto a millisecond or two, so one lock is cheap);
2. serializes every SQS request, and runs a long poll (ReceiveMessage with
   WaitTimeSeconds) as short polls that wait for the next SQS write *outside* the lock;
3. serializes S3 writes per object (a lock per stripe of object paths), leaving reads and
   part uploads concurrent, and checks a PUT's x-amz-checksum-sha256 as S3 does (moto
   stores any bytes): the bytes of a presigned part or file must have the SHA-256 signed
   into its URL, or the PUT is refused with S3's 400 BadDigest; a whole object then keeps
   its SHA-256, which S3 answers to a GetObject with ChecksumMode ENABLED;

and `install()` replaces moto methods, once, at class level:

4. DynamoDBBackend.transact_write_items: check every item's condition first, then apply
   the items, and if applying one fails put back only the items touched; its cost is the
   transaction's, not the table's;
5. Table.query on the base table reads only its partition rather than the whole table;
6. BaseResponse.serialized, for DynamoDB's item reads (GetItem, BatchGetItem, Query) only:
   their results are already DynamoDB's JSON, which moto's serializer walked attribute by
   attribute against the service model (a fifth of the stack's CPU while publishing);
   they are dumped as they are, binary values in base64 as that serializer writes them;
7. ConditionExpressionParser.parse remembers its last results: moto parses each item's
   condition of a transaction three times (the handler's validation, the check, the
   write), an eighth of the stack's CPU while publishing; the same expression, names and
   values give the same tree, which is only ever evaluated, never changed;
8. UpdateExpressionParser.make remembers its last trees, by expression (which names
   placeholders, not values): moto parsed each update twice, and parsing was most of a
   transaction's cost; its users only read the tree or validate a deep copy of it.
9. DynamoHandler.query, for a plain read of one partition (the key conditions the index's
   adapter sends, nothing else asked): answered from the partition, each item written out
   and sized in one walk of its values, where moto's sized each twice (a DynamoType built
   per map member), deep-copied the page and converted it value by value (three quarters
   of a first `/simple/` read of a 2,000-file project); anything else goes to moto's own.

All are written against moto 5.2.5 (requirements-dev.txt pins it). `install()` checks that
what they replace and call still has that shape, and raises MotoChanged otherwise, so a moto
upgrade that moves them fails loudly at start-up and in tests/test_moto_guard.py.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import inspect
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qs

from moto.core.responses import ActionResult, BaseResponse
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table
from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
    UpdateExpressionParser,  # moto marks the module "type: ignore"
)
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

DYNAMODB = "dynamodb"
SQS = "sqs"
S3 = "s3"
# Object paths share this many S3 locks: bounded memory whatever the number of keys, and
# two writes to different objects rarely wait for each other.
S3_STRIPES = 64
# A long poll looks again at least this often even when no SQS write woke it: a message
# whose visibility timeout ran out becomes receivable without any write (moto's own long
# poll looks once a second too).
SQS_POLL_SECONDS = 1.0
TRANSACTION_LIMIT = 100
_TRANSACTION_KINDS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


class MotoChanged(RuntimeError):
    """moto no longer has the shape the guard's replacements were written against."""


# -- the WSGI middleware ----------------------------------------------------------------------


@dataclass
class Answer:
    """A response of moto's, read whole (moto builds its responses in memory anyway)."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


def call(app: WSGIApplication, environ: WSGIEnvironment) -> Answer:
    """Run `app` to the end of its response, so that nothing of the request runs after
    the caller releases its lock."""
    answered: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        answered[:] = [(status, headers)]
        return written.append

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        iterated = list(chunks)
        body = b"".join([*written, *iterated])  # what write() sent comes first (PEP 3333)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = answered[0]
    return Answer(status, list(headers), body)


def buffer_body(environ: WSGIEnvironment) -> bytes:
    """Read the request body before a lock is taken: a slow sender must not hold it."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        data = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: werkzeug ends the stream
        data = stream.read()
    else:
        data = b""
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
    return bytes(data)


def checksum_refusal(environ: WSGIEnvironment) -> Answer | None:
    """S3's answer to a PUT whose bytes do not have the SHA-256 its x-amz-checksum-sha256
    header states (400 BadDigest); None when they do, or when it states none. A PutObject
    that passes keeps the checksum (moto stores one only when told the algorithm)."""
    if environ.get("REQUEST_METHOD") != "PUT":
        return None
    stated = environ.get("HTTP_X_AMZ_CHECKSUM_SHA256")
    content = str(environ.get("HTTP_X_AMZ_CONTENT_SHA256", ""))
    if not stated or content.startswith("STREAMING-"):
        # Unchecked here: moto must not keep a SHA-256 it was only told (it would vouch
        # for it later), so it is not told the algorithm.
        if str(environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "")).upper() == "SHA256":
            del environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"]
        return None
    body = buffer_body(environ)
    if base64.b64encode(hashlib.sha256(body).digest()).decode() == stated:
        if "uploadId=" not in str(environ.get("QUERY_STRING", "")):  # PutObject, not a part
            environ.setdefault("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "SHA256")
        return None
    message = "The SHA256 you specified did not match the calculated checksum."
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>'
        f"<Message>{message}</Message></Error>"
    )
    return Answer("400 Bad Request", [("Content-Type", "application/xml")], xml.encode())


def signing_service(environ: WSGIEnvironment) -> str | None:
    """The service named in a SigV4 credential scope (`AKID/date/region/service/
    aws4_request`), from the Authorization header or a presigned URL's query."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0].strip()
    else:
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        credential = query.get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 else None


def service_of(environ: WSGIEnvironment) -> str | None:
    """Which guarded service a request is for, or None to pass it through untouched."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target.startswith("DynamoDB_"):
        return DYNAMODB
    if target.startswith("AmazonSQS."):
        return SQS
    # SQS's older query protocol (no X-Amz-Target) is not what boto3 speaks: passed through.
    # moto itself takes a request it cannot place (unsigned, SigV2) for S3.
    if signing_service(environ) in (S3, None):
        return S3
    return None


class MotoGuard:
    """moto's WSGI application, serializing what moto cannot run concurrently."""

    def __init__(
        self, app: WSGIApplication, service_app: Callable[[Any], WSGIApplication] | None = None
    ) -> None:
        self.app = app
        # moto's dispatcher finds a request's service anew each time, listing moto's
        # package directory on disk to do so (an eighth of a DynamoDB call's CPU). The
        # guard has already told the service apart: its application, built once, answers.
        self._service_apps = (
            {service: service_app(service) for service in (DYNAMODB, SQS, S3)}
            if service_app is not None
            else {}
        )
        self._dynamodb = threading.Lock()
        # Held by every SQS request; a long poll waits on it (releasing it) for a write.
        self._sqs = threading.Condition(threading.Lock())
        self._s3 = [threading.Lock() for _ in range(S3_STRIPES)]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        service = service_of(environ)
        app = self._app_for(service)
        if service == DYNAMODB:
            buffer_body(environ)
            with self._dynamodb:
                answer = call(app, environ)
        elif service == SQS:
            answer = self._sqs_request(environ)
        elif service == S3 and (refused := checksum_refusal(environ)) is not None:
            answer = refused
        elif service == S3 and (lock := self._s3_lock(environ)) is not None:
            with lock:
                answer = call(app, environ)
        else:
            return app(environ, start_response)
        start_response(answer.status, answer.headers)
        return [answer.body]

    def _app_for(self, service: str | None) -> WSGIApplication:
        return self._service_apps.get(service or "", self.app)

    # -- S3 --------------------------------------------------------------------------------

    def _s3_lock(self, environ: WSGIEnvironment) -> threading.Lock | None:
        """The lock of the object a write names; None for reads and part uploads.

        Part uploads stay concurrent: a file's parts go up in parallel, and each holds its
        request as long as its client takes to send the bytes. moto keeps one entry per
        part number, so the parts of an upload do not disturb each other; a part sent
        again while its own upload completes is the one race left to moto."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("PUT", "POST", "DELETE"):
            return None
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        if method == "PUT" and "uploadId" in query and "partNumber" in query:
            return None
        # Path-style (/bucket/key) or virtual-hosted (bucket in Host): the two together
        # name the object the way the client addressed it.
        host = str(environ.get("HTTP_HOST", "")).lower()
        path = str(environ.get("PATH_INFO", ""))
        return self._s3[hash((host, path)) % S3_STRIPES]

    # -- SQS -------------------------------------------------------------------------------

    def _sqs_request(self, environ: WSGIEnvironment) -> Answer:
        body = buffer_body(environ)
        action = str(environ["HTTP_X_AMZ_TARGET"]).split(".", 1)[1]
        if action == "ReceiveMessage":
            return self._receive(environ, body)
        with self._sqs:
            answer = call(self._app_for(SQS), environ)
            # A long poll waiting for a message looks again.
            self._sqs.notify_all()
        return answer

    def _receive(self, environ: WSGIEnvironment, body: bytes) -> Answer:
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        wait = request.get("WaitTimeSeconds") if isinstance(request, dict) else None
        if type(wait) is not int or not 0 < wait <= 20:
            # A short poll, or a request moto refuses: one call. (A queue's own
            # ReceiveMessageWaitTimeSeconds is not consulted; Wharf's queue has none.)
            with self._sqs:
                return call(self._app_for(SQS), environ)
        assert isinstance(request, dict)
        # moto's own long poll would sleep inside the lock, holding every other SQS
        # request (the send it waits for included) until it gave up.
        short = json.dumps({**request, "WaitTimeSeconds": 0}).encode()
        deadline = time.monotonic() + wait
        with self._sqs:
            while True:
                attempt = dict(environ)
                attempt["wsgi.input"] = io.BytesIO(short)
                attempt["CONTENT_LENGTH"] = str(len(short))
                answer = call(self._app_for(SQS), attempt)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not _received_nothing(answer):
                    return answer
                self._sqs.wait(min(remaining, SQS_POLL_SECONDS))


def _received_nothing(answer: Answer) -> bool:
    if not answer.status.startswith("200"):
        return False
    try:
        received = json.loads(answer.body or b"{}")
    except ValueError:
        return False
    return isinstance(received, dict) and not received.get("Messages")


# -- the server ---------------------------------------------------------------------------------


@dataclass
class EmbeddedAws:
    """moto's server (what moto.server.ThreadedMotoServer runs) behind MotoGuard, on
    loopback only."""

    host: str = "127.0.0.1"
    port: int = 0
    app: MotoGuard = field(init=False)
    _server: BaseWSGIServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.app = MotoGuard(DomainDispatcherApplication(create_backend_app), create_backend_app)

    def start(self) -> None:
        install()
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedded-aws", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()


# -- DynamoDB: transactions proportional to themselves, queries to their partition ------------

# (class, attribute) -> what moto had there before install().
_replaced: dict[tuple[type, str], Any] = {}
_install_lock = threading.Lock()


def install() -> None:
    """Replace moto's TransactWriteItems and base-table Query (once per process)."""
    with _install_lock:
        if _replaced:
            return
        check_shape()
        replacements: dict[tuple[type, str], Any] = {
            (DynamoDBBackend, "transact_write_items"): transact_write_items,
            (Table, "query"): _scoped_query(Table.query),
            (Table, "all_items"): _scoped_all_items(Table.all_items),
            (DynamoHandler, "query"): _partition_reads(DynamoHandler.query),
            (BaseResponse, "serialized"): _plain_item_reads(BaseResponse.serialized),
            (ConditionExpressionParser, "parse"): _remembered(ConditionExpressionParser.parse),
            (UpdateExpressionParser, "make"): classmethod(
                _remembered_updates(UpdateExpressionParser.make.__func__)
            ),
        }
        for (owner, name), replacement in replacements.items():
            _replaced[(owner, name)] = owner.__dict__[name]
            setattr(owner, name, replacement)


def uninstall() -> None:
    """Put moto's own methods back (tests that run moto in-process share it with others)."""
    with _install_lock:
        for (owner, name), original in _replaced.items():
            setattr(owner, name, original)
        _replaced.clear()


def installed() -> bool:
    return bool(_replaced)


def original(owner: type, name: str) -> Any:
    """moto's own method, whether or not install() replaced it."""
    return _replaced.get((owner, name), owner.__dict__[name])


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# What the replacements call or replace, and the parameters they use by name.
_EXPECTED: dict[tuple[type, str], set[str]] = {
    (DynamoDBBackend, "transact_write_items"): {"self", "transact_items"},
    (DynamoDBBackend, "get_table"): {"table_name"},
    (DynamoDBBackend, "get_item"): {"table_name", "keys"},
    (DynamoDBBackend, "get_keys_value"): {"table", "keys"},
    (DynamoDBBackend, "put_item"): {
        "table_name",
        "item_attrs",
        "condition_expression",
        "expression_attribute_names",
        "expression_attribute_values",
    },
    (DynamoDBBackend, "delete_item"): {
        "table_name",
        "key",
        "condition_expression",
        "expression_attribute_names",
        "expression_attribute_values",
    },
    (DynamoDBBackend, "update_item"): {
        "table_name",
        "key",
        "update_expression",
        "condition_expression",
        "expression_attribute_names",
        "expression_attribute_values",
    },
    (Table, "put_item"): {"item_attrs", "overwrite"},
    (Table, "delete_item"): {"hash_key", "range_key"},
    (Table, "query"): {"hash_key", "index_name"},
    (Table, "all_items"): {"self"},
    (DynamoHandler, "query"): {"self"},
    (BaseResponse, "serialized"): {"self", "action_result"},
    (ConditionExpressionParser, "parse"): {"self"},
    (UpdateExpressionParser, "make"): {"cls", "expression_str"},
}


def check_shape() -> None:
    """Raise MotoChanged unless moto still has what the replacements rely on."""
    for (owner, name), wanted in _EXPECTED.items():
        function = original(owner, name) if name in owner.__dict__ else None
        function = getattr(function, "__func__", function)  # a classmethod's own function
        if not callable(function):
            raise MotoChanged(f"moto has no {owner.__name__}.{name} any more")
        missing = wanted - set(_parameters(function))
        if missing:
            raise MotoChanged(f"moto's {owner.__name__}.{name} lost {sorted(missing)}")
    if _parameters(original(DynamoDBBackend, "transact_write_items")) != ["self", "transact_items"]:
        raise MotoChanged("moto's DynamoDBBackend.transact_write_items changed its parameters")
    _check_parser_fields()  # first: a moto Table's own writes parse their conditions
    _check_partition_layout()


def _check_parser_fields() -> None:
    """What _remembered reads and sets on a parser: its inputs and the names and values
    a parse found (the handler's validation reads them)."""
    parser = ConditionExpressionParser("#a = :b", {"#a": "a"}, {":b": {"S": "b"}})
    original(ConditionExpressionParser, "parse")(parser)
    for name in _PARSER_FIELDS:
        if not hasattr(parser, name):
            raise MotoChanged(f"moto's ConditionExpressionParser has no {name} any more")
    if parser.expr_attr_names_found != ["#a"] or parser.expr_attr_values_found != [":b"]:
        raise MotoChanged("moto's ConditionExpressionParser records what it found differently")


def _check_partition_layout() -> None:
    """The partition read (_partition) must see exactly what moto's full listing keeps
    for that hash key: checked on a scratch table of each kind."""
    all_items = original(Table, "all_items")
    for schema in (["pk", "sk"], ["pk"]):
        # moto builds its tables this way (DynamoDBBackend.create_table); mypy counts
        # CloudFormation hooks Table leaves to subclasses as abstract.
        table = Table(  # type: ignore[abstract]
            "wharf-layout-probe",
            account_id="000000000000",
            region="us-east-1",
            schema=[
                {"AttributeName": name, "KeyType": kind}
                for name, kind in zip(schema, ("HASH", "RANGE"), strict=False)
            ],
            attr=[{"AttributeName": name, "AttributeType": "S"} for name in schema],
        )
        for pk in ("a", "b"):
            for sk in ("y", "x"):
                table.put_item({"pk": {"S": pk}, **({"sk": {"S": sk}} if "sk" in schema else {})})
        for pk in ("a", "b", "c"):
            hash_key = DynamoType({"S": pk})
            expected = [item for item in all_items(table) if item.hash_key == hash_key]
            try:
                seen = _partition(table, hash_key)
            except Exception as exc:
                raise MotoChanged(f"moto's Table.items changed shape: {exc!r}") from exc
            if seen != expected:
                raise MotoChanged("moto's Table.items no longer holds items by partition")


# -- TransactWriteItems -------------------------------------------------------------------------

Reason = tuple[str, str, dict[str, Any] | None] | tuple[None, None, None]
# An item a transaction writes: its table, its key, and the item as it was before.
_Before = tuple[str, dict[str, Any], Item | None]


@dataclass
class _Step:
    kind: str
    table_name: str
    key: dict[str, Any]
    op: dict[str, Any]
    current: Item | None


class _ConditionRefused(ConditionalCheckFailed):
    """An item's own condition failed; keeps the item to return with the reason
    (ReturnValuesOnConditionCheckFailure), which moto's exception holds only as JSON."""

    def __init__(self, refused_item: dict[str, Any] | None) -> None:
        super().__init__(item=refused_item)
        self.refused_item = refused_item


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """DynamoDBBackend.transact_write_items without the copy of every table.

    moto's own applies the items one by one and, if one fails, puts back a deep copy of
    each table it took beforehand. Here every item's key and condition are checked before
    anything is written (a transaction on a given item names it once, and its condition is
    on that item alone, so the checks see what moto's would); only then are the items
    applied, and if applying one fails (a bad update expression, an item too large), the
    items applied so far are put back as they were. The answer is moto's: a
    ValidationException, or TransactionCanceledException with one reason per item."""
    if len(transact_items) > TRANSACTION_LIMIT:
        raise TooManyTransactionsException()
    steps, reasons = _check_items(self, transact_items)
    if _any_refused(reasons):
        raise TransactionCanceledException(reasons)
    touched = _apply_steps(self, steps, reasons)
    if _any_refused(reasons):
        _put_back(self, touched)
        raise TransactionCanceledException(reasons)


def _any_refused(reasons: list[Reason]) -> bool:
    return any(code is not None for code, _, _ in reasons)


def _check_items(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> tuple[list[_Step | None], list[Reason]]:
    """Every item checked, nothing written: per item, the step that applies it (None if
    refused) and moto's reason for refusing it ((None, None, None) if not). A
    ValidationException is raised as it comes."""
    steps: list[_Step | None] = []
    reasons: list[Reason] = []
    seen: set[tuple[str, str]] = set()
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, op = next(iter(entry.items()))
        try:
            steps.append(_check_item(backend, kind, op, seen))
            reasons.append((None, None, None))
        except MockValidationException:
            raise  # nothing is written yet: nothing to put back
        except ConditionalCheckFailed as exc:
            refused_item = exc.refused_item if isinstance(exc, _ConditionRefused) else None
            steps.append(None)
            reasons.append(("ConditionalCheckFailed", str(exc.message), refused_item))
        except Exception as exc:
            steps.append(None)
            reasons.append((type(exc).__name__, str(exc), None))
    return steps, reasons


def _check_item(
    backend: DynamoDBBackend, kind: str, op: dict[str, Any], seen: set[tuple[str, str]]
) -> _Step:
    """One item: a kind moto knows, an item no earlier one in `seen` names (it is added),
    its condition true of the item as it is."""
    if kind not in _TRANSACTION_KINDS:
        raise ValueError("Unsupported transaction operation")
    table_name = op["TableName"]
    key = _key_of(backend, kind, table_name, op)
    identity = (str(table_name), str(dict(sorted(key.items()))))
    if identity in seen:
        raise MultipleTransactionsException()
    seen.add(identity)
    current = backend.get_item(table_name, key)
    _check_condition(op, current)
    return _Step(kind, table_name, key, op, current)


def _key_of(
    backend: DynamoDBBackend, kind: str, table_name: str, op: dict[str, Any]
) -> dict[str, Any]:
    """The key of the item an operation names (a Put's is in its item)."""
    if kind != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    table = backend.get_table(table_name)
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _check_condition(op: dict[str, Any], current: Item | None) -> None:
    """Raise _ConditionRefused unless the operation's ConditionExpression, if any, holds
    for the item as it is."""
    condition = op.get("ConditionExpression")
    if condition is None:
        return
    check = get_filter_expression(
        condition,
        op.get("ExpressionAttributeNames"),
        op.get("ExpressionAttributeValues"),
    )
    if not check.expr(current):
        refused_item: dict[str, Any] | None = None
        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
            refused_item = current.to_json()["Attributes"]
        raise _ConditionRefused(refused_item)


def _apply_steps(
    backend: DynamoDBBackend, steps: list[_Step | None], reasons: list[Reason]
) -> list[_Before]:
    """Write the checked items in order, setting the reason of each that fails; returns
    the items written so far as they were. A ValidationException puts them back first."""
    # Each item as it was before this transaction, to put back on a failure: copies of
    # the touched items only (an update changes its item in place).
    touched: list[_Before] = []
    for index, step in enumerate(steps):
        assert step is not None
        if step.kind == "ConditionCheck":
            continue
        # A Put or Delete replaces or removes moto's item object, leaving it as it was; an
        # Update changes it in place, so only then is a copy needed to put it back.
        before = copy.deepcopy(step.current) if step.kind == "Update" else step.current
        touched.append((step.table_name, step.key, before))
        try:
            _apply(backend, step)
        except MockValidationException:
            _put_back(backend, touched)
            raise
        except ConditionalCheckFailed as exc:
            reasons[index] = ("ConditionalCheckFailed", str(exc.message), None)
        except Exception as exc:
            reasons[index] = (type(exc).__name__, str(exc), None)
    return touched


def _apply(backend: DynamoDBBackend, step: _Step) -> None:
    """One item, written as moto's own transaction writes it."""
    op = step.op
    # None when absent, as moto's own transaction passes them (its annotations say dict).
    expressions: dict[str, Any] = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": op.get("ExpressionAttributeNames"),
        "expression_attribute_values": op.get("ExpressionAttributeValues"),
    }
    if step.kind == "Put":
        backend.put_item(step.table_name, op["Item"], **expressions)
    elif step.kind == "Delete":
        backend.delete_item(step.table_name, step.key, **expressions)
    elif step.kind == "Update":
        backend.update_item(
            step.table_name, step.key, update_expression=op["UpdateExpression"], **expressions
        )


def _put_back(backend: DynamoDBBackend, touched: list[_Before]) -> None:
    for table_name, key, before in reversed(touched):
        table = backend.get_table(table_name)
        if before is None:
            hash_key, range_key = backend.get_keys_value(table, key)
            table.delete_item(hash_key, range_key)
        else:
            table.put_item(dict(before.attrs), overwrite=True)


# -- Query: one partition -------------------------------------------------------------------------

# The (table, hash key, sort key prefix) a base-table query is reading, in this thread:
# all_items then lists that partition only, and of it, for a begins_with query, the items
# whose sort key has the prefix. moto's query keeps nothing else of the list (it filters on
# the hash key, and compares each sort key again), so the result is the same; the cost is
# the items asked for, not the table's or the partition's (a project's 2,000 files are not
# walked to find its few commit markers).
_scope = threading.local()


def _partition(table: Table, hash_key: DynamoType, prefix: str | None = None) -> list[Item]:
    # .get: items is a defaultdict, [] would add the key. Hash key -> {range key -> item},
    # or hash key -> item for a table without a range key.
    held: Any = table.items.get(hash_key)
    if held is None:
        return []
    if not table.range_key_attr:
        return [held]
    items = held.values()
    if prefix is not None:
        items = [
            i for i in items if i.range_key.type == "S" and i.range_key.value.startswith(prefix)
        ]
    if table.range_key_type == "S":  # moto refuses a key of another type
        # Text sorts as its UTF-8 bytes, DynamoDB's order: no DynamoType comparisons.
        return sorted(items, key=lambda item: item.range_key.value)
    return sorted(items, key=lambda item: item.range_key)


def _prefix(arguments: dict[str, Any]) -> str | None:
    """The string prefix of a begins_with query on the sort key, if that is the query."""
    objs = arguments.get("range_objs") or []
    if str(arguments.get("range_comparison")).upper() != "BEGINS_WITH" or len(objs) != 1:
        return None
    return str(objs[0].value) if objs[0].type == "S" else None


def _scoped_query(query: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(query)

    @functools.wraps(query)
    def scoped(self: Table, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if hash_key is None or arguments.get("index_name"):
            return query(self, *args, **kwargs)
        outer = getattr(_scope, "partition", None)
        _scope.partition = (self, hash_key, _prefix(arguments))
        try:
            return query(self, *args, **kwargs)
        finally:
            _scope.partition = outer

    return scoped


def _scoped_all_items(all_items: Callable[[Table], list[Item]]) -> Callable[[Table], list[Item]]:
    @functools.wraps(all_items)
    def scoped(self: Table) -> list[Item]:
        scope = getattr(_scope, "partition", None)
        if scope is None or scope[0] is not self:
            return all_items(self)
        return _partition(self, scope[1], scope[2])

    return scoped


# -- Query: a partition's items answered as they are ------------------------------------------

# The key conditions this index's adapter queries with (adapters/dynamodb/table.py): a
# partition, optionally narrowed to a sort-key prefix or to the keys below one.
_KEY_CONDITION = re.compile(
    r"(?P<hash>\w+) = (?P<pk>:\w+)"
    r"(?: AND (?:begins_with\((?P<prefix_key>\w+), (?P<prefix>:\w+)\)"
    r"|(?P<below_key>\w+) < (?P<below>:\w+)))?"
)
# A request asking for anything else (an index, a filter, a projection, a limit, an
# order, consumed capacity, ...) is answered by moto's own query.
_PLAIN_QUERY = frozenset(
    {"TableName", "KeyConditionExpression", "ExpressionAttributeValues", "ConsistentRead",
     "ExclusiveStartKey"}
)  # fmt: skip


@dataclass(frozen=True)
class _PartitionQuery:
    table: Table
    range_attr: str
    hash_key: DynamoType
    prefix: str | None
    below: str | None
    after: str | None  # the ExclusiveStartKey's sort key


def _partition_query(handler: DynamoHandler) -> _PartitionQuery | None:
    """The request as a plain read of one partition of a hash-and-range table, or None
    when it asks anything else (or anything moto would refuse: moto then says why)."""
    body = handler.body
    if not set(body) <= _PLAIN_QUERY:
        return None
    match = _KEY_CONDITION.fullmatch(str(body.get("KeyConditionExpression", "")))
    values = body.get("ExpressionAttributeValues")
    if match is None or not isinstance(values, dict):
        return None
    placeholders = {match[n] for n in ("pk", "prefix", "below") if match[n]}
    if set(values) != placeholders or not all(
        isinstance(v, dict) and set(v) == {"S"} and v["S"] for v in values.values()
    ):  # an empty key value moto refuses
        return None
    table = handler.dynamodb_backend.get_table(body["TableName"])  # raises as moto does
    range_attr = table.range_key_attr
    if (
        table.hash_key_attr != match["hash"]
        or not range_attr
        or (match["prefix_key"] or match["below_key"] or range_attr) != range_attr
        or table.hash_key_type != "S"
        or table.range_key_type != "S"
    ):
        return None
    hash_key = DynamoType(values[match["pk"]])
    after: str | None = None
    start = body.get("ExclusiveStartKey")
    if start is not None:
        if (
            not isinstance(start, dict)
            or set(start) != {table.hash_key_attr, range_attr}
            or start[table.hash_key_attr] != values[match["pk"]]
            or not isinstance(start[range_attr], dict)
            or set(start[range_attr]) != {"S"}
        ):
            return None
        after = start[range_attr]["S"]
    return _PartitionQuery(
        table,
        range_attr,
        hash_key,
        values[match["prefix"]]["S"] if match["prefix"] else None,
        values[match["below"]]["S"] if match["below"] else None,
        after,
    )


def _partition_reads(query: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
    """moto's Query lists the partition, sizes every item twice, deep-copies the page,
    then converts it to plain values attribute by attribute: three quarters of a first
    `/simple/` read of a 2,000-file project. A plain read of one partition is answered
    from the partition (_partition), each item written out as DynamoDB's JSON and sized
    in one walk (_written; under the DynamoDB lock: nothing changes it meanwhile). The
    page ends, as moto's, before the item that would take it past 1 MB."""

    @functools.wraps(query)
    def answered(self: DynamoHandler) -> Any:
        plan = _partition_query(self)
        if plan is None:
            return query(self)
        table = plan.table
        page: list[dict[str, Any]] = []
        size = 0
        last: Item | None = None
        previous: Item | None = None
        for item in _partition(table, plan.hash_key, plan.prefix):
            key = item.attrs[plan.range_attr].value
            if (plan.below is not None and key >= plan.below) or (
                plan.after is not None and key <= plan.after
            ):
                continue
            written, item_size = _written(item)
            if size + item_size > RESULT_SIZE_LIMIT:
                last = previous
                break
            page.append(written)
            size += item_size
            previous = item
        result: dict[str, Any] = {"Count": len(page), "ScannedCount": len(page), "Items": page}
        if last is not None:
            result["LastEvaluatedKey"] = {
                name: _written_value(last.attrs[name])[0]
                for name in (table.hash_key_attr, plan.range_attr)
            }
        return ActionResult(result)

    return answered


def _written(item: Item) -> tuple[dict[str, Any], int]:
    """An item as DynamoDB's JSON, and its size as moto counts it (Item.size): one walk
    of its values for both."""
    written: dict[str, Any] = {}
    size = 0
    for name, value in item.attrs.items():
        written[name], value_size = _written_value(value)
        size += len(name.encode()) + value_size
    return written, size


def _written_value(value: DynamoType) -> tuple[dict[str, Any], int]:
    """A value as DynamoDB's JSON (binary values stay bytes or base64 text:
    _plain_item_reads writes bytes in base64), and its size as DynamoType.size counts it."""
    kind, plain = value.type, value.value
    if kind == "M":
        members: dict[str, Any] = {}
        size = 0
        for name, member in plain.items():
            members[name], member_size = _written_value(member)
            size += len(name.encode()) + member_size
        return {"M": members}, size
    if kind == "L":
        elements = [_written_value(element) for element in plain]
        return {"L": [e for e, _ in elements]}, sum(s for _, s in elements)
    if kind == "N":
        return {kind: plain}, len(str(plain))
    if kind == "NS":
        return {kind: plain}, sum(len(str(v)) for v in plain)
    if kind in ("SS", "BS"):
        return {kind: plain}, sum(_bytesize(v) for v in plain)
    if isinstance(plain, bool):  # BOOL, and NULL's True
        return {kind: plain}, 1
    return {kind: plain}, _bytesize(plain)


def _bytesize(value: str | bytes) -> int:
    return len(value if isinstance(value, bytes) else value.encode())


# -- DynamoDB: item reads answered as the JSON they already are -------------------------------

# -- Condition expressions: parsed once --------------------------------------------------------

_PARSER_FIELDS = (
    "condition_expression",
    "expression_attribute_names",
    "expression_attribute_values",
    "expr_attr_names_found",
    "expr_attr_values_found",
)
# A transaction of a few items needs its last few parses; publishing many files at once
# interleaves a few transactions.
_PARSES_KEPT = 256
_ParseKey = tuple[str, str, str]
K = TypeVar("K")
V = TypeVar("V")
_Parsed = tuple[Any, list[str], list[str]]


class _Kept(Generic[K, V]):
    """The last _PARSES_KEPT values by key, the oldest forgotten first (dicts keep
    insertion order); shared by the threads moto's server runs requests in."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._values.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._values) >= _PARSES_KEPT:
                del self._values[next(iter(self._values))]
            self._values[key] = value


def _remembered(parse: Callable[..., Any]) -> Callable[..., Any]:
    kept: _Kept[_ParseKey, _Parsed] = _Kept()

    @functools.wraps(parse)
    def remembered(self: ConditionExpressionParser) -> Any:
        key = (
            self.condition_expression or "",
            json.dumps(self.expression_attribute_names, sort_keys=True),
            json.dumps(self.expression_attribute_values, sort_keys=True, default=repr),
        )
        found = kept.get(key)
        if found is None:
            tree = parse(self)  # an invalid expression raises: nothing is kept
            kept.put(
                key, (tree, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            )
            return tree
        tree, names, values = found
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return tree

    return remembered


def _remembered_updates(make: Callable[..., Any]) -> Callable[..., Any]:
    kept: _Kept[str, Any] = _Kept()

    @functools.wraps(make)
    def remembered(cls: type, expression_str: str) -> Any:
        tree = kept.get(expression_str)
        if tree is None:
            tree = make(cls, expression_str)  # an invalid expression raises: nothing kept
            kept.put(expression_str, tree)
        return tree

    return remembered


PLAIN_READS = frozenset({"GetItem", "BatchGetItem", "Query"})
_JSON_1_0 = "application/x-amz-json-1.0"


def _base64(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not plain JSON")


def _plain_item_reads(serialized: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(serialized)
    def plain(self: BaseResponse, action_result: ActionResult) -> Any:
        result = action_result.result
        if (
            isinstance(self, DynamoHandler)
            and isinstance(result, dict)
            and self._get_action() in PLAIN_READS
        ):
            try:
                body = json.dumps(result, default=_base64)
            except TypeError:
                pass  # something not plain after all: moto's own serializer
            else:
                return 200, {"Content-Type": _JSON_1_0, **self.response_headers}, body
        return serialized(self, action_result)

    return plain
