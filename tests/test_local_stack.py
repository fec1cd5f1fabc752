"""End to end over real HTTP: the local stack started the way `make run` starts it."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.store import DynamoStore
from devserver.harness import request
from tests.conftest import ADMIN_TOKEN, Reply, Stack, wait_for, wheel_name
from tests.dists import dist


def stop(stack: Stack, sig: int) -> str:
    assert stack.stop(sig) == 0, stack.output
    return stack.output


def test_start_prints_the_url_and_admin_token() -> None:
    running = Stack.start(ADMIN_TOKEN)
    output = stop(running, signal.SIGINT)
    assert f"{running.base}/" in output
    assert ADMIN_TOKEN in output
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
    reader = DynamoStore(stack.client("dynamodb"), "wharf", retention=1, max_lifetime=1)
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


def test_a_multipart_upload_goes_straight_to_the_embedded_s3(
    stack: Stack, users: dict[str, str]
) -> None:
    import base64
    import zipfile

    from tests.dists import wheel

    me = stack.api(users["alice"])
    session = me.create_session("straight-to-s3", "1.0").json()
    name = wheel_name("straight-to-s3", "1.0")
    data = wheel(
        name, members={"x/blob": os.urandom(9 * 1024 * 1024)}, compression=zipfile.ZIP_STORED
    )
    file = me.create_file(
        session, name, data, mechanism="vnd-wharf-s3multipart-presigned-v1"
    ).json()
    size = file["mechanism"]["part_size"]
    parts = {n + 1: data[n * size : (n + 1) * size] for n in range(file["mechanism"]["part_count"])}
    asked = [
        {"number": n, "sha256": base64.b64encode(hashlib.sha256(d).digest()).decode()}
        for n, d in parts.items()
    ]
    signed = me.post(
        file["mechanism"]["parts_url"], {"meta": {"api-version": "2.0"}, "parts": asked}
    )
    for part in signed.json()["parts"]:
        # The URL is the embedded S3's, not the API's: the API never sees the bytes.
        assert part["url"].startswith(stack.moto + "/")
        put = request(part["url"], "PUT", parts[part["number"]], part["headers"])
        assert put.status == 200, put.body
    # Above WHARF_INLINE_MAX: the stack's worker verifies it from the queue.
    assert me.complete(file).status == 202
    status = wait_for(me, file["links"]["file-upload-session"], "processing")
    assert status["status"] == "completed", status
    assert me.publish(session).status == 201
