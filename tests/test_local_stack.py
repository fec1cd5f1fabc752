"""End to end over real HTTP: the local stack started the way `make run` starts it."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from chalicelib.adapters.dynamodb import DynamoStore
from tests.conftest import ADMIN_TOKEN, Api, Reply, wheel_name
from tests.dists import dist

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ADMIN_TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    base: str
    moto: str
    process: subprocess.Popen[str]

    def transport(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(path if path.startswith("http") else self.base + path)
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        try:
            target = url.path + (f"?{url.query}" if url.query else "")
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def api(self, token: str | None = None) -> Api:
        return Api(self.transport, token)


def start_stack() -> Stack:
    port, moto_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WHARF_"))}
    env.update(
        WHARF_PORT=str(port),
        WHARF_MOTO_PORT=str(moto_port),
        WHARF_ADMIN_TOKEN=ADMIN,
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "devserver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", process)
    deadline = time.monotonic() + 120  # a bound on start-up, not an assertion on speed
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the stack exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            if stack.transport("GET", "/simple/", {}, b"").status == 200:
                return stack
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the stack did not become ready")


def stop(stack: Stack, sig: int) -> str:
    stack.process.send_signal(sig)
    output, _ = stack.process.communicate(timeout=60)
    assert stack.process.returncode == 0, output
    return output


def wait_for(api: Api, url: str, leaving: str) -> dict[str, Any]:
    """Poll a status URL, as PEP 694 clients do, until it is no longer `leaving`."""
    for _ in range(600):  # a bound on waiting, not an assertion on speed
        body: dict[str, Any] = api.get(url).json()
        if body["status"] != leaving:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} stayed {leaving}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack()
    yield running
    output = stop(running, signal.SIGTERM)
    assert "Wharf stopped." in output


@pytest.fixture(scope="module")
def users(stack: Stack) -> dict[str, str]:
    admin = stack.api(ADMIN)
    return {name: admin.new_user(name) for name in ("alice", "bob")}


def test_start_prints_the_url_and_admin_token() -> None:
    running = start_stack()
    output = stop(running, signal.SIGINT)
    assert f"{running.base}/" in output
    assert ADMIN in output
    # Nothing is left listening.
    with pytest.raises(OSError):
        running.transport("GET", "/simple/", {}, b"")


def test_round_trip_over_http(stack: Stack, users: dict[str, str]) -> None:
    me = stack.api(users["alice"])
    created = me.create_session("round-trip", "1.0")
    assert created.status == 201
    session = created.json()
    assert session["links"]["session"].startswith(stack.base + "/upload/")
    files = {
        name: dist(name) for name in ("round_trip-1.0.tar.gz", wheel_name("round-trip", "1.0"))
    }
    for filename, data in files.items():
        done = me.add_file(session, filename, data)
        assert done["status"] == "completed"
    published = me.publish(session)
    assert published.status == 201
    assert published.json()["status"] == "published"
    assert set(published.json()["files"]) == set(files)
    assert me.get(session["links"]["session"]).json()["status"] == "published"
    assert stack.transport("GET", "/nowhere", {}, b"").status == 404


def test_sixteen_simultaneous_creates_yield_one_session(
    stack: Stack, users: dict[str, str]
) -> None:
    me = stack.api(users["alice"])
    barrier = threading.Barrier(16)

    def create(_: int) -> Reply:
        barrier.wait()
        return me.create_session("race", "1.0")

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(create, range(16)))
    created = [r for r in replies if r.status == 201]
    assert len(created) == 1, [r.status for r in replies]
    location = created[0].headers["Location"]
    assert all(
        r.status == 409 and r.headers["Location"] == location for r in replies if r.status != 201
    )


def test_a_150_file_publish_is_atomic_for_readers(stack: Stack, users: dict[str, str]) -> None:
    me = stack.api(users["alice"])
    session = me.create_session("big-release", "2.0").json()
    names = [
        wheel_name("big-release", "2.0", f"cp3{i // 10}-cp3{i // 10}-plat{i}") for i in range(150)
    ]

    def upload(filename: str) -> None:
        me.add_file(session, filename)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, names))
    assert len(me.get(session["links"]["session"]).json()["files"]) == 150

    # The query the simple API uses, against the stack's own DynamoDB.
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto,
        region_name="us-east-1",
        aws_access_key_id="wharf-local",
        aws_secret_access_key="wharf-local",
    )
    reader = DynamoStore(dynamodb, "wharf", retention=1, max_lifetime=1)
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(len(reader.published_files("big-release")))
        seen.append(len(reader.published_files("big-release")))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        published = me.publish(session)
        # A release this large is published by the worker: 202, then poll the status.
        assert published.status == 202, published.body
        assert published.headers["Location"] == session["links"]["session"]
        status = wait_for(me, session["links"]["session"], "processing")
    finally:
        done.set()
        thread.join()
    assert status["status"] == "published", status
    assert set(seen) <= {0, 150}, sorted(set(seen))
    assert seen[-1] == 150


def test_authorization_is_checked_per_request_over_http(
    stack: Stack, users: dict[str, str]
) -> None:
    alice, bob = stack.api(users["alice"]), stack.api(users["bob"])
    session = alice.create_session("guarded", "1.0").json()
    assert bob.get(session["links"]["session"]).status == 403
    assert bob.create_session("guarded", "1.0").status == 403
    anonymous: Any = stack.api()
    reply = anonymous.get(session["links"]["session"])
    assert reply.status == 401 and "WWW-Authenticate" in reply.headers
