"""Every error is an RFC 9457 problem; bad input is a 4xx and never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api

META = {"api-version": "2.0"}


def assert_problem(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/problem+json"
    problem: dict[str, Any] = reply.json()
    assert problem["status"] == status
    assert {"type", "title", "detail", "meta", "errors"} <= set(problem)
    assert problem["meta"] == {"api-version": "2.0"}
    return problem


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/vnd.pypi.upload.v3+json"]
)
def test_wrong_content_type_is_415(me: Api, content_type: str) -> None:
    body = {"meta": META, "name": "demo", "version": "1.0"}
    assert_problem(me.post("/upload/", body, content_type=content_type), 415)


def test_content_type_parameters_are_fine(me: Api) -> None:
    body = {"meta": META, "name": "demo", "version": "1.0"}
    reply = me.post(
        "/upload/", body, content_type="application/vnd.pypi.upload.v2+json; charset=utf-8"
    )
    assert reply.status == 201


@pytest.mark.parametrize(
    "body",
    [
        {"name": "demo", "version": "1.0"},
        {"meta": {}, "name": "demo", "version": "1.0"},
        {"meta": "2.0", "name": "demo", "version": "1.0"},
        {"meta": {"api-version": "1.0"}, "name": "demo", "version": "1.0"},
        {"meta": {"api-version": "3.0"}, "name": "demo", "version": "1.0"},
        {"meta": {"api-version": 2}, "name": "demo", "version": "1.0"},
    ],
)
def test_missing_or_mismatched_meta_is_400(me: Api, body: dict[str, Any]) -> None:
    problem = assert_problem(me.post("/upload/", body), 400)
    assert problem["errors"][0]["source"].startswith("meta")


def test_index_specific_meta_keys_are_accepted(me: Api) -> None:
    body = {"meta": {"api-version": "2.1", "_wharf": {"x": 1}}, "name": "demo", "version": "1.0"}
    assert me.post("/upload/", body).status == 201


@pytest.mark.parametrize(
    "raw",
    [
        b'{"meta": {"api-version": "2.0"}, "name": "demo"',
        b"[1, 2, 3]",
        b'"just a string"',
        b"\xff\xfe not utf-8",
        b'{"meta": {"api-version": "2.0"}, "name": NaN, "version": "1"}',
        b"[" * 100_000,
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"meta": {"api-version": "2.0"}, "name": "' + b"x" * 70_000 + b'"}',
        b'{"meta": {"api-version": "2.0"}, "name": ["demo"], "version": {"v": 1}}',
        b'{"meta": {"api-version": "2.0"}, "name": "demo", "version": "1.0", "name": 1}',
    ],
)
def test_hostile_json_is_a_4xx(me: Api, raw: bytes) -> None:
    reply = me.post("/upload/", raw=raw)
    assert 400 <= reply.status < 500, reply.body
    assert_problem(reply, reply.status)


@pytest.mark.parametrize(
    ("name", "version"), [("", "1.0"), ("-x-", "1.0"), ("demo", "not a version"), ("a/b", "1")]
)
def test_invalid_names_and_versions_are_400(me: Api, name: str, version: str) -> None:
    assert_problem(me.create_session(name, version), 400)


def test_fuzzed_file_requests_never_5xx(me: Api) -> None:
    session = me.create_session("demo", "1.0").json()
    values: list[Any] = [None, 0, -1, 1.5, True, "", "x" * 2000, [], {}, {"sha256": 5}, [1]]
    for field in ("filename", "size", "hashes", "mechanism", "meta"):
        for value in values:
            body: dict[str, Any] = {
                "meta": META,
                "filename": "demo-1.0.tar.gz",
                "size": 3,
                "hashes": {"sha256": "0" * 64},
                "mechanism": "http-post-bytes",
                field: value,
            }
            reply = me.post(session["links"]["upload"], body)
            assert reply.status < 500, (field, value, reply.body)
            if reply.status >= 400:
                assert_problem(reply, reply.status)


def test_method_not_allowed_is_a_problem(me: Api) -> None:
    problem = assert_problem(me.request("PATCH", "/upload/"), 405)
    assert problem["title"]


def test_publish_and_complete_need_the_v2_body(me: Api) -> None:
    session = me.create_session("demo", "1.0").json()
    assert_problem(me.post(session["links"]["publish"]), 400)
    assert_problem(
        me.post(session["links"]["publish"], raw=b"{}", content_type="application/json"), 415
    )
    assert me.get(session["links"]["session"]).json()["status"] == "open"


def test_problem_bodies_are_json(me: Api) -> None:
    reply = me.get("/upload/sessions/none")
    assert json.loads(reply.body)["type"].startswith("https://")


@pytest.mark.parametrize(
    "path",
    [
        "/upload/sessions/" + "a" * 5000,
        "/upload/sessions/" + "a" * 32 + "/files/" + "b" * 5000,
        "/upload/sessions/%00%ff",
    ],
)
def test_hostile_ids_in_urls_are_404(me: Api, path: str) -> None:
    assert_problem(me.get(path), 404)
    assert_problem(me.delete(path), 404)


def test_hostile_names_in_admin_urls_are_4xx(api: Api) -> None:
    from tests.conftest import ADMIN_TOKEN

    admin = api.as_(ADMIN_TOKEN)
    long = "a" * 5000
    assert admin.delete(f"/admin/tokens/{long}").status == 404
    assert admin.post(f"/admin/users/{long}/tokens", {}).status == 404
    assert admin.put(f"/admin/projects/{long}/roles/x", {"role": "owner"}).status == 400
    assert admin.delete(f"/admin/projects/demo/roles/{long}").status == 404
