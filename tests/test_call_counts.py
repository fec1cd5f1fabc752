"""AWS calls per API request, as the app makes them (moto behind them): each request
reads what it needs once, a file costs the same whatever the index holds, and publishing
costs a constant per file. A budget fails the test when an operation grows; the README's
cost table quotes these counts (a registered project's maintainer, the common case; a
first release reads no role)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from chalicelib import runtime
from chalicelib.config import Settings
from chalicelib.domain.mechanisms import MIN_PART_SIZE
from chalicelib.services.index import IndexService
from tests import aws_calls
from tests.conftest import PUBLIC_URL, Api, wheel_name
from tests.dists import dist, wheel
from tests.test_api_legacy import legacy

MULTIPART = "vnd-wharf-s3multipart-presigned-v1"
META = {"api-version": "2.0"}

# (DynamoDB, S3) calls per request. Reads of one request are batched: the token with what
# the URL names (session, file), then what that names (project, role; filenames).
BUDGETS = {
    "create session": (3, 0),  # the token; the project and role in one; the transaction
    # A file of one part is sent whole: its URL signed with the creation (presigning
    # calls nothing), no multipart upload to start, list or complete.
    "create file": (3, 0),
    # GetObject (with the SHA-256 S3 checked at the PUT: not hashed again), metadata PutObject
    "complete": (3, 2),
    # Replacing the session's completed file of that name (PEP 694 "Replacing a ... File"):
    # its filename slot says what replacing it needs, the replacement's transaction
    # cancels it on condition that it is completed or failed; then its bytes deleted
    # (object and metadata: DeleteObject each).
    "create replacing file": (3, 2),
    # The same refused, that file being uploaded still (409): the refusal is the
    # transaction's; the new file's multipart upload, started, is aborted.
    "create refused": (3, 2),
    # A file of several parts.
    "create multipart file": (3, 1),  # + CreateMultipartUpload
    "sign parts": (3, 0),  # + the signer recorded on the file; presigning calls nothing
    # ListParts, CompleteMultipartUpload, GetObject (one pass: hashed, walked, its METADATA
    # and central directory kept as they pass), metadata PutObject
    "complete multipart": (3, 4),
    "file status": (2, 0),
    "session status": (2, 0),  # the token and the session; its files with the standing
    # The project, commit markers, files (whatever the file count); the project's
    # listing looked for (GetObject) and, not there, stored (PutObject) for cold containers.
    "index page": (3, 2),
    # A cold container, the revision listed: the project and the listing.
    "index page, listed": (1, 1),
    # A warm container after a publish: the project, commit markers, the new release's
    # files (the container has the rest).
    "index page, after a publish": (3, 0),
    # A cold container after a publish: the same, the rest from the listing it replaces.
    "index page, listed before a publish": (3, 2),
    # The token; the standing; the session, its file and the publish in one transaction.
    # The file and its metadata stored (verified from the bytes in hand), then tagged.
    "legacy upload": (3, 4),
}
# Publishing: a constant number of DynamoDB calls (the token and the session; its files,
# listed on it, with the standing; the reservations and the commit in one transaction,
# conditional on the session's revision as read), and per file the file and its
# metadata tagged public. (The sweep takes the outbox entry away later.)
PUBLISH_BASE = 3
PUBLISH_S3_PER_FILE = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A file of two parts is still verified within `complete`, as one of one part is.
    return dataclasses.replace(settings, inline_max=2 * MIN_PART_SIZE)


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """The AWS calls the app makes inside the block, per service (the IAM recorder's:
    tests/aws_calls.py; a presigned URL is not a call)."""
    seen: Counter[str] = Counter()
    with aws_calls.capture() as calls:
        yield seen
    # A 404's ListBucket check is recorded as a call of its own (for IAM): not one made.
    seen.update(c.service for c in calls if not c.presigned and "(missing key" not in c.operation)


def _b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _within(seen: Counter[str], operation: str) -> None:
    dynamodb, s3 = BUDGETS[operation]
    assert seen["dynamodb"] <= dynamodb and seen["s3"] <= s3, (
        f"{operation}: {dict(seen)}, budget dynamodb={dynamodb} s3={s3}"
    )


def _registered(api: Api) -> Api:
    """bob, maintainer of the registered project demo (with a release out)."""
    bob = api.as_(api.new_user("bob"))
    first = bob.create_session("demo", "0.1").json()
    bob.add_file(first, wheel_name("demo", "0.1"))
    assert bob.publish(first).status == 201
    return bob


def _put(part: dict[str, Any], data: bytes) -> None:
    assert requests.put(part["url"], data=data, headers=part["headers"], timeout=30).ok


def _upload(me: Api, session: dict[str, Any], filename: str, data: bytes) -> dict[str, Any]:
    """Create, send (as the client does: the parts signed with the creation, or asked
    for), complete; each step held to its budget."""
    multipart = "" if len(data) <= MIN_PART_SIZE else " multipart"
    with counting() as seen:
        created = me.create_file(session, filename, data, mechanism=MULTIPART)
    assert created.status == 202, created.body
    _within(seen, "create" + multipart + " file")
    file = created.json()
    size = file["mechanism"]["part_size"]
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    signed = file["mechanism"].get("parts")
    if not signed:
        asked = [{"number": n, "sha256": _b64sha256(c)} for n, c in enumerate(chunks, 1)]
        with counting() as seen:
            answer = me.post(file["mechanism"]["parts_url"], {"meta": META, "parts": asked})
        assert answer.status == 200, answer.body
        _within(seen, "sign parts")
        signed = answer.json()["parts"]
    for part, chunk in zip(signed, chunks, strict=True):
        _put(part, chunk)
    with counting() as seen:
        completed = me.complete(file)
    assert completed.status == 201, completed.body
    _within(seen, "complete" + multipart)
    return dict(completed.json())


def test_each_step_of_an_upload_stays_within_its_budget(api: Api) -> None:
    bob = _registered(api)
    with counting() as seen:
        created = bob.create_session("demo", "1.0")
    assert created.status == 201
    _within(seen, "create session")
    session = created.json()
    file = _upload(bob, session, wheel_name("demo", "1.0"), dist(wheel_name("demo", "1.0")))
    large = wheel_name("demo", "1.0", "cp312-cp312-win_amd64")
    members = {"demo/blob.bin": os.urandom(MIN_PART_SIZE + 1)}
    _upload(bob, session, large, wheel(large, members=members, compression=zipfile.ZIP_STORED))
    with counting() as seen:
        assert bob.get(file["links"]["file-upload-session"]).status == 200
    _within(seen, "file status")
    with counting() as seen:
        assert bob.get(session["links"]["session"]).status == 200
    _within(seen, "session status")


def test_replacing_a_file_stays_within_the_budget_of_creating_one(api: Api) -> None:
    bob = _registered(api)
    session = bob.create_session("demo", "1.0").json()
    name = wheel_name("demo", "1.0")
    first = _upload(bob, session, name, dist(name))
    with counting() as seen:
        created = bob.create_file(session, name, dist(name), mechanism=MULTIPART)
    assert created.status == 202, created.body
    _within(seen, "create replacing file")
    assert bob.get(first["links"]["file-upload-session"]).json()["status"] == "canceled"


def test_a_refused_replacement_aborts_its_upload_and_nothing_else(api: Api) -> None:
    bob = _registered(api)
    session = bob.create_session("demo", "1.0").json()
    large = wheel_name("demo", "1.0", "cp312-cp312-win_amd64")
    members = {"demo/blob.bin": os.urandom(MIN_PART_SIZE + 1)}
    data = wheel(large, members=members, compression=zipfile.ZIP_STORED)
    assert bob.create_file(session, large, data, mechanism=MULTIPART).status == 202
    with counting() as seen:
        refused = bob.create_file(session, large, data, mechanism=MULTIPART)
    assert refused.status == 409, refused.body
    _within(seen, "create refused")


@pytest.mark.parametrize("files", [1, 6])
def test_publishing_costs_a_constant_per_file(api: Api, files: int) -> None:
    bob = _registered(api)
    session = bob.create_session("demo", "1.0").json()
    tags = ("py3-none-any", "cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-win_amd64")
    for tag in tags[:files]:
        bob.add_file(session, wheel_name("demo", "1.0", tag))
    for n in range(files - len(tags)):
        bob.add_file(session, wheel_name("demo", "1.0", f"py{n + 4}-none-any"))
    with counting() as seen:
        assert bob.publish(session).status == 201
    assert seen["dynamodb"] <= PUBLISH_BASE, dict(seen)
    assert seen["s3"] <= PUBLISH_S3_PER_FILE * files, dict(seen)


def test_the_index_page_costs_the_same_whatever_it_lists(api: Api) -> None:
    bob = _registered(api)
    for version in ("1.0", "1.1", "1.2"):
        session = bob.create_session("demo", version).json()
        bob.add_file(session, wheel_name("demo", version))
        bob.publish(session)
    with counting() as seen:
        page = bob.get("/simple/demo/")
    assert page.status == 200 and page.body.count(b"<a ") == 4
    _within(seen, "index page")
    # Read again while nothing was published: the project item says the page is the same.
    with counting() as seen:
        assert bob.get("/simple/demo/").body == page.body
    assert seen["dynamodb"] <= 1 and seen["s3"] == 0, dict(seen)


def test_a_cold_container_reads_the_listing_not_the_files(
    api: Api, services: runtime.Services
) -> None:
    bob = _registered(api)
    page = bob.get("/simple/demo/")  # the first read lists the revision
    cold = IndexService(services.store, services.store, services.blobs, PUBLIC_URL)
    with counting() as seen:
        listed = services.pages.response("html", cold.project("demo"), {})
    _within(seen, "index page, listed")
    assert listed.body == page.body.decode()


def test_after_a_publish_the_index_page_reads_what_it_added(
    api: Api, services: runtime.Services
) -> None:
    bob = _registered(api)
    bob.get("/simple/demo/")  # read, and listed
    cold = IndexService(services.store, services.store, services.blobs, PUBLIC_URL)
    session = bob.create_session("demo", "1.1").json()
    bob.add_file(session, wheel_name("demo", "1.1"))
    bob.publish(session)
    with counting() as seen:
        page = bob.get("/simple/demo/")
    assert page.status == 200 and page.body.count(b"<a ") == 2
    _within(seen, "index page, after a publish")
    with counting() as seen:
        listed = services.pages.response("html", cold.project("demo"), {})
    _within(seen, "index page, listed before a publish")
    assert listed.body == page.body.decode()


def test_a_legacy_upload_stays_within_its_budget(api: Api) -> None:
    bob = _registered(api)
    assert bob.token is not None
    with counting() as seen:
        assert legacy(api, bob.token, wheel_name("demo", "1.0")) == 200
    _within(seen, "legacy upload")
