"""What the simple API says about verified files, through the HTTP API (issue 10): pages
render whatever secure hashes a file was verified with, and an sdist's core metadata is
advertised only when installers may trust it in place of the sdist."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from chalicelib.http.simple import SIMPLE_JSON, fragment_hash
from chalicelib.runtime import Services
from tests.conftest import PUBLIC_URL, Api, wheel_name
from tests.dists import dist, metadata, sdist, wheel

JSON = {"Accept": SIMPLE_JSON}


def upload(me: Api, session: dict[str, Any], filename: str, data: bytes, **hashes: str) -> None:
    """Create, upload and complete a file declaring exactly `hashes`."""
    created = me.create_file(session, filename, data, hashes=hashes)
    assert created.status == 202, created.body
    file = created.json()
    assert me.upload(file, data).status == 204
    completed = me.complete(file)
    assert completed.status == 201, completed.body


def anchor(page: str, filename: str) -> tuple[str, str]:
    found = re.search(rf'<a href="([^"]+)"([^>]*)>{re.escape(filename)}</a>', page)
    assert found is not None, page
    return found.group(1), found.group(2)


def stage_path(session: dict[str, Any]) -> str:
    return str(session["links"]["stage"]).removeprefix(PUBLIC_URL)


# -- 5. files verified with another secure hash than sha256 ----------------------------------


def test_a_sha512_only_file_renders_on_every_page(api: Api, me: Api) -> None:
    old_sdist, old_data = "demo-1.0.tar.gz", dist("demo-1.0.tar.gz")
    old_sha512 = hashlib.sha512(old_data).hexdigest()
    first = me.create_session("demo", "1.0").json()
    upload(me, first, old_sdist, old_data, sha512=old_sha512)
    assert me.publish(first).status == 201
    # A second release, staged: its stage page shows both.
    new_wheel = wheel_name("demo", "2.0")
    new_data = dist(new_wheel)
    new_sha512 = hashlib.sha512(new_data).hexdigest()
    second = me.create_session("demo", "2.0").json()
    upload(me, second, new_wheel, new_data, sha512=new_sha512)

    pages = {
        "/simple/demo/": {old_sdist: old_sha512},
        f"{stage_path(second)}demo/": {old_sdist: old_sha512, new_wheel: new_sha512},
    }
    for path, expected in pages.items():
        html = api.get(path)
        assert html.status == 200, (path, html.body)
        page = html.body.decode()
        for filename, digest in expected.items():
            href, _ = anchor(page, filename)
            assert href.endswith(f"/{filename}#sha512={digest}"), href
        listed = api.get(path, headers=JSON)
        assert listed.status == 200, (path, listed.body)
        files = {f["filename"]: f for f in listed.json()["files"]}
        assert {name: f["hashes"] for name, f in files.items()} == {
            name: {"sha512": digest} for name, digest in expected.items()
        }


def test_every_verified_hash_is_listed_and_sha256_is_the_fragment(api: Api, me: Api) -> None:
    filename, data = "demo-1.0.tar.gz", dist("demo-1.0.tar.gz")
    hashes = {
        "sha512": hashlib.sha512(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "blake2b": hashlib.blake2b(data).hexdigest(),
    }
    session = me.create_session("demo", "1.0").json()
    upload(me, session, filename, data, **hashes)
    assert me.publish(session).status == 201
    (entry,) = api.get("/simple/demo/", headers=JSON).json()["files"]
    assert entry["hashes"] == dict(sorted(hashes.items()))
    href, _ = anchor(api.get("/simple/demo/").body.decode(), filename)
    assert href.endswith(f"#sha256={hashes['sha256']}")


@pytest.mark.parametrize(
    ("hashes", "chosen"),
    [
        ({"sha256": "a", "sha512": "b"}, ("sha256", "a")),
        ({"sha3_256": "c", "sha512": "b", "sha384": "d"}, ("sha512", "b")),
        ({"sha3_512": "e", "blake2b": "f"}, ("blake2b", "f")),
        ({"md5": "g", "sha224": "h"}, ("sha224", "h")),
        ({"md5": "g", "sha1": "i"}, None),
    ],
)
def test_the_fragment_hash_is_secure_and_chosen_in_a_fixed_order(
    hashes: dict[str, str], chosen: tuple[str, str] | None
) -> None:
    assert fragment_hash(hashes) == chosen


# -- 4. sdist core metadata is advertised only when static ----------------------------------


@pytest.mark.parametrize(
    ("metadata_version", "extra", "advertised"),
    [
        ("2.1", "", False),
        ("2.4", "Dynamic: Requires-Dist", False),
        ("2.2", "", True),
        ("2.4", "Requires-Dist: packaging", True),
    ],
)
def test_sdist_metadata_is_advertised_only_when_static(
    api: Api, me: Api, services: Services, metadata_version: str, extra: str, advertised: bool
) -> None:
    filename = "demo-1.0.tar.gz"
    meta = metadata("demo", "1.0", metadata_version=metadata_version, extra=extra)
    data = sdist(filename, meta=meta)
    session = me.create_session("demo", "1.0").json()
    upload(me, session, filename, data, sha256=hashlib.sha256(data).hexdigest())
    (staged,) = api.get(f"{stage_path(session)}demo/", headers=JSON).json()["files"]
    assert ("core-metadata" in staged) is advertised
    assert me.publish(session).status == 201
    (entry,) = api.get("/simple/demo/", headers=JSON).json()["files"]
    assert ("core-metadata" in entry) is advertised
    assert ("dist-info-metadata" in entry) is advertised
    assert entry["requires-python"] == ">=3.9"  # from PKG-INFO either way
    _, attributes = anchor(api.get("/simple/demo/").body.decode(), filename)
    assert ("data-core-metadata" in attributes) is advertised
    assert 'data-requires-python="&gt;=3.9"' in attributes
    if advertised:
        (published,) = services.store.published_files("demo")
        stored = b"".join(services.blobs.stream(published.key + ".metadata"))
        assert entry["core-metadata"] == {"sha256": hashlib.sha256(stored).hexdigest()}


def test_wheel_metadata_is_advertised_whatever_its_version(api: Api, me: Api) -> None:
    filename = wheel_name("demo", "1.0")
    data = wheel(filename, meta=metadata("demo", "1.0", metadata_version="2.1"))
    session = me.create_session("demo", "1.0").json()
    upload(me, session, filename, data, sha256=hashlib.sha256(data).hexdigest())
    stage = api.get(f"{stage_path(session)}demo/", headers=JSON).json()["files"]
    assert "core-metadata" in stage[0]
    assert me.publish(session).status == 201
    (entry,) = api.get("/simple/demo/", headers=JSON).json()["files"]
    assert set(entry["core-metadata"]) == {"sha256"}
