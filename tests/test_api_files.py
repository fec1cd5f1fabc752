"""File upload sessions with http-post-bytes over HTTP: PEP 694 "File Upload Session"."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chalicelib.runtime import Services
from tests.conftest import Api, wheel_name
from tests.dists import dist

SDIST = "demo-1.0.tar.gz"


def test_create_answers_202_with_retry_after_and_links(me: Api, session: dict[str, Any]) -> None:
    reply = me.create_file(session, SDIST, b"abc")
    assert reply.status == 202
    assert int(reply.headers["Retry-After"]) >= 0
    body = reply.json()
    assert set(body["links"]) == {"file-upload-session", "complete", "extend"}
    assert body["status"] == "pending"
    assert body["expires-at"] == session["expires-at"]
    assert body["mechanism"]["identifier"] == "http-post-bytes"
    assert body["mechanism"]["file_url"].startswith("http://wharf.test/upload/")
    listed = me.get(session["links"]["session"]).json()["files"]
    assert listed == {
        SDIST: {"status": "pending", "link": body["links"]["file-upload-session"], "notices": []}
    }
    status = me.get(body["links"]["file-upload-session"])
    assert status.status == 200 and "Retry-After" in status.headers
    assert status.json() == body


def test_the_full_upload_completes_with_201(me: Api, session: dict[str, Any]) -> None:
    data = dist(SDIST)
    file = me.create_file(session, SDIST, data).json()
    assert me.upload(file, data).status == 204
    done = me.complete(file)
    assert done.status == 201
    assert done.headers["Location"] == file["links"]["file-upload-session"]
    assert done.json()["status"] == "completed"
    assert me.get(session["links"]["session"]).json()["files"][SDIST]["status"] == "completed"


@pytest.mark.parametrize(
    ("overrides", "source"),
    [
        ({"filename": "demo-1.0.zip"}, "filename"),
        ({"filename": "other-1.0.tar.gz"}, "filename"),
        ({"filename": "demo-2.0.tar.gz"}, "filename"),
        ({"filename": "../demo-1.0.tar.gz"}, "filename"),
        ({"filename": "demo-1.0\r.tar.gz"}, "filename"),
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": "12"}, "size"),
        ({"size": True}, "size"),
        ({"size": 1.5}, "size"),
        ({"hashes": {}}, "hashes"),
        ({"hashes": {"md5": hashlib.md5(b"x").hexdigest()}}, "hashes"),
        ({"hashes": {"sha256": "nothex"}}, "hashes.sha256"),
        ({"hashes": {"bogus": "00"}}, "hashes.bogus"),
        ({"hashes": ["sha256"]}, "hashes"),
        # One algorithm named twice with different digests: neither may be dropped.
        (
            {
                "hashes": {
                    "sha256": hashlib.sha256(b"abc").hexdigest(),
                    "SHA256": hashlib.sha256(b"abd").hexdigest(),
                }
            },
            "hashes.SHA256",
        ),
        ({"filename": None}, "filename"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    me: Api, session: dict[str, Any], overrides: dict[str, Any], source: str
) -> None:
    reply = me.create_file(session, SDIST, b"abc", **overrides)
    assert reply.status == 400, reply.body
    problem = reply.json()
    assert any(e["source"] == source for e in problem["errors"]), problem
    assert me.get(session["links"]["session"]).json()["files"] == {}


def test_a_key_given_twice_in_a_json_object_is_400(me: Api, session: dict[str, Any]) -> None:
    # Parsers differ on which duplicate wins (RFC 8259 section 4): refuse, drop nothing.
    one, other = hashlib.sha256(b"abc").hexdigest(), hashlib.sha256(b"abd").hexdigest()
    body = (
        f'{{"meta": {{"api-version": "2.0"}}, "filename": "{SDIST}", "size": 3, '
        f'"mechanism": "http-post-bytes", "hashes": {{"sha256": "{one}", "sha256": "{other}"}}}}'
    )
    reply = me.post(session["links"]["upload"], raw=body.encode())
    assert reply.status == 400
    assert "twice" in reply.body.decode()
    assert me.get(session["links"]["session"]).json()["files"] == {}


def test_an_unknown_mechanism_is_422(me: Api, session: dict[str, Any]) -> None:
    reply = me.create_file(session, SDIST, b"abc", mechanism="vnd-acmecorp-postal")
    assert reply.status == 422
    assert "http-post-bytes" in reply.json()["detail"]


def test_too_large_for_post_bytes_names_the_limit(me: Api, session: dict[str, Any]) -> None:
    # A size the server will not take "cannot proceed": 409 (PEP 694), naming the limit
    # and the mechanism that can carry the file.
    reply = me.create_file(session, SDIST, b"abc", size=1024 * 1024 + 1)
    assert reply.status == 409
    assert reply.json()["errors"][0]["source"] == "mechanism"
    assert str(1024 * 1024) in reply.json()["detail"]
    assert "vnd-wharf-s3multipart-presigned-v1" in reply.json()["detail"]
    over = me.create_file(session, SDIST, b"abc", size=10**12)
    assert over.status == 409
    assert over.json()["errors"][0]["source"] == "size"


def test_a_pending_upload_of_the_same_name_is_409(me: Api, session: dict[str, Any]) -> None:
    first = me.create_file(session, SDIST, b"abc").json()
    again = me.create_file(session, SDIST, b"abc")
    assert again.status == 409
    assert again.headers["Location"] == first["links"]["file-upload-session"]


def test_replace_a_completed_file(me: Api, session: dict[str, Any], services: Services) -> None:
    old = me.add_file(session, SDIST, dist(SDIST, "old"))
    new = me.create_file(session, SDIST, b"new!")
    assert new.status == 202
    assert me.get(old["links"]["file-upload-session"]).json()["status"] == "canceled"
    files = me.get(session["links"]["session"]).json()["files"]
    assert files[SDIST]["link"] == new.json()["links"]["file-upload-session"]
    _, stored = services.store.get_session_and_files(session["links"]["session"].rsplit("/", 1)[1])
    replaced = next(f for f in stored if f.status.value == "canceled")
    assert services.blobs.head(replaced.key) is None


def test_bytes_must_match_the_declared_size_and_are_kept_once(
    me: Api, session: dict[str, Any]
) -> None:
    file = me.create_file(session, SDIST, b"abc").json()
    short = me.upload(file, b"ab")
    assert short.status == 400
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "pending"
    assert me.upload(file, b"abc").status == 204
    assert me.upload(file, b"abc").status == 409
    wrong_type = me.post(file["mechanism"]["file_url"], raw=b"abc", content_type="text/plain")
    assert wrong_type.status == 415


def test_a_hash_mismatch_sends_the_file_to_error(me: Api, session: dict[str, Any]) -> None:
    file = me.create_file(
        session, SDIST, b"abc", hashes={"sha256": hashlib.sha256(b"abd").hexdigest()}
    ).json()
    me.upload(file, b"abc")
    failed = me.complete(file)
    assert failed.status == 400
    assert failed.json()["errors"][0]["source"] == "hashes.sha256"
    status = me.get(file["links"]["file-upload-session"]).json()
    assert status["status"] == "error" and "sha256" in status["notices"][0]
    listed = me.get(session["links"]["session"]).json()["files"][SDIST]
    assert listed["status"] == "error" and listed["notices"]
    # Final for the file: completing again is refused, publishing too, deleting works.
    assert me.complete(file).status == 409
    assert me.publish(session).status == 409
    assert me.delete(file["links"]["file-upload-session"]).status == 204
    assert me.publish(session).status == 201


def test_every_given_hash_is_checked(me: Api, session: dict[str, Any]) -> None:
    data = b"abc"
    hashes = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2b": hashlib.blake2b(b"other").hexdigest(),
    }
    file = me.create_file(session, SDIST, data, hashes=hashes).json()
    me.upload(file, data)
    failed = me.complete(file)
    assert failed.status == 400
    assert [e["source"] for e in failed.json()["errors"]] == ["hashes.blake2b"]


def test_completing_without_bytes_is_an_error(me: Api, session: dict[str, Any]) -> None:
    file = me.create_file(session, SDIST, b"abc").json()
    assert me.complete(file).status == 400
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "error"


def test_delete_removes_the_file_from_the_session(
    me: Api, session: dict[str, Any], services: Services
) -> None:
    file = me.add_file(session, SDIST)
    _, files = services.store.get_session_and_files(session["links"]["session"].rsplit("/", 1)[1])
    key = files[0].key
    assert services.blobs.head(key) is not None
    assert me.delete(file["links"]["file-upload-session"]).status == 204
    assert me.get(session["links"]["session"]).json()["files"] == {}
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "canceled"
    assert services.blobs.head(key) is None
    assert me.delete(file["links"]["file-upload-session"]).status == 409


def test_file_keys_are_unique_per_upload_session(
    me: Api, session: dict[str, Any], services: Services
) -> None:
    me.add_file(session, SDIST, dist(SDIST, "one"))
    me.create_file(session, SDIST, b"two")
    _, files = services.store.get_session_and_files(session["links"]["session"].rsplit("/", 1)[1])
    keys = {f.key for f in files}
    assert len(keys) == 2
    assert all(k.startswith("files/demo/") and k.endswith("/" + SDIST) for k in keys)


def test_extend_file_extends_its_session(me: Api, session: dict[str, Any]) -> None:
    file = me.create_file(session, SDIST, b"abc").json()
    reply = me.post(file["links"]["extend"], {"meta": {"api-version": "2.0"}, "extend-for": 60})
    assert reply.status == 200
    assert reply.json()["expires-at"] > file["expires-at"]
    assert me.get(session["links"]["session"]).json()["expires-at"] == reply.json()["expires-at"]


def test_a_published_filename_is_409_at_creation(api: Api, me: Api) -> None:
    first = me.create_session("demo", "1.0").json()
    me.add_file(first, SDIST)
    assert me.publish(first).status == 201
    second = me.create_session("demo", "1.0.0").json()
    reply = me.create_file(second, SDIST, b"abc")
    assert reply.status == 409
    assert me.create_file(second, wheel_name("demo", "1.0"), b"abc").status == 202


def test_publish_time_conflicts_are_409_and_release_the_reservation(
    api: Api, me: Api, services: Services
) -> None:
    project = me.create_session("demo", "0.1").json()
    me.publish(project)
    one = me.create_session("demo", "1.0").json()
    me.add_file(one, SDIST, dist(SDIST, "first"))
    # A second session for the release cannot exist while the first is live, so the
    # race is set up the way it happens: one publishes while the other waits.
    assert me.publish(one).status == 201
    two = me.create_session("demo", "1.0").json()
    sid = two["links"]["session"].rsplit("/", 1)[1]
    wheel = wheel_name("demo", "1.0")
    me.add_file(two, wheel)
    session, _ = services.store.get_session_and_files(sid)
    assert session is not None
    # Slip a file of the published name past the best-effort check.
    from chalicelib.domain.records import FileRecord
    from chalicelib.domain.states import FileStatus

    sneaky = FileRecord(
        id="f" * 32,
        session_id=sid,
        filename=SDIST,
        size=6,
        hashes={"sha256": hashlib.sha256(b"second").hexdigest()},
        mechanism="http-post-bytes",
        status=FileStatus.COMPLETED,
        key=f"files/demo/{'f' * 32}/{SDIST}",
        created_at=services.clock.now(),
    )
    services.store.add_file(session, sneaky, services.clock.now(), replaces=None)
    refused = me.publish(two)
    assert refused.status == 409
    assert [e["source"] for e in refused.json()["errors"]] == [f"files.{SDIST}"]
    assert me.get(two["links"]["session"]).json()["status"] == "open"
    # The wheel's reservation was released: it is not published, and publishing works
    # once the conflicting file is gone.
    assert services.store.published_file("demo", "1", wheel) is None
    assert me.delete(f"{two['links']['session']}/files/{'f' * 32}").status == 204
    assert me.publish(two).status == 201
    assert services.store.published_file("demo", "1", wheel) is not None
    first = services.store.published_file("demo", "1", SDIST)
    assert (
        first is not None
        and first.hashes["sha256"] == hashlib.sha256(dist(SDIST, "first")).hexdigest()
    )


def _cancel_first(services: Services, me: Api, file: dict[str, Any], step: Any) -> Any:
    """`step`, run only after the file was canceled: a DELETE winning the race against
    the completion in progress at exactly that point."""
    session_id, file_id = file["links"]["file-upload-session"].split("/")[-3::2]
    principal = services.access.authenticate(f"Bearer {me.token}")

    def racing(*args: Any, **kwargs: Any) -> Any:
        services.files.cancel_file(principal, session_id, file_id)
        return step(*args, **kwargs)

    return racing


@pytest.mark.parametrize("point", ["fetch", "put_new"])
def test_a_delete_racing_completion_is_a_409_leaving_nothing(
    me: Api,
    session: dict[str, Any],
    services: Services,
    aws: tuple[Any, Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    """The file is deleted while its completion reads its bytes (fetch) or stores its
    metadata (put_new): the answer is a 409 (never a 500), the file is canceled, and no
    byte of it is left in storage."""
    data = dist(SDIST)
    file = me.create_file(session, SDIST, data).json()
    assert me.upload(file, data).status == 204
    blobs = services.blobs
    monkeypatch.setattr(blobs, point, _cancel_first(services, me, file, getattr(blobs, point)))
    done = me.complete(file)
    assert done.status == 409, done.body
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "canceled"
    listed = aws[1].list_objects_v2(Bucket=services.settings.bucket_name)
    assert listed.get("KeyCount", 0) == 0, listed.get("Contents")


def test_filenames_naming_one_distribution_are_one_filename(me: Api) -> None:
    """`FOO-1.0-py3-none-any.whl` and `foo-1.0.0-py3-none-any.whl` are the same wheel to
    an installer: a release holds one of them (names.filename_key), whatever the
    spelling, within a session and once published."""
    session = me.create_session("demo", "1.0").json()
    pending = me.create_file(session, "demo-1.0-py3-none-any.whl", b"x")
    assert pending.status == 202
    again = me.create_file(session, "Demo-1.0.0-py3-none-any.whl", b"y")
    assert again.status == 409
    assert again.headers["Location"] == pending.json()["links"]["file-upload-session"]
    assert me.delete(pending.json()["links"]["file-upload-session"]).status == 204
    me.add_file(session, "DEMO-1.0-py3-none-any.whl")
    assert me.publish(session).status == 201
    later = me.create_session("demo", "1.0.0").json()
    for spelling in ("demo-1.0.0-py3-none-any.whl", "demo-1-py3-none-any.whl"):
        refused = me.create_file(later, spelling, b"z")
        assert refused.status == 409, spelling
        assert refused.json()["errors"][0]["source"] == "filename"
