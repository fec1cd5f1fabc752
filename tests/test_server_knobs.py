"""Local-stack settings that let client tests choose what the server offers and watch
the bytes: WHARF_MECHANISMS (which upload mechanisms, in what order) and
WHARF_S3_PRESIGN_ENDPOINT (presigned URLs naming a proxy in front of the embedded S3)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from chalicelib.config import Settings
from chalicelib.domain.mechanisms import HTTP_POST_BYTES, MIB, multipart_identifier
from devserver.harness import request
from tests.conftest import ADMIN_TOKEN, Api, Stack, wait_for, wheel_name
from tests.dists import dist, wheel
from tests.proxy import RecordingProxy

VENDOR = multipart_identifier("wharf")
META = {"api-version": "2.0"}
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


# -- WHARF_MECHANISMS -------------------------------------------------------------------------


def test_by_default_the_vendor_mechanism_is_preferred(session: dict[str, Any]) -> None:
    assert session["mechanisms"] == [VENDOR, HTTP_POST_BYTES]


class TestOnlyTheRequiredMechanism:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, mechanisms=(HTTP_POST_BYTES,))

    def test_sessions_advertise_only_http_post_bytes(self, session: dict[str, Any]) -> None:
        assert session["mechanisms"] == [HTTP_POST_BYTES]

    def test_the_vendor_mechanism_is_refused(self, me: Api, session: dict[str, Any]) -> None:
        name = wheel_name("demo", "1.0")
        reply = me.create_file(session, name, dist(name), mechanism=VENDOR)
        assert reply.status == 422, reply.body
        assert HTTP_POST_BYTES in reply.body.decode()

    def test_http_post_bytes_still_publishes(self, me: Api, session: dict[str, Any]) -> None:
        me.add_file(session, wheel_name("demo", "1.0"))
        assert me.publish(session).status == 201


class TestPreferenceOrder:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return dataclasses.replace(settings, mechanisms=(HTTP_POST_BYTES, VENDOR))

    def test_the_configured_order_is_advertised(self, session: dict[str, Any]) -> None:
        assert session["mechanisms"] == [HTTP_POST_BYTES, VENDOR]


def from_env(**env: str) -> Settings:
    return Settings.from_env(env)


def test_the_list_is_read_from_the_environment() -> None:
    assert from_env().offered_mechanisms == (VENDOR, HTTP_POST_BYTES)
    assert from_env(WHARF_MECHANISMS="").offered_mechanisms == (VENDOR, HTTP_POST_BYTES)
    assert from_env(WHARF_MECHANISMS="http-post-bytes").offered_mechanisms == (HTTP_POST_BYTES,)
    acme = multipart_identifier("acme")
    spaced = from_env(WHARF_OPERATOR="acme", WHARF_MECHANISMS=f" http-post-bytes , {acme} ,")
    assert spaced.offered_mechanisms == (HTTP_POST_BYTES, acme)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("http-post-bytes,ftp", "unknown mechanisms 'ftp'"),
        # The vendor mechanism is named after this operator (WHARF_OPERATOR), no other.
        (f"{multipart_identifier('acme')},http-post-bytes", "unknown mechanisms"),
        (VENDOR, "must include http-post-bytes"),
        ("http-post-bytes,http-post-bytes", "twice"),
    ],
)
def test_a_wrong_list_is_refused(value: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="WHARF_MECHANISMS") as refused:
        from_env(WHARF_MECHANISMS=value)
    assert complaint in str(refused.value)


def test_the_local_stack_refuses_to_start_with_a_wrong_list() -> None:
    with pytest.raises(RuntimeError, match="WHARF_MECHANISMS names unknown mechanisms 'ftp'"):
        Stack.start(ADMIN_TOKEN, WHARF_MECHANISMS="ftp,http-post-bytes")


# -- WHARF_S3_PRESIGN_ENDPOINT ----------------------------------------------------------------


def test_the_presign_endpoint_must_be_a_url() -> None:
    assert from_env().s3_presign_endpoint == ""
    endpoint = from_env(WHARF_S3_PRESIGN_ENDPOINT="http://127.0.0.1:9/")
    assert endpoint.s3_presign_endpoint == "http://127.0.0.1:9"
    with pytest.raises(ValueError, match="WHARF_S3_PRESIGN_ENDPOINT"):
        from_env(WHARF_S3_PRESIGN_ENDPOINT="127.0.0.1:9")


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


@pytest.fixture(scope="module")
def proxied_s3() -> Iterator[tuple[Stack, RecordingProxy]]:
    """A stack of its own whose presigned URLs name a recording proxy in front of its
    embedded S3. The proxy exists first (the stack's settings name it); it learns the S3's
    port once the stack runs."""
    with RecordingProxy() as proxy:
        running = Stack.start(ADMIN_TOKEN, WHARF_S3_PRESIGN_ENDPOINT=proxy.url)
        try:
            proxy.target = address(running.moto)
            yield running, proxy
        finally:
            assert running.stop() == 0, running.output


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def sign(me: Api, file: dict[str, Any], parts: dict[int, bytes]) -> dict[int, dict[str, Any]]:
    asked = [{"number": n, "sha256": b64sha256(d)} for n, d in parts.items()]
    signed = me.post(file["mechanism"]["parts_url"], {"meta": META, "parts": asked})
    assert signed.status == 200, signed.body
    return {p["number"]: p for p in signed.json()["parts"]}


def test_part_puts_cross_the_proxy_which_can_cut_them(
    proxied_s3: tuple[Stack, RecordingProxy],
) -> None:
    running, proxy = proxied_s3
    me = running.api(running.api(ADMIN_TOKEN).new_user("proxied"))
    session = me.create_session("via-proxy", "1.0").json()
    name = wheel_name("via-proxy", "1.0")
    data = wheel(name, members={"x/blob": os.urandom(9 * MIB)}, compression=zipfile.ZIP_STORED)
    file = me.create_file(session, name, data, mechanism=VENDOR).json()
    size = file["mechanism"]["part_size"]
    parts = {n + 1: data[n * size : (n + 1) * size] for n in range(file["mechanism"]["part_count"])}
    assert len(parts) == 2
    signed = sign(me, file, parts)
    assert all(p["url"].startswith(proxy.url + "/") for p in signed.values())

    # The first part's connection dies a megabyte in: S3 stores nothing of it.
    proxy.forget()
    proxy.cut_uploads(after_bytes=MIB, times=1)
    with pytest.raises(OSError):
        request(signed[1]["url"], "PUT", parts[1], signed[1]["headers"])
    assert proxy.uploads_cut == 1 and proxy.puts == []
    listed = me.get(file["mechanism"]["parts_url"]).json()["parts"]
    assert [p["uploaded"] for p in listed] == [False, False]

    # Sent again, and the second part, through the proxy with their checksum headers.
    for number in (1, 2):
        reply = request(signed[number]["url"], "PUT", parts[number], signed[number]["headers"])
        assert reply.status == 200, reply.body
    assert proxy.uploads_cut == 1
    assert len(proxy.puts) == 2
    assert [line.split("partNumber=")[1][0] for line in proxy.puts] == ["1", "2"]
    put_heads = [r for r in proxy.requests if r.startswith("PUT ")]
    assert all(f"\r\nHost: 127.0.0.1:{proxy.port}\r\n" in r for r in put_heads), put_heads
    assert all("\r\nx-amz-checksum-sha256: " in r for r in put_heads), put_heads

    completed = me.complete(file)
    assert completed.status in (201, 202), completed.body
    status = wait_for(me, file["links"]["file-upload-session"], "processing")
    assert status["status"] == "completed", status

    # A staged download's presigned GET names the proxy too.
    staged = me.get(session["links"]["stage"] + "via-proxy/", headers=JSON).json()["files"][0]
    redirect = request(staged["url"])
    assert redirect.status == 302
    assert redirect.headers["Location"].startswith(proxy.url + "/")
    assert request(redirect.headers["Location"]).body == data
