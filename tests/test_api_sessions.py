"""Publishing sessions over HTTP (chalice.test.Client): PEP 694 "Publishing Session"."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from chalicelib.adapters.memory.clock import FixedClock
from chalicelib.runtime import Services
from tests.conftest import ADMIN_TOKEN, Api, wheel_name

RFC3339_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_create_answers_201_with_location_links_and_token(api: Api, clock: FixedClock) -> None:
    me = api.as_(api.new_user("alice"))
    reply = me.create_session("Foo.Bar", "1.0")
    assert reply.status == 201
    assert reply.headers["Content-Type"] == "application/vnd.pypi.upload.v2+json"
    body = reply.json()
    assert reply.headers["Location"] == body["links"]["session"]
    assert body["meta"] == {"api-version": "2.0"}
    assert set(body["links"]) == {"session", "publish", "extend", "upload", "stage"}
    assert body["links"]["stage"].endswith(f"/stage/{body['session-token']}/")
    assert len(body["session-token"]) >= 22  # at least 128 bits, URL-safe base64
    assert body["mechanisms"][-1] == "http-post-bytes"
    assert body["status"] == "open" and body["files"] == {} and body["notices"] == []
    assert RFC3339_Z.fullmatch(body["expires-at"])
    expires = datetime.strptime(body["expires-at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert int(expires.timestamp()) == clock.now() + 3600


def test_status_reflects_the_session(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    created = me.create_session("demo", "1.0").json()
    status = me.get(created["links"]["session"])
    assert status.status == 200
    assert status.json() == created


def test_a_second_create_for_the_release_is_409_with_location(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    first = me.create_session("demo", "1.0").json()
    for version in ("1.0", "1.0.0", "1"):
        again = me.create_session("Demo", version)
        assert again.status == 409, version
        assert again.headers["Location"] == first["links"]["session"]
        assert again.headers["Content-Type"] == "application/problem+json"


def test_unauthorized_principals_get_403_without_location(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    first = alice.create_session("demo", "1.0").json()
    # The name is reserved by alice's first-release session.
    for version in ("1.0", "2.0"):
        reply = bob.create_session("demo", version)
        assert reply.status == 403
        assert "Location" not in reply.headers
    assert bob.get(first["links"]["session"]).status == 403


def test_the_creator_of_a_reserved_name_opens_other_versions(api: Api) -> None:
    # A 409's Location would send a PEP 694 client into another release's session:
    # the reservation lets its holder open other versions instead.
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    first = alice.create_session("demo", "1.0").json()
    second = alice.create_session("demo", "2.0")
    assert second.status == 201, second.body
    assert second.json()["links"]["session"] != first["links"]["session"]
    assert bob.create_session("demo", "3.0").status == 403
    # Either may publish first; the first to publish registers the name.
    alice.add_file(second.json(), "demo-2.0.tar.gz")
    assert alice.publish(second.json()).status == 201
    alice.add_file(first, "demo-1.0.tar.gz")
    assert alice.publish(first).status == 201
    page = api.get("/simple/demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.json()["versions"] == ["1.0", "2.0"]
    assert bob.create_session("demo", "3.0").status == 403  # alice owns it


def test_the_name_stays_reserved_while_any_first_release_session_lives(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    first = alice.create_session("demo", "1.0").json()
    second = alice.create_session("demo", "2.0").json()
    assert alice.delete(first["links"]["session"]).status == 204
    assert bob.create_session("demo", "3.0").status == 403
    assert alice.delete(second["links"]["session"]).status == 204
    assert bob.create_session("demo", "3.0").status == 201


def test_a_409_location_only_names_a_session_of_the_same_release(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    first = alice.create_session("demo", "1.0").json()
    other = alice.create_session("demo", "2.0").json()
    for version, session in (("1.0.0", first), ("2", other)):
        again = alice.create_session("demo", version)
        assert again.status == 409
        assert again.headers["Location"] == session["links"]["session"]


def test_a_live_first_release_session_is_shared_once_the_name_is_registered(
    api: Api,
) -> None:
    # PEP 694: sessions are not bound to the credentials that created them; a maintainer
    # of the now registered project is pointed at alice's open 2.0 session.
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    first = alice.create_session("demo", "1.0").json()
    second = alice.create_session("demo", "2.0").json()
    assert alice.publish(first).status == 201
    admin = api.as_(ADMIN_TOKEN)
    granted = admin.put(
        "/admin/projects/demo/roles/bob", {"role": "maintainer"}, content_type="application/json"
    )
    assert granted.status == 200
    assert bob.get(second["links"]["session"]).status == 200
    again = bob.create_session("demo", "2.0")
    assert again.status == 409
    assert again.headers["Location"] == second["links"]["session"]


def test_an_ended_first_release_session_is_its_creators_alone(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    first = alice.create_session("demo", "1.0").json()
    assert alice.delete(first["links"]["session"]).status == 204
    # The name is free again, but the canceled session (and its token) is alice's.
    assert bob.get(first["links"]["session"]).status == 403
    assert (
        bob.post(first["links"]["extend"], {"meta": {"api-version": "2.0"}, "extend-for": 1}).status
        == 403
    )
    assert alice.get(first["links"]["session"]).status == 200


def test_canceling_a_first_release_frees_the_name(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    first = alice.create_session("demo", "1.0").json()
    assert alice.delete(first["links"]["session"]).status == 204
    status = alice.get(first["links"]["session"])
    assert status.status == 200 and status.json()["status"] == "canceled"
    assert bob.create_session("demo", "1.0").status == 201


def test_a_new_session_after_a_terminal_one_gets_new_urls(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    first = me.create_session("demo", "1.0").json()
    me.delete(first["links"]["session"])
    second = me.create_session("demo", "1.0").json()
    assert second["links"]["session"] != first["links"]["session"]
    assert second["session-token"] != first["session-token"]
    assert second["links"]["stage"] != first["links"]["stage"]


def test_publishing_an_empty_first_release_registers_the_name(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    session = alice.create_session("demo", "0.0.0a0").json()
    published = alice.publish(session)
    assert published.status == 201
    assert published.headers["Location"] == session["links"]["session"]
    assert published.json()["status"] == "published"
    # alice owns it now; bob may not upload to it.
    assert bob.create_session("demo", "1.0").status == 403
    assert alice.create_session("demo", "1.0").status == 201
    index = api.get("/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert index.json()["projects"] == [{"name": "demo"}]


def test_reserved_names_are_not_in_the_index(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    me.create_session("secret-project", "1.0")
    index = api.get("/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert index.json()["projects"] == []
    assert b"secret-project" not in api.get("/simple/").body


def test_publish_is_refused_while_a_file_is_not_completed(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    me.add_file(session, "demo-1.0.tar.gz")
    pending = me.create_file(session, wheel_name("demo", "1.0"), b"wheel").json()
    refused = me.publish(session)
    assert refused.status == 409
    problem = refused.json()
    assert problem["errors"] == [
        {"source": "files.demo-1.0-py3-none-any.whl", "message": "status is pending"}
    ]
    assert me.get(session["links"]["session"]).json()["status"] == "open"
    assert me.delete(pending["links"]["file-upload-session"]).status == 204
    assert me.publish(session).status == 201


def test_terminal_sessions_accept_no_changes(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    assert me.publish(session).status == 201
    assert me.publish(session).status == 409
    assert me.delete(session["links"]["session"]).status == 409
    assert me.create_file(session, "demo-1.0.tar.gz", b"x").status == 409
    extend = me.post(session["links"]["extend"], {"meta": {"api-version": "2.0"}, "extend-for": 60})
    assert extend.status == 409
    assert me.get(session["links"]["session"]).json()["status"] == "published"


def test_extend_moves_expiry_later_up_to_the_maximum(api: Api, clock: FixedClock) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()

    def extend(seconds: int) -> str:
        reply = me.post(
            session["links"]["extend"], {"meta": {"api-version": "2.0"}, "extend-for": seconds}
        )
        assert reply.status == 200, reply.body
        return str(reply.json()["expires-at"])

    first = session["expires-at"]
    assert extend(600) > first
    # Max lifetime is 7200 s: a refused amount still answers 200 with the capped time.
    capped = extend(10**9)
    expected = datetime.fromtimestamp(clock.now() + 7200, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert capped == expected
    assert extend(1) == capped
    # Any non-negative amount is a valid request (PEP 694); 0 changes nothing.
    assert extend(0) == capped
    bad = me.post(session["links"]["extend"], {"meta": {"api-version": "2.0"}, "extend-for": -1})
    assert bad.status == 400


def test_expired_sessions_are_canceled_and_purged(
    api: Api, clock: FixedClock, services: Services
) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    file = me.add_file(session, "demo-1.0.tar.gz")
    key = services.store.get_session_and_files(session["links"]["session"].rsplit("/", 1)[1])[1][
        0
    ].key
    assert services.blobs.head(key) is not None
    clock.advance(3600)
    assert services.sweep.expire_due() == 1
    status = me.get(session["links"]["session"]).json()
    assert status["status"] == "canceled" and status["files"] == {}
    assert any("expired" in n for n in status["notices"])
    assert me.get(file["links"]["file-upload-session"]).json()["status"] == "canceled"
    assert services.blobs.head(key) is None
    # The release and the name are free again.
    assert api.as_(api.new_user("bob")).create_session("demo", "1.0").status == 201


def test_an_expired_session_refuses_changes_even_before_the_sweep(
    api: Api, clock: FixedClock
) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    clock.advance(3600)
    assert me.create_file(session, "demo-1.0.tar.gz", b"x").status == 409
    assert me.publish(session).status == 409
    assert me.get(session["links"]["session"]).json()["status"] == "canceled"


def test_terminal_status_is_retained_then_404(api: Api, clock: FixedClock) -> None:
    me = api.as_(api.new_user("alice"))
    session = me.create_session("demo", "1.0").json()
    me.publish(session)
    clock.advance(599)
    assert me.get(session["links"]["session"]).status == 200
    clock.advance(1)
    assert me.get(session["links"]["session"]).status == 404


def test_unknown_session_ids_are_404(api: Api) -> None:
    me = api.as_(api.new_user("alice"))
    for path in (
        "/upload/sessions/0123456789abcdef0123456789abcdef",
        "/upload/sessions/..%2f..",
        "/upload/sessions/x/files/y",
    ):
        assert me.get(path).status == 404, path
    assert me.delete("/upload/sessions/nope").status == 404
    assert me.post("/upload/sessions/nope/publish", {"meta": {"api-version": "2.0"}}).status == 404


def test_the_admin_token_may_publish_anything(api: Api) -> None:
    admin = api.as_(ADMIN_TOKEN)
    session = admin.create_session("demo", "1.0").json()
    admin.add_file(session, "demo-1.0.tar.gz")
    assert admin.publish(session).status == 201


def test_an_expired_session_does_not_block_a_new_one(api: Api, clock: FixedClock) -> None:
    # No sweep ran: the create itself finds the expired session and cancels it.
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    old = alice.create_session("demo", "1.0").json()
    clock.advance(3600)
    assert bob.create_session("demo", "2.0").status == 201
    assert alice.get(old["links"]["session"]).status == 403  # bob holds the name now
    alice.publish(alice.create_session("mine", "0.1").json())
    first = alice.create_session("mine", "1.0").json()
    clock.advance(3600)
    again = alice.create_session("mine", "1.0")
    assert again.status == 201
    assert again.json()["links"]["session"] != first["links"]["session"]
