"""The vendor mechanism over HTTP, with real PUTs of the presigned part URLs (moto
intercepts them in-process), and deferred processing by the worker."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from chalicelib.config import Settings
from chalicelib.domain.mechanisms import MAX_PARTS_PER_REQUEST, MIB, PartPlan
from chalicelib.runtime import Services
from tests.conftest import ADMIN_TOKEN, Api, run_worker, wheel_name
from tests.dists import wheel

MECHANISM = "vnd-wharf-s3multipart-presigned-v1"
FILENAME = wheel_name("demo", "1.0")
META = {"api-version": "2.0"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Files above 12 MiB are verified by the worker; releases above 2 files too.
    return dataclasses.replace(settings, inline_max=12 * MIB, inline_publish_max_files=2)


@pytest.fixture(scope="module")
def big_wheel() -> bytes:
    """A valid wheel of three parts: 8 MiB, 8 MiB and the rest."""
    payload = {"demo/blob.bin": os.urandom(18 * MIB)}
    return wheel(FILENAME, members=payload, compression=zipfile.ZIP_STORED)


@pytest.fixture(scope="module")
def two_part_wheel() -> bytes:
    """A valid wheel of two parts (8 MiB and the rest), still verified within `complete`."""
    payload = {"demo/blob.bin": os.urandom(9 * MIB)}
    return wheel(FILENAME, members=payload, compression=zipfile.ZIP_STORED)


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def start(me: Api, session: dict[str, Any], data: bytes, **overrides: Any) -> dict[str, Any]:
    reply = me.create_file(session, FILENAME, data, mechanism=MECHANISM, **overrides)
    assert reply.status == 202, reply.body
    return dict(reply.json())


def chunks(file: dict[str, Any], data: bytes) -> dict[int, bytes]:
    size = file["mechanism"]["part_size"]
    return {n + 1: data[n * size : (n + 1) * size] for n in range(file["mechanism"]["part_count"])}


def put_parts(me: Api, file: dict[str, Any], parts: dict[int, bytes]) -> None:
    """Sign, then PUT each part straight to S3 (in parallel), sending exactly the
    headers the API returned."""
    asked = [{"number": n, "sha256": b64sha256(d)} for n, d in parts.items()]
    signed = me.post(file["mechanism"]["parts_url"], {"meta": META, "parts": asked})
    assert signed.status == 200, signed.body
    urls = {p["number"]: p for p in signed.json()["parts"]}

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda n: put_signed(urls[n], parts[n]), parts)) == {200}


def put_signed(part: dict[str, Any], data: bytes) -> int:
    """PUT bytes to a signed part URL, sending exactly the headers the API returned."""
    return requests.put(part["url"], data=data, headers=part["headers"], timeout=60).status_code


def test_parts_signed_for_a_token_revoked_since_are_refused_at_completion(
    api: Api, me: Api, session: dict[str, Any], big_wheel: bytes
) -> None:
    """A presigned part URL outlives the revocation of the token that asked for it (its
    lifetime is PART_URL_SECONDS): completion re-authorizes every token that had URLs
    signed for the file (PEP 694 SHOULD re-authorize), and refuses the file."""
    admin = api.as_(ADMIN_TOKEN)
    ci = admin.post("/admin/users/alice/tokens", {"description": "ci"}).json()
    file = start(api.as_(ci["token"]), session, big_wheel)
    put_parts(api.as_(ci["token"]), file, chunks(file, big_wheel))
    assert admin.delete(f"/admin/tokens/{ci['id']}").status == 204
    done = me.complete(file)
    assert done.status == 400, done.body
    status = me.get(file["links"]["file-upload-session"]).json()
    assert status["status"] == "error"
    assert any("revoked" in n for n in status["notices"])


def test_a_token_revoked_while_its_file_awaits_the_worker_fails_the_file(
    api: Api, me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    # The deferred path: the worker re-authorizes the signers right before assembling.
    admin = api.as_(ADMIN_TOKEN)
    ci = admin.post("/admin/users/alice/tokens", {"description": "ci"}).json()
    file = start(api.as_(ci["token"]), session, big_wheel)
    put_parts(api.as_(ci["token"]), file, chunks(file, big_wheel))
    assert me.complete(file).status == 202
    assert admin.delete(f"/admin/tokens/{ci['id']}").status == 204
    run_worker(services)
    status = me.get(file["links"]["file-upload-session"]).json()
    assert status["status"] == "error"
    assert any("revoked" in n for n in status["notices"])


def test_the_vendor_mechanism_is_advertised_first(session: dict[str, Any]) -> None:
    assert session["mechanisms"] == [MECHANISM, "http-post-bytes"]


def test_the_mechanism_plan(me: Api, session: dict[str, Any], big_wheel: bytes) -> None:
    file = start(me, session, big_wheel)
    mechanism = file["mechanism"]
    assert mechanism["identifier"] == MECHANISM
    assert mechanism["part_size"] == 8 * MIB
    assert mechanism["part_count"] == 3
    assert mechanism["parts_url"].endswith("/parts")
    assert "file_url" not in mechanism


def test_signed_urls_are_short_lived_sigv4_with_the_checksum(
    me: Api, session: dict[str, Any], big_wheel: bytes
) -> None:
    file = start(me, session, big_wheel)
    digest = b64sha256(b"part")
    signed = me.post(
        file["mechanism"]["parts_url"], {"meta": META, "parts": [{"number": 2, "sha256": digest}]}
    )
    part = signed.json()["parts"][0]
    # The part's length is signed with its checksum: S3 refuses other bytes.
    length = str(PartPlan.for_size(len(big_wheel)).size_of(2))
    assert part["number"] == 2
    assert part["headers"] == {"Content-Length": length, "x-amz-checksum-sha256": digest}
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in part["url"] and "partNumber=2" in part["url"]
    assert part["expires-at"].endswith("Z")


@pytest.mark.parametrize(
    "parts",
    [
        [{"number": 0, "sha256": b64sha256(b"x")}],
        [{"number": 4, "sha256": b64sha256(b"x")}],
        [{"number": 1, "sha256": "not base64!"}],
        [{"number": 1, "sha256": base64.b64encode(b"short").decode()}],
        [{"number": "1", "sha256": b64sha256(b"x")}],
        [],
    ],
)
def test_bad_part_requests_are_400(
    me: Api, session: dict[str, Any], big_wheel: bytes, parts: list[dict[str, Any]]
) -> None:
    file = start(me, session, big_wheel)
    reply = me.post(file["mechanism"]["parts_url"], {"meta": META, "parts": parts})
    assert reply.status == 400, reply.body


def test_upload_in_parallel_then_deferred_verification(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    put_parts(me, file, chunks(file, big_wheel))
    listed = me.get(file["mechanism"]["parts_url"]).json()["parts"]
    assert listed == [
        {"number": 1, "size": 8 * MIB, "uploaded": True},
        {"number": 2, "size": 8 * MIB, "uploaded": True},
        {"number": 3, "size": len(big_wheel) - 16 * MIB, "uploaded": True},
    ]
    done = me.complete(file)
    assert done.status == 202
    assert done.headers["Location"] == file["links"]["file-upload-session"]
    assert done.json()["status"] == "processing"
    status = me.get(file["links"]["file-upload-session"])
    assert status.json()["status"] == "processing" and "Retry-After" in status.headers
    # PEP 694: a file being processed cannot be deleted.
    assert me.delete(file["links"]["file-upload-session"]).status == 409
    assert run_worker(services) == 1
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "completed"
    assert me.publish(session).status == 201
    published = services.store.published_file("demo", "1", FILENAME)
    assert published is not None and published.size == len(big_wheel)
    assert published.requires_python == ">=3.9"
    stored = b"".join(services.blobs.stream(published.key + ".metadata"))
    assert hashlib.sha256(stored).hexdigest() == published.metadata_sha256
    assert b"Name: demo" in stored


def settle(me: Api, file: dict[str, Any], services: Services) -> dict[str, Any]:
    """Complete a file the worker verifies, run the worker, and read the file's status."""
    assert me.complete(file).status == 202
    run_worker(services)
    return dict(me.get(file["links"]["file-upload-session"]).json())


