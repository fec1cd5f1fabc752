"""Authentication and per-request authorization, and the operator API."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.tokens import ApiToken, secret_hash
from tests.conftest import ADMIN_TOKEN, Api, basic


def test_missing_or_invalid_credentials_are_401_with_www_authenticate(api: Api) -> None:
    body = {"meta": {"api-version": "2.0"}, "name": "demo", "version": "1.0"}
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer wharf_" + "0" * 32 + "_guess"},
        {"Authorization": basic("nope")},
        {"Authorization": "Digest whatever"},
    ):
        reply = api.post("/upload/", body, headers=headers)
        assert reply.status == 401, headers
        assert "Basic" in reply.headers["WWW-Authenticate"]
        assert reply.headers["Content-Type"] == "application/problem+json"


def test_basic_with_dunder_token_and_bearer_both_work(api: Api) -> None:
    token = api.new_user("alice")
    body = {"meta": {"api-version": "2.0"}, "name": "demo", "version": "1.0"}
    assert api.post("/upload/", body, headers={"Authorization": basic(token)}).status == 201
    assert api.as_(token).create_session("demo", "1.0.0").status == 409  # 1.0's session


def test_revoking_a_token_takes_effect_on_the_next_request(api: Api) -> None:
    admin = api.as_(ADMIN_TOKEN)
    admin.post("/admin/users", {"username": "alice"}, content_type="application/json")
    issued = admin.post("/admin/users/alice/tokens", {"description": "ci"}).json()
    me = api.as_(issued["token"])
    session = me.create_session("demo", "1.0").json()
    assert admin.delete(f"/admin/tokens/{issued['id']}").status == 204
    assert me.get(session["links"]["session"]).status == 401
    assert admin.delete(f"/admin/tokens/{issued['id']}").status == 404


def test_role_changes_apply_per_request_and_are_not_sticky(api: Api) -> None:
    alice = api.as_(api.new_user("alice"))
    bob = api.as_(api.new_user("bob"))
    admin = api.as_(ADMIN_TOKEN)
    alice.publish(alice.create_session("demo", "0.1").json())
    assert bob.create_session("demo", "1.0").status == 403
    assert admin.put("/admin/projects/Demo/roles/bob", {"role": "maintainer"}).status == 200
    session = bob.create_session("demo", "1.0").json()
    # Any authorized principal may work on the session, not only its creator.
    assert alice.get(session["links"]["session"]).status == 200
    assert admin.delete("/admin/projects/demo/roles/bob").status == 204
    assert bob.get(session["links"]["session"]).status == 403
    assert bob.create_file(session, "demo-1.0.tar.gz", b"x").status == 403
    assert admin.put("/admin/projects/demo/roles/bob", {"role": "owner"}).status == 200
    assert bob.create_file(session, "demo-1.0.tar.gz", b"x").status == 202
    assert admin.delete("/admin/projects/demo/roles/alice").status == 204
    assert alice.publish(session).status == 403
    assert bob.publish(session).status == 409  # the file is still pending


def test_scoped_tokens_reach_only_their_projects(api: Api) -> None:
    scoped = api.as_(api.new_user("alice", projects=["Demo"]))
    assert scoped.create_session("demo", "1.0").status == 201
    assert scoped.create_session("other", "1.0").status == 403


def test_the_admin_api_needs_the_admin_token(api: Api) -> None:
    user = api.as_(api.new_user("alice"))
    assert user.post("/admin/users", {"username": "bob"}).status == 403
    assert api.post("/admin/users", {"username": "bob"}).status == 401


def test_admin_api_validation(api: Api) -> None:
    admin = api.as_(ADMIN_TOKEN)
    assert admin.post("/admin/users", {"username": "alice"}).status == 201
    assert admin.post("/admin/users", {"username": "alice"}).status == 409
    assert admin.post("/admin/users", {"username": "bad name"}).status == 400
    assert admin.post("/admin/users", {"username": 5}).status == 400
    assert admin.post("/admin/users/ghost/tokens", {}).status == 404
    assert admin.post("/admin/users/alice/tokens", {"projects": ["-bad-"]}).status == 400
    assert admin.put("/admin/projects/demo/roles/alice", {"role": "god"}).status == 400
    assert admin.put("/admin/projects/demo/roles/ghost", {"role": "owner"}).status == 404
    assert admin.delete("/admin/projects/demo/roles/alice").status == 404
    issued = admin.post("/admin/users/alice/tokens", {"description": "d", "projects": ["A_B"]})
    assert issued.status == 201
    assert issued.json()["projects"] == ["a-b"]
    assert issued.json()["token"].startswith("wharf_")


def test_tokens_are_stored_only_as_hashes(api: Api, aws: tuple[Any, Any, Any]) -> None:
    token = api.new_user("alice")
    items = aws[0].scan(TableName="wharf-test")["Items"]
    parsed = ApiToken.parse(token)
    assert parsed is not None
    assert token not in str(items)
    assert parsed.secret not in str(items)
    assert secret_hash(parsed.secret) in str(items)


def test_the_operator_lists_users_their_tokens_and_roles(api: Api) -> None:
    admin = api.as_(ADMIN_TOKEN)
    alice = api.as_(api.new_user("alice"))
    api.new_user("bob")
    alice.publish(alice.create_session("demo", "0.1").json())  # alice becomes its owner
    assert admin.put("/admin/projects/demo/roles/bob", {"role": "maintainer"}).status == 200
    scoped = admin.post("/admin/users/alice/tokens", {"description": "ci", "projects": ["demo"]})

    users = admin.get("/admin/users").json()["users"]
    assert [u["username"] for u in users] == ["alice", "bob"]
    assert all(u["created-at"].endswith("Z") for u in users)
    shown = admin.get("/admin/users/alice").json()
    assert shown["username"] == "alice"
    assert sorted(t["description"] for t in shown["tokens"]) == ["ci", "test"]
    assert {"id": scoped.json()["id"], "projects": ["demo"]}.items() <= next(
        t for t in shown["tokens"] if t["description"] == "ci"
    ).items()
    assert scoped.json()["token"] not in str(shown)
    fields = {"id", "username", "description", "projects", "created-at"}
    assert all(set(t) == fields for t in shown["tokens"])  # no secret, no hash
    assert shown["roles"] == [{"project": "demo", "role": "owner"}]
    roles = admin.get("/admin/projects/Demo/roles").json()
    assert roles == {
        "project": "demo",
        "roles": [
            {"username": "alice", "role": "owner"},
            {"username": "bob", "role": "maintainer"},
        ],
    }
    # A revoked token and a revoked role leave the listings too.
    assert admin.delete(f"/admin/tokens/{scoped.json()['id']}").status == 204
    assert admin.delete("/admin/projects/demo/roles/bob").status == 204
    assert len(admin.get("/admin/users/alice").json()["tokens"]) == 1
    assert admin.get("/admin/projects/demo/roles").json()["roles"] == [
        {"username": "alice", "role": "owner"}
    ]


def test_deleting_a_user_revokes_everything_it_held(api: Api) -> None:
    admin = api.as_(ADMIN_TOKEN)
    alice = api.as_(api.new_user("alice"))
    session = alice.create_session("demo", "0.1").json()
    alice.publish(session)
    assert admin.delete("/admin/users/alice").status == 204
    assert alice.get(session["links"]["session"]).status == 401
    assert admin.get("/admin/users/alice").status == 404
    assert admin.get("/admin/users").json()["users"] == []
    assert admin.get("/admin/projects/demo/roles").json()["roles"] == []
    assert admin.delete("/admin/users/alice").status == 404
    # The name can be created again, with nothing of the old user attached.
    assert admin.post("/admin/users", {"username": "alice"}).status == 201
    assert admin.get("/admin/users/alice").json()["roles"] == []


def test_the_listings_need_the_admin_token_and_valid_names(api: Api) -> None:
    user = api.as_(api.new_user("alice"))
    admin = api.as_(ADMIN_TOKEN)
    for path in ("/admin/users", "/admin/users/alice", "/admin/projects/demo/roles"):
        assert user.get(path).status == 403
        assert api.get(path).status == 401
    assert user.delete("/admin/users/alice").status == 403
    assert admin.get("/admin/users/bad%20name").status == 404
    assert admin.get("/admin/projects/-bad-/roles").status == 400
