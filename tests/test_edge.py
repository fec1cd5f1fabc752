"""What stands between the internet and the API in AWS: the CloudFront function that
guards every viewer request (run here with node, as CloudFront runs its JavaScript), the
origin-verify header that keeps the execute-api endpoint from answering around the
distribution, and the secrets only the API function reads."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from chalice.test import Client
from moto import mock_aws

from chalicelib import runtime
from chalicelib.config import Settings
from chalicelib.http.parsing import ORIGIN_VERIFY_HEADER
from tests.conftest import REGION

ROOT = Path(__file__).resolve().parent.parent
# Lambda refuses a synchronous event over 6 MB; a binary body travels base64-encoded in
# it, beside the headers and the request context.
LAMBDA_EVENT_LIMIT = 6 * 1024 * 1024
EVENT_OVERHEAD = 64 * 1024
LEGACY_FORM_OVERHEAD = 16 * 1024  # twine's metadata fields around the file


@pytest.fixture(scope="module")
def guard_code() -> str:
    template = cfn_yaml.load(str(ROOT / "infra" / "template.yaml"))
    code: str = template["Resources"]["EdgeGuard"]["Properties"]["FunctionCode"]
    return code


def guard_limit(code: str) -> int:
    """The largest API request body the guard lets through."""
    found = re.search(r"MAX_API_BODY = (\d+);", code)
    assert found is not None
    return int(found.group(1))


def run_guard(code: str, uri: str, headers: dict[str, str]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the edge guard's JavaScript cannot run here")
    event = {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "198.51.100.7"},
        "request": {
            "method": "POST",
            "uri": uri,
            "querystring": {},
            "headers": {k: {"value": v} for k, v in headers.items()},
            "cookies": {},
        },
    }
    script = code + "\nconsole.log(JSON.stringify(handler(" + json.dumps(event) + ")));\n"
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_guard_refuses_tls_older_than_1_2(guard_code: str) -> None:
    for version in ("TLSv1", "TLSv1.1", "SSLv3"):
        reply = run_guard(
            guard_code, "/simple/", {"cloudfront-viewer-tls": f"{version}:AES128-SHA:full"}
        )
        assert reply["statusCode"] == 403, version
        assert reply["headers"]["content-type"]["value"] == "application/problem+json"
        problem = json.loads(reply["body"]["data"])
        assert problem["status"] == 403 and version in problem["detail"]
    for version in ("TLSv1.2", "TLSv1.3"):
        passed = run_guard(
            guard_code, "/files/x", {"cloudfront-viewer-tls": f"{version}:TLS_AES:full"}
        )
        assert passed["uri"] == "/files/x", version


def test_the_guard_refuses_bodies_the_api_cannot_take_naming_the_way_for_large_files(
    guard_code: str,
) -> None:
    limit = guard_limit(guard_code)
    for uri in ("/legacy/", "/upload/sessions/s/files/f/content"):
        reply = run_guard(guard_code, uri, {"content-length": str(limit + 1)})
        assert reply["statusCode"] == 413, uri
        problem = json.loads(reply["body"]["data"])
        assert "vnd-wharf-s3multipart-presigned-v1" in problem["detail"]
        assert run_guard(guard_code, uri, {"content-length": str(limit)})["uri"] == uri
    # Downloads and index pages have no body limit.
    assert run_guard(guard_code, "/files/x", {"content-length": str(limit * 2)})["uri"]


def test_the_guards_limit_lies_between_what_the_app_takes_and_what_lambda_can(
    guard_code: str,
) -> None:
    limit = guard_limit(guard_code)
    template = cfn_yaml.load(str(ROOT / "infra" / "template.yaml"))
    env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    post_bytes_max = int(env["WHARF_POST_BYTES_MAX"])
    # A file the API accepts always passes the edge, with its form around it ...
    assert limit >= post_bytes_max + LEGACY_FORM_OVERHEAD
    # ... and a body the edge lets through always fits Lambda's event.
    assert len(base64.b64encode(b"x" * limit)) + EVENT_OVERHEAD <= LAMBDA_EVENT_LIMIT


# -- the origin-verify header ----------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, origin_verify="from-cloudfront")


@pytest.fixture
def client(services: runtime.Services) -> Iterator[Client]:
    from app import app

    with Client(app) as test_client:
        yield test_client


def test_a_request_that_bypassed_the_distribution_is_refused(client: Client) -> None:
    for headers in ({}, {ORIGIN_VERIFY_HEADER: "guess"}, {ORIGIN_VERIFY_HEADER: "é"}):
        reply = client.http.get("/simple/", headers=headers)
        assert reply.status_code == 403, headers
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert json.loads(reply.body)["status"] == 403


def test_a_request_through_the_distribution_is_served(client: Client) -> None:
    reply = client.http.get("/simple/", headers={ORIGIN_VERIFY_HEADER: "from-cloudfront"})
    assert reply.status_code == 200


# -- secrets, read once per cold start, by the API only --------------------------------------


def test_the_api_reads_its_secrets_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name=REGION)
        admin = secrets.create_secret(Name="admin", SecretString="admin-token")["ARN"]
        origin = secrets.create_secret(Name="origin", SecretString="origin-value")["ARN"]
        base = Settings(public_url="https://x", admin_token="", table_name="t", bucket_name="b")
        assert runtime.with_secrets(base) == base  # the worker and sweeper: nothing read
        monkeypatch.setenv("WHARF_ADMIN_TOKEN_SECRET", admin)
        monkeypatch.setenv("WHARF_ORIGIN_VERIFY_SECRET", origin)
        loaded = runtime.with_secrets(base)
    assert (loaded.admin_token, loaded.origin_verify) == ("admin-token", "origin-value")
