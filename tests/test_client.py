"""`wharf upload` end to end: the client installed with `pip install ./client` into a
virtual environment of its own and run as a subprocess against the local stack, with real
files on disk; what it publishes is then installed by pip."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devserver.harness import ROOT, free_port
from tests.conftest import ADMIN_TOKEN, Stack, clean_env, wheel_name
from tests.dists import dist, metadata, wheel
from tests.proxy import RecordingProxy
from tests.test_downloads import pip

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
MIB = 1024 * 1024


@pytest.fixture(scope="session")
def wharf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `wharf` command, from `pip install ./client` in a fresh environment."""
    env_dir = tmp_path_factory.mktemp("client") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT / "client")],
        check=True,
        env=clean_env(),
    )
    yield env_dir / "bin" / "wharf"


def run(wharf: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env(HOME=os.environ.get("HOME", "/tmp"))
    env.pop("WHARF_TOKEN", None)
    if token is not None:
        env["WHARF_TOKEN"] = token
    return subprocess.run([str(wharf), *args], capture_output=True, text=True, env=env, timeout=600)


def write(directory: Path, files: dict[str, bytes]) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return [str(directory / name) for name in files]


def published(stack: Stack, project: str) -> dict[str, dict[str, object]]:
    page = stack.api().get(f"/simple/{project}/", headers=JSON).json()
    return {f["filename"]: f for f in page["files"]}


def big_wheel(name: str, version: str, tag: str, size: int) -> tuple[str, bytes]:
    filename = wheel_name(name, version, tag)
    payload = {f"{name}/blob.bin": os.urandom(size)}
    return filename, wheel(filename, members=payload, compression=zipfile.ZIP_STORED)


def test_a_release_of_several_files_is_published_and_installable(
    stack: Stack, users: dict[str, str], wharf: Path, tmp_path: Path, venv: Path
) -> None:
    # One file larger than three parts of the vendor mechanism (8 MiB each).
    large, large_bytes = big_wheel("clientdemo", "1.0", "py3-none-any", 26 * MIB)
    files = {large: large_bytes, "clientdemo-1.0.tar.gz": dist("clientdemo-1.0.tar.gz")}
    paths = write(tmp_path / "dist", files)
    done = run(
        wharf, "upload", "--repository-url", f"{stack.base}/upload/", *paths, token=users["alice"]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Published clientdemo 1.0 (2 files)." in done.stdout
    assert users["alice"] not in done.stdout + done.stderr  # never printed
    listed = published(stack, "clientdemo")
    assert set(listed) == set(files)
    installed = pip(venv, "install", "--index-url", f"{stack.base}/simple/", "clientdemo==1.0")
    assert installed.returncode == 0, installed.stdout + installed.stderr


def test_stage_then_publish(
    stack: Stack, users: dict[str, str], wharf: Path, tmp_path: Path, venv: Path
) -> None:
    name = wheel_name("stagedemo", "1.0")
    paths = write(tmp_path / "dist", {name: dist(name)})
    staged = run(
        wharf,
        "upload",
        "--stage",
        "--repository-url",
        f"{stack.base}/upload/",
        *paths,
        token=users["alice"],
    )
    assert staged.returncode == 0, staged.stdout + staged.stderr
    command = re.search(r"pip install --index-url (\S+) stagedemo==1\.0", staged.stdout)
    publish = re.search(r"wharf publish (\S+)", staged.stdout)
    assert command and publish, staged.stdout
    assert stack.api().get("/simple/stagedemo/", headers=JSON).status == 404  # not yet
    tried = pip(venv, "install", "--index-url", command.group(1), "stagedemo==1.0")
    assert tried.returncode == 0, tried.stdout + tried.stderr
    status = run(wharf, "status", publish.group(1), token=users["alice"])
    assert status.returncode == 0 and f"{name}: completed" in status.stdout, status.stdout
    done = run(wharf, "publish", publish.group(1), token=users["alice"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(published(stack, "stagedemo")) == {name}


def test_the_client_publishes_its_own_wheel(
    stack: Stack, users: dict[str, str], wharf: Path, tmp_path: Path, venv: Path
) -> None:
    built = tmp_path / "built"
    subprocess.run(
        [
            str(wharf.parent / "python"),
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(built),
            str(ROOT / "client"),
        ],
        check=True,
        env=clean_env(),
    )
    (own,) = built.glob("wharf_client-*.whl")
    done = run(
        wharf, "upload", "--repository-url", f"{stack.base}/upload/", str(own), token=users["alice"]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert own.name in published(stack, "wharf-client")
    installed = pip(
        venv,
        "download",
        "--index-url",
        f"{stack.base}/simple/",
        "--dest",
        str(tmp_path / "got"),
        "wharf-client",
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr


def test_bad_input_gets_a_clear_message_and_its_own_exit_code(
    stack: Stack, users: dict[str, str], wharf: Path, tmp_path: Path
) -> None:
    url = f"{stack.base}/upload/"
    # Not a distribution: refused before anything is sent (usage: 2).
    notes = tmp_path / "NOTES.txt"
    notes.write_text("hello")
    refused = run(wharf, "upload", "--repository-url", url, str(notes), token=users["alice"])
    assert refused.returncode == 2 and "NOTES.txt" in refused.stderr, refused.stderr
    # A wheel whose metadata names another version than its filename: the server's
    # verification refuses it (3), saying why.
    name = wheel_name("badmeta", "1.0")
    lying = wheel(name, meta=metadata("badmeta", "2.0"))
    (path,) = write(tmp_path / "dist", {name: lying})
    refused = run(wharf, "upload", "--repository-url", url, path, token=users["alice"])
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "2.0" in refused.stderr
    # A wrong token (3), and no token at all (2).
    good = write(tmp_path / "ok", {"okdemo-1.0.tar.gz": dist("okdemo-1.0.tar.gz")})
    wrong = run(wharf, "upload", "--repository-url", url, *good, token="wharf_nope")
    assert wrong.returncode == 3 and "401" in wrong.stderr, wrong.stderr
    assert "wharf_nope" not in wrong.stdout + wrong.stderr
    missing = run(wharf, "upload", "--repository-url", url, *good)
    assert missing.returncode == 2 and "token" in missing.stderr
    # An unreachable server (4).
    nowhere = f"http://127.0.0.1:{free_port()}/upload/"
    down = run(wharf, "upload", "--repository-url", nowhere, *good, token=users["alice"])
    assert down.returncode == 4 and "connect" in down.stderr, down.stderr


def test_a_server_offering_only_http_post_bytes(wharf: Path, tmp_path: Path) -> None:
    """A generic PEP 694 server may offer only the required mechanism: the client uses it.
    This one also verifies every file and publishes every release later (202 and
    `processing`): the client waits them out, following Retry-After."""
    stack = Stack.start(
        ADMIN_TOKEN,
        WHARF_MECHANISMS="http-post-bytes",
        WHARF_INLINE_MAX="1",
        WHARF_INLINE_PUBLISH_MAX_FILES="1",
    )
    try:
        token = stack.api(ADMIN_TOKEN).new_user("carol")
        files = {n: dist(n) for n in ("plaindemo-1.0.tar.gz", wheel_name("plaindemo", "1.0"))}
        paths = write(tmp_path / "dist", files)
        done = run(
            wharf, "upload", "--repository-url", f"{stack.base}/upload/", *paths, token=token
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert set(published(stack, "plaindemo")) == set(files)
    finally:
        assert stack.stop() == 0, stack.output


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Stack, RecordingProxy, str]]:
    """A local stack whose presigned part URLs name a proxy in front of its S3: what
    reaches storage is counted there, and connections can be cut."""
    with RecordingProxy() as proxy:
        stack = Stack.start(ADMIN_TOKEN, WHARF_S3_PRESIGN_ENDPOINT=proxy.url)
        try:
            moto = urlsplit(stack.moto)
            proxy.target = (moto.hostname or "127.0.0.1", moto.port or 80)
            yield stack, proxy, stack.api(ADMIN_TOKEN).new_user("dave")
        finally:
            assert stack.stop() == 0, stack.output


def part_number(request_line: str) -> int:
    found = re.search(r"[?&]partNumber=(\d+)", request_line)
    assert found, request_line
    return int(found.group(1))


def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(6000):  # a bound on waiting (30 s), not a measure of speed
        if condition():
            return
        time.sleep(0.005)


def stored_parts(stack: Stack, token: str, project: str, version: str, filename: str) -> set[int]:
    """The parts storage holds for the file's pending upload, as the server lists them."""
    me = stack.api(token)
    live = me.create_session(project, version)
    assert live.status == 409, live.body
    session = me.get(live.headers["Location"]).json()
    file = me.get(session["files"][filename]["link"]).json()
    parts = me.get(file["mechanism"]["parts_url"]).json()["parts"]
    return {p["number"] for p in parts if p["uploaded"]}


def test_killed_mid_file_a_rerun_sends_only_the_missing_parts(
    proxied: tuple[Stack, RecordingProxy, str], wharf: Path, tmp_path: Path
) -> None:
    stack, proxy, token = proxied
    large, data = big_wheel("killdemo", "1.0", "py3-none-any", 36 * MIB)  # 5 parts
    paths = write(tmp_path / "dist", {large: data})
    command = [
        "upload",
        "--plain",
        "--parallel-parts",
        "1",
        "--repository-url",
        f"{stack.base}/upload/",
        *paths,
    ]
    proxy.forget()
    env = clean_env(WHARF_TOKEN=token)
    client = subprocess.Popen(
        [str(wharf), *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: len(proxy.puts) >= 2)
        # Hold the next parts back (cut, retried by the client) so the kill lands mid-file.
        proxy.cut_uploads(after_bytes=MIB, times=10_000)
        wait_until(lambda: proxy.uploads_cut > 0)
    finally:
        client.send_signal(signal.SIGKILL)
        client.wait()
    proxy.cut_uploads(after_bytes=MIB, times=0)
    stored = stored_parts(stack, token, "killdemo", "1.0", large)
    assert 2 <= len(stored) < 5, stored
    before = len(proxy.puts)
    done = run(wharf, *command, token=token)
    assert done.returncode == 0, done.stdout + done.stderr
    resent = {part_number(line) for line in proxy.puts[before:]}
    assert resent == set(range(1, 6)) - stored
    assert published(stack, "killdemo")[large]["hashes"] == {
        "sha256": hashlib.sha256(data).hexdigest()
    }


def test_connections_cut_during_parts_are_retried(
    proxied: tuple[Stack, RecordingProxy, str], wharf: Path, tmp_path: Path
) -> None:
    stack, proxy, token = proxied
    large, data = big_wheel("cutdemo", "1.0", "py3-none-any", 20 * MIB)  # 3 parts
    paths = write(tmp_path / "dist", {large: data})
    cuts_before = proxy.uploads_cut
    proxy.cut_uploads(after_bytes=2 * MIB, times=3)
    done = run(
        wharf, "upload", "--plain", "--repository-url", f"{stack.base}/upload/", *paths, token=token
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert proxy.uploads_cut - cuts_before == 3
    listed = published(stack, "cutdemo")[large]
    assert listed["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
    downloaded = stack.api().get(str(listed["url"]))
    assert hashlib.sha256(downloaded.body).hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_rerun_skips_files_completed_with_the_same_bytes(
    stack: Stack, users: dict[str, str], wharf: Path, tmp_path: Path
) -> None:
    names = [wheel_name("rerundemo", "1.0"), "rerundemo-1.0.tar.gz"]
    paths = write(tmp_path / "dist", {n: dist(n) for n in names})
    url = f"{stack.base}/upload/"
    staged = run(
        wharf, "upload", "--stage", "--plain", "--repository-url", url, *paths, token=users["alice"]
    )
    assert staged.returncode == 0, staged.stdout + staged.stderr
    # The same command without --stage joins the session and publishes what is there.
    done = run(wharf, "upload", "--plain", "--repository-url", url, *paths, token=users["alice"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "continuing the session in progress" in done.stdout
    assert done.stdout.count("already uploaded, skipped") == 2, done.stdout
    assert set(published(stack, "rerundemo")) == set(names)
