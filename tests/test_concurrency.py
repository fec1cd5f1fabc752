"""Many publishers at once on the local stack, started as `make run` starts it (issue 10).

Clients create sessions, upload (http-post-bytes), replace and delete files, publish or
cancel, all at the same time, on a table grown by earlier work, while readers poll the
index. Afterwards every file a publish answered 201 for is listed exactly once, with its
bytes; nothing of a canceled session or a deleted file is; no published filename can be
taken again; and no request was answered with a 5xx, by the API or by the embedded AWS."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from devserver.harness import request
from tests.conftest import ADMIN_TOKEN, Api, Reply, Stack, wheel_name
from tests.dists import dist

PROJECTS = ["crowd-a", "crowd-b", "crowd-c", "crowd-d"]
CLIENTS = 12
FILLER = 3000  # items of other work already in the table
SIMPLE_JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@dataclass
class Answers:
    """Every (method, path, status) the API answered, from every thread."""

    seen: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api(self, stack: Stack, token: str) -> Api:
        def send(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
            reply = stack.transport(method, path, headers, body)
            with self.lock:
                self.seen.append((method, path, reply.status))
            return reply

        return Api(send, token)

    def errors(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return [answer for answer in self.seen if answer[2] >= 500]


@dataclass
class Release:
    project: str
    version: str
    publish: bool  # or cancel
    files: dict[str, bytes] = field(default_factory=dict)  # what should be listed
    gone: set[str] = field(default_factory=set)  # uploaded, then deleted
    published: int = 0  # the publish's status


def filenames(project: str, version: str) -> list[str]:
    stem = project.replace("-", "_")
    return [
        f"{stem}-{version}.tar.gz",
        wheel_name(project, version),
        wheel_name(project, version, "cp311-cp311-linux_x86_64"),
    ]


@pytest.fixture(scope="module")
def crowded() -> Iterator[Stack]:
    """A stack of its own (its output is checked after it stops), its table grown first:
    moto's own transaction copied all of it, each time."""
    running = Stack.start(ADMIN_TOKEN)
    assert isinstance(running, Stack)
    try:
        db = running.client("dynamodb")
        for start in range(0, FILLER, 25):
            db.batch_write_item(
                RequestItems={
                    "wharf": [
                        {
                            "PutRequest": {
                                "Item": {"pk": {"S": f"FILLER#{i % 100}"}, "sk": {"S": str(i)}}
                            }
                        }
                        for i in range(start, start + 25)
                    ]
                }
            )
        yield running
    finally:
        if running.process.poll() is None:  # the test stops it to read its output
            running.stop()


def add_file(me: Api, session: dict[str, Any], filename: str, data: bytes) -> dict[str, Any]:
    """Create, upload and complete one file of the session."""
    created = me.create_file(session, filename, data)
    assert created.status == 202, (filename, created.status, created.body)
    file: dict[str, Any] = created.json()
    assert me.upload(file, data).status == 204, filename
    completed = me.complete(file)
    assert completed.status == 201, (filename, completed.status, completed.body)
    return file


def publish_or_cancel(me: Api, release: Release) -> None:
    """One client's release: a file replaced, others added, one deleted, then the session
    published or canceled; `release` records what should be listed and what is gone."""
    created = me.create_session(release.project, release.version)
    assert created.status == 201, (release, created.status, created.body)
    session = created.json()
    first, *others = filenames(release.project, release.version)
    # Replaced: the second upload of a completed filename is the one published.
    add_file(me, session, first, dist(first, f"{release.version} replaced"))
    release.files[first] = dist(first, f"{release.version} final")
    add_file(me, session, first, release.files[first])
    for filename in others:
        release.files[filename] = dist(filename, release.version)
        add_file(me, session, filename, release.files[filename])
    # Uploaded, then deleted while the others publish.
    doomed = wheel_name(release.project, release.version, "py2-none-any")
    file = add_file(me, session, doomed, dist(doomed, release.version))
    assert me.delete(file["links"]["file-upload-session"]).status == 204, doomed
    release.gone.add(doomed)
    if release.publish:
        published = me.publish(session)
        release.published = published.status
        assert published.status == 201, (release, published.body)
        assert set(published.json()["files"]) == set(release.files)
    else:
        assert me.delete(session["links"]["session"]).status == 204
        release.gone |= set(release.files)
        release.files = {}