def test_a_client_that_crashed_resumes_with_the_missing_parts(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    parts = chunks(file, big_wheel)
    put_parts(me, file, {1: parts[1], 3: parts[3]})
    # A new client knows only the file upload session's URL.
    status = me.get(file["links"]["file-upload-session"]).json()
    listed = me.get(status["mechanism"]["parts_url"]).json()["parts"]
    missing = [p["number"] for p in listed if not p["uploaded"]]
    assert missing == [2]
    put_parts(me, status, {n: parts[n] for n in missing})
    assert settle(me, status, services)["status"] == "completed"


def test_a_missing_part_sends_the_file_to_error(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    parts = chunks(file, big_wheel)
    put_parts(me, file, {1: parts[1], 3: parts[3]})
    status = settle(me, file, services)
    assert status["status"] == "error"
    assert status["notices"] == ["parts: missing part(s) 2"]
    assert me.delete(file["links"]["file-upload-session"]).status == 204


def test_a_wrongly_sized_part_is_named(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    parts = chunks(file, big_wheel)
    parts[2] = parts[2][:-1]
    put_parts(me, file, parts)
    status = settle(me, file, services)
    assert status["status"] == "error"
    assert any(n.startswith("parts.2: has") for n in status["notices"])


def test_a_corrupt_part_is_caught_by_the_whole_file_hash(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    parts = chunks(file, big_wheel)
    honest = b64sha256(parts[2])
    signed = me.post(
        file["mechanism"]["parts_url"], {"meta": META, "parts": [{"number": 2, "sha256": honest}]}
    ).json()["parts"][0]
    put_parts(me, file, {1: parts[1], 3: parts[3]})
    # The embedded S3 does not check the signed checksum; real S3 would refuse this PUT.
    corrupt = bytes([parts[2][0] ^ 1]) + parts[2][1:]
    assert requests.put(signed["url"], data=corrupt, headers=signed["headers"], timeout=60).ok
    status = settle(me, file, services)
    assert status["status"] == "error"
    assert any(n.startswith("hashes.sha256") for n in status["notices"])


def test_an_oversize_declared_size_is_refused(
    me: Api, session: dict[str, Any], settings: Settings
) -> None:
    # PEP 694: "If the server determines the upload cannot proceed, it MUST return a
    # 409 Conflict"; the problem names the limit.
    reply = me.create_file(session, FILENAME, b"x", mechanism=MECHANISM, size=10**12)
    assert reply.status == 409
    assert reply.json()["errors"][0]["source"] == "size"
    assert str(settings.max_file_size) in reply.json()["detail"]


def test_post_bytes_too_large_names_the_vendor_mechanism(me: Api, session: dict[str, Any]) -> None:
    reply = me.create_file(session, FILENAME, b"x", size=2 * MIB)
    assert reply.status == 409
    assert MECHANISM in reply.json()["detail"]
    assert reply.json()["errors"][0]["source"] == "mechanism"


def test_the_most_parts_a_request_may_name_fit_its_body_limit(
    me: Api, session: dict[str, Any], big_wheel: bytes
) -> None:
    """The documented number of parts per request, with the largest part numbers and
    pretty-printed, is a body the API takes (not a 413): the file has only 3 parts, so
    the answer is a 400 naming the part numbers."""
    file = start(me, session, big_wheel)
    digest = b64sha256(b"x")
    asked = [{"number": 10_000 - i, "sha256": digest} for i in range(MAX_PARTS_PER_REQUEST)]
    body = json.dumps({"meta": META, "parts": asked}, indent=2).encode()
    reply = me.post(file["mechanism"]["parts_url"], raw=body)
    assert reply.status == 400, reply.body
    assert {e["source"] for e in reply.json()["errors"]} == {
        f"parts[{i}].number" for i in range(MAX_PARTS_PER_REQUEST)
    }
    one_more = [*asked, {"number": 1, "sha256": digest}]
    reply = me.post(file["mechanism"]["parts_url"], {"meta": META, "parts": one_more})
    assert reply.status == 400
    assert str(MAX_PARTS_PER_REQUEST) in reply.body.decode()


def test_a_job_delivered_twice_gives_the_same_result(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    put_parts(me, file, chunks(file, big_wheel))
    assert me.complete(file).status == 202
    queue = services.queue
    job = {
        "job": "verify-file",
        "session": session["links"]["session"].rsplit("/", 1)[1],
        "file": file["links"]["file-upload-session"].rsplit("/", 1)[1],
    }
    queue.send(job)  # a duplicate delivery
    assert run_worker(services) == 2
    first = me.get(file["links"]["file-upload-session"]).json()
    services.worker.handle(job)
    assert me.get(file["links"]["file-upload-session"]).json() == first
    assert first["status"] == "completed"


def test_a_job_redelivered_after_a_crash_finishes_the_work(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    # The worker assembled the upload and then died before recording the outcome.
    file = start(me, session, big_wheel)
    put_parts(me, file, chunks(file, big_wheel))
    assert me.complete(file).status == 202
    sid = session["links"]["session"].rsplit("/", 1)[1]
    fid = file["links"]["file-upload-session"].rsplit("/", 1)[1]
    record = services.store.get_file(sid, fid)
    assert record is not None and record.upload_id is not None
    services.blobs.complete_multipart(
        record.key, record.upload_id, services.blobs.stored_parts(record.key, record.upload_id)
    )
    run_worker(services)
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "completed"


def test_canceling_the_session_during_processing_discards_the_result(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services, aws: Any
) -> None:
    file = start(me, session, big_wheel)
    put_parts(me, file, chunks(file, big_wheel))
    assert me.complete(file).status == 202
    # PEP 694: a session may be canceled whatever its files' states.
    assert me.delete(session["links"]["session"]).status == 204
    run_worker(services)
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "canceled"
    bucket = services.settings.bucket_name
    assert aws[1].list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert not aws[1].list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_deleting_a_pending_file_aborts_its_upload(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services, aws: Any
) -> None:
    file = start(me, session, big_wheel)
    parts = chunks(file, big_wheel)
    put_parts(me, file, {1: parts[1]})
    assert me.delete(file["links"]["file-upload-session"]).status == 204
    assert not aws[1].list_multipart_uploads(Bucket=services.settings.bucket_name).get("Uploads")
    assert me.get(file["mechanism"]["parts_url"]).status == 409


def test_expiry_aborts_unfinished_uploads(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services, aws: Any, clock: Any
) -> None:
    start(me, session, big_wheel)
    clock.advance(3600)
    assert services.sweep.expire_due() == 1
    assert not aws[1].list_multipart_uploads(Bucket=services.settings.bucket_name).get("Uploads")


def test_parts_of_an_http_post_bytes_file_are_404(me: Api, session: dict[str, Any]) -> None:
    file = me.create_file(session, "demo-1.0.tar.gz", b"abc").json()
    assert me.get(file["links"]["file-upload-session"] + "/parts").status == 404


def test_a_small_multipart_file_completes_within_the_request(
    me: Api, session: dict[str, Any], services: Services
) -> None:
    data = wheel(
        FILENAME, members={"demo/blob.bin": os.urandom(10 * MIB)}, compression=zipfile.ZIP_STORED
    )
    file = start(me, session, data)
    assert file["mechanism"]["part_count"] == 2
    put_parts(me, file, chunks(file, data))
    done = me.complete(file)
    assert done.status == 201, done.body
    assert done.json()["status"] == "completed"
    assert run_worker(services) == 0


def lifecycle_aborts(services: Services, file: dict[str, Any]) -> None:
    """What the bucket's rule for abandoned multipart uploads does to an old one."""
    session_id, file_id = file["links"]["file-upload-session"].split("/")[-3::2]
    record = services.store.get_file(session_id, file_id)
    assert record is not None and record.upload_id is not None
    services.blobs.abort_multipart(record.key, record.upload_id)


def test_a_vanished_upload_sends_the_file_to_error_within_the_request(
    me: Api, session: dict[str, Any], services: Services, two_part_wheel: bytes
) -> None:
    data = two_part_wheel
    file = start(me, session, data)
    put_parts(me, file, chunks(file, data))
    lifecycle_aborts(services, file)
    done = me.complete(file)
    assert done.status == 400, done.body
    assert [e["source"] for e in done.json()["errors"]] == ["parts"]
    status = me.get(file["links"]["file-upload-session"]).json()
    assert status["status"] == "error"
    assert "no longer exists in storage" in status["notices"][0]


def test_a_vanished_upload_sends_the_file_to_error_in_the_worker(
    me: Api, session: dict[str, Any], big_wheel: bytes, services: Services
) -> None:
    file = start(me, session, big_wheel)
    put_parts(me, file, chunks(file, big_wheel))
    lifecycle_aborts(services, file)
    # The job succeeds (no redelivery for hours): the file settles in error.
    status = settle(me, file, services)
    assert status["status"] == "error"
    assert "no longer exists in storage" in status["notices"][0]
    assert me.delete(file["links"]["file-upload-session"]).status == 204


def test_listing_the_parts_of_a_vanished_upload_is_a_conflict_not_a_500(
    me: Api, session: dict[str, Any], services: Services, two_part_wheel: bytes
) -> None:
    file = start(me, session, two_part_wheel)
    lifecycle_aborts(services, file)
    listed = me.get(file["mechanism"]["parts_url"])
    assert listed.status == 409, listed.body
    assert listed.headers["Content-Type"] == "application/problem+json"
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "error"


# -- a file of one part is sent whole (PartPlan.whole) ------------------------------------


def test_a_one_part_file_arrives_with_its_url_signed(
    me: Api, session: dict[str, Any], services: Services
) -> None:
    """Its SHA-256 declared, a file of one part needs no signing request: the creation
    answer carries part 1's URL, a write-once PUT of the file itself with the file's
    SHA-256 signed in."""
    data = wheel(FILENAME)
    file = start(me, session, data)
    assert file["mechanism"]["part_count"] == 1
    [part] = file["mechanism"]["parts"]
    assert part["number"] == 1 and part["expires-at"]
    assert part["headers"]["x-amz-checksum-sha256"] == b64sha256(data)
    assert part["headers"]["If-None-Match"] == "*"
    listed = me.get(file["mechanism"]["parts_url"]).json()["parts"]
    assert listed == [{"number": 1, "size": len(data), "uploaded": False}]
    assert put_signed(part, data) == 200
    listed = me.get(file["mechanism"]["parts_url"]).json()["parts"]
    assert listed == [{"number": 1, "size": len(data), "uploaded": True}]
    # Sent again (an answer lost on the way back), it cannot replace what is stored.
    assert put_signed(part, data) == 412
    done = me.complete(file)
    assert (done.status, done.json()["status"]) == (201, "completed"), done.body
    # The URL outlives the upload, but never writes over the completed file.
    assert put_signed(part, b"other bytes") == 412
    assert run_worker(services) == 0


def test_a_one_part_file_without_a_declared_sha256_is_signed_on_request(
    me: Api, session: dict[str, Any]
) -> None:
    data = wheel(FILENAME)
    file = start(me, session, data, hashes={"sha512": hashlib.sha512(data).hexdigest()})
    assert "parts" not in file["mechanism"]
    signed = me.post(
        file["mechanism"]["parts_url"],
        {"meta": META, "parts": [{"number": 1, "sha256": b64sha256(data)}]},
    )
    assert signed.status == 200, signed.body
    [part] = signed.json()["parts"]
    assert put_signed(part, data) == 200
    assert me.complete(file).status == 201


def test_a_one_part_file_with_no_bytes_is_refused_at_completion(
    me: Api, session: dict[str, Any]
) -> None:
    file = start(me, session, wheel(FILENAME))
    done = me.complete(file)
    assert done.status == 400, done.body
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "error"


def test_a_one_part_url_signed_at_creation_dies_with_its_token(
    api: Api, me: Api, session: dict[str, Any]
) -> None:
    """The creator's token signed the URL: revoked before completion, the file is refused
    (PEP 694 SHOULD re-authorize), as for URLs asked for later."""
    admin = api.as_(ADMIN_TOKEN)
    ci = admin.post("/admin/users/alice/tokens", {"description": "ci"}).json()
    data = wheel(FILENAME)
    file = start(api.as_(ci["token"]), session, data)
    assert put_signed(file["mechanism"]["parts"][0], data) == 200
    assert admin.delete(f"/admin/tokens/{ci['id']}").status == 204
    done = me.complete(file)
    assert done.status == 400, done.body
    status = me.get(file["links"]["file-upload-session"]).json()
    assert any("revoked" in n for n in status["notices"])
