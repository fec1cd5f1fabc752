"""The legacy upload API (what twine and uv publish send), through chalice.test.Client."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from chalicelib.domain.ports import StoreBusy
from chalicelib.runtime import Services
from tests.conftest import ADMIN_TOKEN, Api, basic, wheel_name
from tests.dists import dist

WHEEL = wheel_name("demo", "1.0")


def form(fields: dict[str, str], filename: str | None, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    if filename is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def legacy(api: Api, token: str | None, filename: str = WHEEL, **overrides: str) -> int:
    data = dist(filename)
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "demo",
        "version": "1.0",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        **overrides,
    }
    body, content_type = form(fields, filename, data)
    headers = {"Authorization": basic(token)} if token else {}
    return api.post("/legacy/", raw=body, content_type=content_type, headers=headers).status


@pytest.fixture
def token(api: Api) -> str:
    return api.new_user("alice")


def test_a_legacy_upload_publishes_the_file(api: Api, token: str, services: Services) -> None:
    assert legacy(api, token) == 200
    assert [f.filename for f in services.store.published_files("demo")] == [WHEEL]
    page = api.get("/simple/demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.json()["files"][0]["filename"] == WHEEL
    # The uploader registered the name and owns it.
    assert api.as_(token).create_session("demo", "2.0").status == 201


def test_the_same_file_twice_is_409(api: Api, token: str) -> None:
    assert legacy(api, token) == 200
    assert legacy(api, token) == 409
    assert legacy(api, token, "demo-1.0.tar.gz") == 200


def test_legacy_uploads_are_authorized(api: Api, token: str) -> None:
    assert legacy(api, None) == 401
    assert legacy(api, token) == 200
    assert legacy(api, api.new_user("bob"), "demo-1.0.tar.gz") == 403


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"sha256_digest": "0" * 64}, 400),
        ({":action": "submit"}, 400),
        ({"version": "2.0"}, 400),
        ({"name": "-bad-"}, 400),
    ],
)
def test_bad_legacy_uploads_leave_nothing_behind(
    api: Api, token: str, services: Services, overrides: dict[str, str], status: int
) -> None:
    assert legacy(api, token, **overrides) == status
    assert services.store.published_files("demo") == []
    # The name is not left reserved, and no session for the release is left open.
    assert api.as_(token).create_session("demo", "1.0").status == 201


def stored(services: Services) -> list[str]:
    """The keys of everything stored for project demo's files."""
    return [listed.key for listed in services.blobs.listed("files/demo/")]


def test_a_refused_archive_leaves_no_bytes_behind(api: Api, token: str, services: Services) -> None:
    data = b"not a zip archive"
    fields = {":action": "file_upload", "name": "demo", "version": "1.0"}
    body, content_type = form(fields, WHEEL, data)
    reply = api.post(
        "/legacy/", raw=body, content_type=content_type, headers={"Authorization": basic(token)}
    )
    assert reply.status == 400, reply.body
    assert stored(services) == []
    assert services.store.published_files("demo") == []


def test_an_upload_refused_after_its_bytes_were_stored_leaves_them_not(
    api: Api, token: str, services: Services
) -> None:
    assert legacy(api, token) == 200
    kept = stored(services)
    assert len(kept) == 2  # the file and its metadata
    # The same file again: refused by the publish's write, after the bytes were stored.
    assert legacy(api, token) == 409
    assert stored(services) == kept


def test_bytes_stay_unless_the_write_certainly_failed(
    api: Api, token: str, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(*args: object) -> bool:
        raise StoreBusy()

    # Every attempt lost a race: nothing was written, so nothing of the file stays.
    monkeypatch.setattr(services.store, "publish_whole", busy)
    assert legacy(api, token) == 503
    assert stored(services) == []

    def lost(*args: object) -> bool:
        raise ConnectionError("the answer was lost")

    # The write may have gone through: its published file must keep its bytes.
    monkeypatch.setattr(services.store, "publish_whole", lost)
    assert legacy(api, token) == 500  # chalice's answer to an unexpected error
    assert len(stored(services)) == 2


def test_a_legacy_upload_registers_a_name_its_uploader_has_reserved(api: Api, token: str) -> None:
    """An Upload 2.0 first release of another version in progress holds the name for
    alice: her legacy upload registers it, and that session then publishes a release."""
    alice = api.as_(token)
    session = alice.create_session("demo", "2.0").json()
    alice.add_file(session, wheel_name("demo", "2.0"))
    assert legacy(api, token) == 200
    assert legacy(api, api.new_user("bob"), "demo-1.0.tar.gz") == 403
    assert alice.publish(session).status == 201


def test_an_open_upload_2_session_for_the_release_is_a_conflict(api: Api, token: str) -> None:
    api.as_(token).create_session("demo", "1.0")
    assert legacy(api, token) == 409


def test_a_legacy_upload_in_flight_does_not_block_another_file_of_the_release(
    api: Api, token: str, services: Services
) -> None:
    """A CI matrix uploads each platform's wheel with its own `twine upload`: a legacy
    upload still in progress (its own session open) must not refuse the others."""
    alice = services.access.authenticate(f"Bearer {token}")
    in_flight = services.sessions.create_session(alice, "demo", "1.0", legacy=True).session
    assert legacy(api, token) == 200
    assert legacy(api, token, "demo-1.0.tar.gz") == 200
    assert legacy(api, token) == 409  # the same file again: "already exists"
    services.sessions.cancel_session(alice, in_flight.id)
    files = {f.filename for f in services.store.published_files("demo")}
    assert files == {WHEEL, "demo-1.0.tar.gz"}


def test_a_legacy_upload_over_the_request_limit_names_wharf_upload(
    api: Api, token: str, services: Services
) -> None:
    data = b"x" * (services.settings.post_bytes_max + 64 * 1024 + 1)
    body, content_type = form(
        {":action": "file_upload", "name": "demo", "version": "1.0"}, WHEEL, data
    )
    reply = api.post(
        "/legacy/", raw=body, content_type=content_type, headers={"Authorization": basic(token)}
    )
    assert reply.status == 413
    assert "wharf upload" in reply.json()["detail"]


def test_a_legacy_form_naming_a_field_twice_is_400(api: Api, token: str) -> None:
    data = dist(WHEEL)
    fields = {":action": "file_upload", "name": "demo", "version": "1.0"}
    body, content_type = form(fields, WHEEL, data)
    boundary = content_type.rsplit("=", 1)[1]
    twice = body.replace(
        f"--{boundary}--".encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n2.0\r\n'
        f"--{boundary}--".encode(),
    )
    reply = api.post(
        "/legacy/", raw=twice, content_type=content_type, headers={"Authorization": basic(token)}
    )
    assert reply.status == 400
    assert "twice" in reply.json()["detail"]


def test_not_multipart_is_415(api: Api) -> None:
    reply = api.as_(ADMIN_TOKEN).post("/legacy/", {"name": "demo"}, content_type="application/json")
    assert reply.status == 415