def watch_index(me: Api, done: threading.Event, torn: list[str]) -> None:
    """Poll every project's page until `done`, noting each release listed without all of
    its three files."""
    # A release appears all at once (invariant 2), whoever else is writing.
    while not done.is_set():
        for project in PROJECTS:
            page = me.get(f"/simple/{project}/", headers=SIMPLE_JSON)
            if page.status != 200:
                continue  # 404 until a first release is published
            versions = Counter(
                f["filename"].removesuffix(".tar.gz").split("-")[1] for f in page.json()["files"]
            )
            torn.extend(f"{project} {v}: {n} files" for v, n in versions.items() if n != 3)


def publish_while_reading(
    crowded: Stack, answers: Answers, token: str, releases: list[Release]
) -> tuple[list[str], list[str]]:
    """Every release's client at once while two readers poll the index: the clients'
    failures, and the torn releases the readers saw."""
    failures: list[str] = []
    torn: list[str] = []
    done = threading.Event()

    def publisher(release: Release) -> None:
        try:
            publish_or_cancel(answers.api(crowded, token), release)
        except AssertionError as exc:
            failures.append(f"{release.project} {release.version}: {exc}")

    readers = [
        threading.Thread(target=watch_index, args=(answers.api(crowded, token), done, torn))
        for _ in range(2)
    ]
    for thread in readers:
        thread.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(publisher, releases))
    finally:
        done.set()
        for thread in readers:
            thread.join()
    return failures, torn


def check_listing(reader: Api, project: str, releases: list[Release]) -> None:
    """The project's page lists every published file exactly once, with its bytes, and
    nothing else."""
    expected = {
        name: data for r in releases if r.project == project for name, data in r.files.items()
    }
    gone = {name for r in releases if r.project == project for name in r.gone}
    page = reader.get(f"/simple/{project}/", headers=SIMPLE_JSON)
    assert page.status == 200, (project, page.status)
    listed = Counter(f["filename"] for f in page.json()["files"])
    assert listed == Counter(expected.keys()), project
    assert not gone & set(listed), project
    for entry in page.json()["files"]:
        data = expected[entry["filename"]]
        assert entry["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
        download = request(entry["url"])
        assert download.status == 200, entry["url"]
        assert download.body == data, entry["filename"]


def retake(me: Api, release: Release) -> list[int]:
    """The statuses of creating each of a published release's files again, with other
    bytes, in a new session (canceled afterwards)."""
    again = me.create_session(release.project, release.version)
    assert again.status == 201, again.body
    statuses = [
        me.create_file(again.json(), name, dist(name, "other bytes")).status
        for name in release.files
    ]
    assert me.delete(again.json()["links"]["session"]).status == 204
    return statuses


def test_concurrent_publishers_lose_no_file(crowded: Stack) -> None:
    answers = Answers()
    token = crowded.api(ADMIN_TOKEN).new_user("crowd")
    releases = [
        Release(PROJECTS[k % len(PROJECTS)], f"1.{k}", publish=k % 3 != 2) for k in range(CLIENTS)
    ]
    failures, torn = publish_while_reading(crowded, answers, token, releases)
    assert failures == []
    assert torn == []
    assert all(r.published == 201 for r in releases if r.publish)

    # Every published file exactly once, with its bytes; nothing else.
    reader = answers.api(crowded, token)
    for project in PROJECTS:
        check_listing(reader, project, releases)

    # No published filename can be taken again, with other bytes, in a new session.
    with ThreadPoolExecutor(CLIENTS) as pool:
        retaken = list(
            pool.map(
                lambda release: retake(answers.api(crowded, token), release),
                [r for r in releases if r.publish],
            )
        )
    assert all(status == 409 for statuses in retaken for status in statuses), retaken

    assert answers.errors() == []
    # Nor did anything fail inside the stack: werkzeug logs what escapes moto as "Error on
    # request" (a 500 the app's clients may have retried past), the app its own failures.
    assert crowded.stop() == 0, crowded.output
    assert "Error on request" not in crowded.output, crowded.output
    assert "Traceback" not in crowded.output, crowded.output
