"""The download side end to end over real HTTP: /files/ as CloudFront serves it, the simple
API read while a release publishes, and real pip and uv installing from the local stack."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.harness import free_port, request
from tests.conftest import ADMIN_TOKEN, Api, Stack, clean_env, wait_for, wheel_name
from tests.dists import dist, wheel
from tests.proxy import RecordingProxy

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def publish(api: Api, name: str, version: str, files: dict[str, bytes]) -> dict[str, Any]:
    session = api.create_session(name, version).json()
    for filename, data in files.items():
        api.add_file(session, filename, data)
    reply = api.publish(session)
    assert reply.status in (201, 202), reply.body
    if reply.status == 202:
        assert wait_for(api, session["links"]["session"], "processing")["status"] == "published"
    return dict(session)


def file_entry(stack: Stack, project: str, filename: str) -> dict[str, Any]:
    page = stack.api().get(f"/simple/{project}/", headers=JSON).json()
    return next(f for f in page["files"] if f["filename"] == filename)


@pytest.fixture(scope="module")
def served(stack: Stack, users: dict[str, str]) -> tuple[dict[str, Any], bytes]:
    name = wheel_name("served", "1.0")
    data = wheel(name, members={"served/blob": os.urandom(300_000)}, compression=zipfile.ZIP_STORED)
    publish(stack.api(users["alice"]), "served", "1.0", {name: data})
    return file_entry(stack, "served", name), data


def get(url: str, **headers: str) -> Any:
    return request(url, "GET", b"", headers)


def test_files_are_served_whole_with_stable_validators(
    served: tuple[dict[str, Any], bytes],
) -> None:
    entry, data = served
    reply = get(entry["url"])
    assert reply.status == 200 and reply.body == data
    headers = {k.lower(): v for k, v in reply.headers.items()}
    assert int(headers["content-length"]) == len(data)
    assert headers["accept-ranges"] == "bytes"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["etag"].startswith('"') and "last-modified" in headers
    assert "content-encoding" not in headers
    assert get(entry["url"]).headers["ETag"] == headers["etag"]
    head = request(entry["url"], "HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) == len(data)


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, None),
        ("bytes=-5", None, None),
        ("bytes=10-10", 10, 10),
    ],
)
def test_ranges_are_206_with_exact_content_range(
    served: tuple[dict[str, Any], bytes], spec: str, first: int | None, last: int | None
) -> None:
    entry, data = served
    size = len(data)
    if first is None:
        first, last = size - 5, size - 1
    elif last is None:
        last = size - 1
    reply = get(entry["url"], Range=spec)
    assert reply.status == 206
    assert reply.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert reply.body == data[first : last + 1]
    assert int(reply.headers["Content-Length"]) == last - first + 1


def test_a_range_past_the_end_is_416(served: tuple[dict[str, Any], bytes]) -> None:
    entry, data = served
    reply = get(entry["url"], Range=f"bytes={len(data)}-")
    assert reply.status == 416
    assert reply.headers["Content-Range"] == f"bytes */{len(data)}"


def test_if_range_and_if_none_match(served: tuple[dict[str, Any], bytes]) -> None:
    entry, data = served
    whole = get(entry["url"])
    etag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    assert get(entry["url"], Range="bytes=5-", **{"If-Range": etag}).status == 206
    assert get(entry["url"], Range="bytes=5-", **{"If-Range": modified}).status == 206
    stale = get(entry["url"], Range="bytes=5-", **{"If-Range": '"other"'})
    assert stale.status == 200 and stale.body == data
    cached = get(entry["url"], **{"If-None-Match": etag})
    assert cached.status == 304 and cached.body == b""


def test_the_metadata_file_matches_its_hash(served: tuple[dict[str, Any], bytes]) -> None:
    entry, _ = served
    metadata = get(entry["url"] + ".metadata")
    assert metadata.status == 200
    assert hashlib.sha256(metadata.body).hexdigest() == entry["core-metadata"]["sha256"]


def test_staged_files_are_not_served_publicly(stack: Stack, users: dict[str, str]) -> None:
    me = stack.api(users["alice"])
    session = me.create_session("unpublished", "1.0").json()
    me.add_file(session, "unpublished-1.0.tar.gz")
    staged = me.get(session["links"]["stage"] + "unpublished/", headers=JSON).json()["files"][0]
    download = get(staged["url"])
    assert download.status == 302
    key_url = download.headers["Location"].split("?")[0]
    key = key_url.split("/wharf-files/", 1)[1]
    assert key.startswith("files/")
    assert get(f"{stack.base}/{key}").status == 404
    assert get(download.headers["Location"]).status == 200


def test_readers_of_the_simple_api_see_all_of_a_release_or_none(
    stack: Stack, users: dict[str, str]
) -> None:
    me = stack.api(users["alice"])
    publish(me, "forty", "0.1", {})
    session = me.create_session("forty", "1.0").json()
    names = [wheel_name("forty", "1.0", f"cp3{i // 10}-none-plat{i}") for i in range(40)]
    for name in names:
        me.add_file(session, name)
    seen: list[int] = []
    done = threading.Event()
    reader = stack.api()

    def poll() -> None:
        while not done.is_set():
            files = reader.get("/simple/forty/", headers=JSON).json()["files"]
            seen.append(sum(1 for f in files if "-1.0-" in f["filename"]))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        assert me.publish(session).status == 201
    finally:
        done.set()
        thread.join()
    seen.append(len(reader.get("/simple/forty/", headers=JSON).json()["files"]))
    assert set(seen) <= {0, 40}, sorted(set(seen))
    assert seen[-1] == 40


# -- real installers -----------------------------------------------------------------------


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args, "--no-cache-dir", "--no-deps"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )


def python_says(venv: Path, code: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_pip_installs_from_the_index_and_from_a_stage(
    stack: Stack, users: dict[str, str], venv: Path
) -> None:
    me = stack.api(users["alice"])
    session = me.create_session("pipdemo", "1.0").json()
    name = wheel_name("pipdemo", "1.0")
    me.add_file(session, name)
    # Staged: not installable from the index, installable from the stage.
    refused = pip(venv, "install", "--index-url", f"{stack.base}/simple/", "pipdemo==1.0")
    assert refused.returncode != 0
    staged = pip(venv, "install", "--index-url", session["links"]["stage"], "pipdemo==1.0")
    assert staged.returncode == 0, staged.stderr
    assert python_says(venv, "import pipdemo; print(pipdemo.VERSION)") == "1.0"
    pip(venv, "uninstall", "--yes", "pipdemo")
    assert me.publish(session).status == 201
    installed = pip(venv, "install", "--index-url", f"{stack.base}/simple/", "pipdemo==1.0")
    assert installed.returncode == 0, installed.stderr
    assert python_says(venv, "import pipdemo; print(pipdemo.VERSION)") == "1.0"
    pip(venv, "uninstall", "--yes", "pipdemo")


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Stack, RecordingProxy, Api]]:
    """A stack of its own whose public URL is a recording proxy in front of it, so that
    every request an installer makes, downloads included, crosses the proxy."""
    stack_port = free_port()
    with RecordingProxy(("127.0.0.1", stack_port)) as proxy:
        public = f"http://127.0.0.1:{proxy.port}"
        running = Stack.start(ADMIN_TOKEN, WHARF_PORT=str(stack_port), WHARF_PUBLIC_URL=public)
        try:
            yield running, proxy, running.api(running.api(ADMIN_TOKEN).new_user("proxied"))
        finally:
            assert running.stop() == 0


def test_pip_resumes_a_download_cut_mid_file(
    proxied: tuple[Stack, RecordingProxy, Api], venv: Path
) -> None:
    running, proxy, me = proxied
    name = wheel_name("resumable", "1.0")
    blob = os.urandom(3 * 1024 * 1024)
    data = wheel(name, members={"resumable/blob": blob}, compression=zipfile.ZIP_STORED)
    publish(me, "resumable", "1.0", {name: data})
    proxy.forget()
    proxy.cut_next_download_after(1024 * 1024)
    result = pip(venv, "install", "--index-url", f"{running.public}/simple/", "resumable==1.0")
    assert result.returncode == 0, result.stderr
    assert proxy.was_cut
    downloads = [r for r in proxy.requests if r.startswith("GET /files/")]
    assert any("\r\nRange: bytes=" in r for r in downloads), downloads
    assert "HTTP/1.1 206 Partial Content" in proxy.statuses
    pip(venv, "uninstall", "--yes", "resumable")


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "uv"
    return subprocess.run(
        [str(binary), *args, "--no-cache"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
    )


def test_uv_installs_and_resolves_from_pep_658_metadata(
    proxied: tuple[Stack, RecordingProxy, Api], tmp_path: Path
) -> None:
    running, proxy, me = proxied
    name = wheel_name("uvdemo", "1.0")
    publish(me, "uvdemo", "1.0", {name: dist(name)})
    index = f"{running.public}/simple/"
    proxy.forget()
    # Resolution alone reads the PEP 658 metadata file, never the wheel.
    (tmp_path / "in.txt").write_text("uvdemo==1.0\n")
    compiled = uv("pip", "compile", "in.txt", "--index-url", index, cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert "uvdemo==1.0" in compiled.stdout
    fetched = [r.split(" ")[1] for r in proxy.requests if r.startswith("GET /files/")]
    assert fetched and all(path.endswith(".whl.metadata") for path in fetched), fetched
    target = tmp_path / "env"
    assert uv("venv", str(target), "--python", sys.executable, cwd=tmp_path).returncode == 0
    installed = uv(
        "pip",
        "install",
        "--python",
        str(target / "bin" / "python"),
        "--index-url",
        index,
        "uvdemo==1.0",
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr
    assert python_says(target, "import uvdemo; print(uvdemo.VERSION)") == "1.0"


@pytest.fixture(scope="module")
def small_pages() -> Iterator[tuple[Stack, Api]]:
    """A stack whose project pages above 100 bytes are served from storage, as pages
    above Lambda's 6 MB answer are in AWS (WHARF_PAGE_INLINE_MAX)."""
    running = Stack.start(ADMIN_TOKEN, WHARF_PAGE_INLINE_MAX="100")
    try:
        yield running, running.api(running.api(ADMIN_TOKEN).new_user("bigpages"))
    finally:
        running.stop()


