"""Shared fixtures: AWS is moto, in-process (unit speed) unless a test starts the local
stack; services are wired exactly as in the Lambda, with a clock the test controls."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from chalice.test import Client
from moto import mock_aws

from chalicelib import runtime
from chalicelib.adapters.memory.clock import FixedClock
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.adapters.schema import create_bucket, create_queue, create_table
from chalicelib.adapters.sqs import SqsJobQueue
from chalicelib.config import QUEUE_NAME, Settings
from devserver import moto_guard
from devserver.harness import LocalStack, request
from devserver.moto_guard import EmbeddedAws
from tests.dists import dist

REGION = "us-east-1"
ADMIN_TOKEN = "test-admin-token"
UPLOAD_JSON = "application/vnd.pypi.upload.v2+json"
PUBLIC_URL = "http://wharf.test"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        public_url=PUBLIC_URL,
        admin_token=ADMIN_TOKEN,
        table_name="wharf-test",
        bucket_name="wharf-test-files",
        session_lifetime=3600,
        session_max_lifetime=7200,
        session_retention=600,
        max_file_size=50 * 1024 * 1024,
        post_bytes_max=1024 * 1024,
    )


@functools.cache
def _clients() -> tuple[Any, Any, Any]:
    """The clients the Lambda builds (SigV4 presigning included), made once: building
    them loads service models (a tenth of a second and more each time), and moto answers
    any client while a mock_aws is active, with that mock's own fresh state."""
    return runtime.aws_clients()


@pytest.fixture
def aws(settings: Settings) -> Iterator[tuple[Any, Any, Any]]:
    with mock_aws():
        dynamodb, s3, sqs = _clients()
        create_table(dynamodb, settings.table_name)
        create_bucket(s3, settings.bucket_name, REGION)
        yield dynamodb, s3, sqs


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedAws]:
    """The local stack's guarded embedded AWS, in this process (so tests can count and
    compare what it does)."""
    running = EmbeddedAws()
    running.start()
    yield running
    running.stop()
    # moto is shared with every other test of the session: its own methods back.
    moto_guard.uninstall()


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The packaged AWS template (build/template.yaml), as CloudFormation reads it."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "build" / "template.yaml").exists():
        # `make test` packages first; a bare pytest run does it here.
        subprocess.run(["make", "package"], cwd=root, check=True, capture_output=True)
    loaded: dict[str, Any] = cfn_yaml.load(str(root / "build" / "template.yaml"))
    return loaded


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def services(
    aws: tuple[Any, Any, Any], settings: Settings, clock: FixedClock
) -> Iterator[runtime.Services]:
    dynamodb, s3, sqs = aws
    built = runtime.build(
        settings,
        store=runtime.dynamo_store(settings, dynamodb),
        blobs=S3BlobStore(s3, settings.bucket_name),
        queue=SqsJobQueue(sqs, create_queue(sqs, QUEUE_NAME)),
        clock=clock,
    )
    runtime.install(built)
    yield built
    runtime.install(None)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """Speaks the Upload 2.0 API to the app through chalice.test.Client, or any
    transport with the same `request(method, path, headers, body)` shape."""

    def __init__(self, transport: Any, token: str | None = None) -> None:
        self.transport = transport
        self.token = token

    def as_(self, token: str | None) -> Api:
        return Api(self.transport, token)

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        content_type: str | None = UPLOAD_JSON,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        path = url.removeprefix(PUBLIC_URL)
        out = dict(headers or {})
        if self.token is not None:
            out.setdefault("Authorization", f"Bearer {self.token}")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        if data and content_type:
            out.setdefault("Content-Type", content_type)
        reply: Reply = self.transport(method, path, out, data)
        return reply

    def post(self, url: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("POST", url, body, **kw)

    def get(self, url: str, **kw: Any) -> Reply:
        return self.request("GET", url, **kw)

    def delete(self, url: str, **kw: Any) -> Reply:
        return self.request("DELETE", url, **kw)

    def put(self, url: str, body: Any = None, **kw: Any) -> Reply:
        return self.request("PUT", url, body, **kw)

    # -- the round trip, step by step ------------------------------------------------------

    def create_session(self, name: str, version: str) -> Reply:
        return self.post(
            "/upload/", {"meta": {"api-version": "2.0"}, "name": name, "version": version}
        )

    def create_file(
        self, session: dict[str, Any], filename: str, data: bytes, /, **overrides: Any
    ) -> Reply:
        body = {
            "meta": {"api-version": "2.0"},
            "filename": filename,
            "size": len(data),
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "mechanism": "http-post-bytes",
            **overrides,
        }
        return self.post(session["links"]["upload"], body)

    def upload(self, file: dict[str, Any], data: bytes) -> Reply:
        return self.post(
            file["mechanism"]["file_url"], raw=data, content_type="application/octet-stream"
        )

    def complete(self, file: dict[str, Any]) -> Reply:
        return self.post(file["links"]["complete"], {"meta": {"api-version": "2.0"}})

    def add_file(
        self, session: dict[str, Any], filename: str, data: bytes | None = None
    ) -> dict[str, Any]:
        """Create, upload and complete a file: by default a valid distribution."""
        data = dist(filename) if data is None else data
        created = self.create_file(session, filename, data)
        assert created.status == 202, created.body
        file = created.json()
        assert self.upload(file, data).status == 204
        completed = self.complete(file)
        assert completed.status == 201, completed.body
        return dict(completed.json())

    def publish(self, session: dict[str, Any]) -> Reply:
        return self.post(session["links"]["publish"], {"meta": {"api-version": "2.0"}})

    # -- operator ----------------------------------------------------------------------------

    def new_user(self, username: str, projects: list[str] | None = None) -> str:
        admin = self.as_(ADMIN_TOKEN)
        assert (
            admin.post(
                "/admin/users", {"username": username}, content_type="application/json"
            ).status
            == 201
        )
        body: dict[str, Any] = {"description": "test"}
        if projects is not None:
            body["projects"] = projects
        issued = admin.post(
            f"/admin/users/{username}/tokens", body, content_type="application/json"
        )
        assert issued.status == 201, issued.body
        return str(issued.json()["token"])


@pytest.fixture
def me(api: Api) -> Api:
    """A user's API client: "alice", with a fresh token."""
    return api.as_(api.new_user("alice"))


@pytest.fixture
def session(me: Api) -> dict[str, Any]:
    """alice's open publishing session for demo 1.0."""
    return dict(me.create_session("demo", "1.0").json())


def chalice_transport(client: Client) -> Any:
    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        response = client.http.request(method, path, headers=headers, body=body)
        return Reply(response.status_code, dict(response.headers), response.body)

    return send


@pytest.fixture
def api(services: runtime.Services) -> Iterator[Api]:
    from app import app

    with Client(app) as client:
        yield Api(chalice_transport(client))


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()


def wheel_name(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{name.replace('-', '_')}-{version}-{tag}.whl"


os.environ.setdefault("AWS_DEFAULT_REGION", REGION)


def run_worker(services: runtime.Services) -> int:
    """Deliver every queued job to the worker, as the SQS-triggered Lambda would; the
    number of jobs run."""
    queue = services.queue
    assert isinstance(queue, SqsJobQueue)
    count = 0
    while jobs := queue.receive(wait_seconds=0):
        for job, receipt in jobs:
            services.worker.handle(job)
            queue.done(receipt)
            count += 1
    return count


# -- the local stack, for end-to-end tests over real HTTP ------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the machine's pip and uv configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1")
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the newest pip from PyPI."""
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    cert = os.environ.get("PIP_CERT")
    env = clean_env(**({"PIP_CERT": cert} if cert else {}))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True, env=env
    )
    yield path


class Stack(LocalStack):
    @property
    def public(self) -> str:
        """The base of the links the stack hands out (WHARF_PUBLIC_URL)."""
        return self.public_url or self.base

    def transport(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = path if path.startswith("http") else self.base + path
        response = request(url, method, body, headers)
        return Reply(response.status, response.headers, response.body)

    def api(self, token: str | None = None) -> Api:
        return Api(self.transport, token)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """One local stack, started as `make run` starts it, for every end-to-end test."""
    running = Stack.start(ADMIN_TOKEN)
    assert isinstance(running, Stack)
    yield running
    assert running.stop() == 0, running.output
    assert "Wharf stopped." in running.output


@pytest.fixture(scope="session")
def users(stack: Stack) -> dict[str, str]:
    admin = stack.api(ADMIN_TOKEN)
    return {name: admin.new_user(name) for name in ("alice", "bob")}


def wait_for(api: Api, url: str, leaving: str) -> dict[str, Any]:
    """Poll a status URL, as PEP 694 clients do, until it is no longer `leaving`."""
    for _ in range(600):  # a bound on waiting, not an assertion on speed
        body: dict[str, Any] = api.get(url).json()
        if body["status"] != leaving:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} stayed {leaving}")


# -- IAM (tests/test_iam.py) ------------------------------------------------------------------
# Every AWS call a function makes while the tests run is recorded (tests/aws_calls.py), from
# before the first client exists; the checks that the packaged roles allow them (marked
# `runs_last`) run after every other test.


def pytest_configure(config: pytest.Config) -> None:
    from tests import aws_calls

    config.addinivalue_line("markers", "runs_last: runs after every other test")
    aws_calls.install()


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have removed their items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from tests import aws_calls

    last = [item for item in items if item.get_closest_marker("runs_last")]
    others = [item for item in items if not item.get_closest_marker("runs_last")]
    items[:] = others + last
    aws_calls.SESSION.other_tests = len(others)
    aws_calls.SESSION.api_tests = sum("api" in getattr(i, "fixturenames", ()) for i in others)


# -- end of IAM -------------------------------------------------------------------------------