def pip_and_uv_install(index: str, project: str, venv: Path, tmp_path: Path) -> None:
    """pip installs `project` 1.0 from `index` (and it imports), and uv resolves it."""
    installed = pip(venv, "install", "--index-url", index, f"{project}==1.0")
    assert installed.returncode == 0, installed.stderr
    assert python_says(venv, f"import {project}; print({project}.VERSION)") == "1.0"
    pip(venv, "uninstall", "--yes", project)
    (tmp_path / "in.txt").write_text(f"{project}==1.0\n")
    compiled = uv("pip", "compile", "in.txt", "--index-url", index, cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert f"{project}==1.0" in compiled.stdout


def test_pip_and_uv_install_from_a_page_served_from_storage(
    small_pages: tuple[Stack, Api], venv: Path, tmp_path: Path
) -> None:
    running, me = small_pages
    name = wheel_name("bigpage", "1.0")
    publish(me, "bigpage", "1.0", {name: dist(name)})
    answer = running.api().get("/simple/bigpage/", headers=JSON)
    assert answer.status == 302
    location = answer.headers["Location"]
    assert location.startswith(f"{running.public}/files/_pages/bigpage/")
    page = request(location, headers=JSON)
    assert page.status == 200 and page.headers["Content-Type"] == JSON["Accept"]
    # Cached by installers as the page would be: the next publish makes another one.
    assert page.headers["Cache-Control"] == "public, max-age=60"
    pip_and_uv_install(f"{running.public}/simple/", "bigpage", venv, tmp_path)


def test_pip_and_uv_install_from_a_stage_page_served_from_storage(
    small_pages: tuple[Stack, Api], venv: Path, tmp_path: Path
) -> None:
    """A stage's page too large for the API's answer: a 302 to a short-lived URL of
    storage, which pip and uv follow like a staged file's."""
    _, me = small_pages
    session = me.create_session("bigstage", "1.0").json()
    name = wheel_name("bigstage", "1.0")
    me.add_file(session, name)
    stage = session["links"]["stage"]
    answer = me.get(stage + "bigstage/", headers=JSON)
    assert answer.status == 302 and "X-Amz-Signature=" in answer.headers["Location"]
    pip_and_uv_install(stage, "bigstage", venv, tmp_path)
