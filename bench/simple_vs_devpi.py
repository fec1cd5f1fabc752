"""`/simple/<name>/` of a 2,000-file project, Wharf (local stack) beside devpi (installed
into a throwaway environment from PyPI, as pypiserver is for bench/publish.py), in one
run (`make bench`).

Prints figures; asserts nothing about time. Goal (issue 13): Wharf's page below devpi's.
Both are read with the PEP 691 JSON Accept: the first read after the release of 2,000
files, ROUNDS warm reads (p50 and p99), and the first read after one more release of one
file; for Wharf also what a new Lambda container does."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.download import seed
from bench.publish import make_venv, wait_until_up, write_wheel
from chalicelib.adapters.dynamodb.store import DynamoStore
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.http.simple import SIMPLE_JSON, ProjectPages
from chalicelib.services.index import LISTINGS_PREFIX, IndexService
from devserver.harness import LocalStack, free_port, request

FILES = 2000
ROUNDS = 100
ADMIN = "bench-admin-token"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def latencies(url: str, files: int = FILES) -> tuple[float, list[float], list[float]]:
    """The first read's time, then ROUNDS warm ones (each asserts all files are listed),
    then ROUNDS revalidations with the page's ETag (If-None-Match: 304), if it has one."""
    times = []
    for _ in range(ROUNDS + 1):
        started = time.perf_counter()
        reply = request(url, headers=JSON)
        times.append(time.perf_counter() - started)
        assert reply.status == 200, reply.status
    assert reply.body.count(b'"filename"') == files
    etag = {k.lower(): v for k, v in reply.headers.items()}.get("etag")
    revalidations = []
    for _ in range(ROUNDS if etag else 0):
        started = time.perf_counter()
        reply = request(url, headers={**JSON, "If-None-Match": etag or ""})
        revalidations.append(time.perf_counter() - started)
        assert reply.status in (200, 304), reply.status
        if reply.status != 304:
            return times[0], times[1:], []
    return times[0], times[1:], revalidations


def timed_read(url: str, files: int) -> float:
    started = time.perf_counter()
    reply = request(url, headers=JSON)
    took = time.perf_counter() - started
    assert reply.status == 200 and reply.body.count(b'"filename"') == files, reply.status
    return took


@dataclass
class Figures:
    first: float  # the first read after the 2,000-file release's publish
    warm: list[float]
    not_modified: list[float]  # a 304 to a warm read's ETag; none without ETags
    # The first read after one more release of one file.
    next_publish: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def wharf() -> Figures:
    """The release of 2,000 files is published as the worker publishes a release that
    large, which then lists the project (IndexService.list_project); the stack's first
    read of it, warm reads; then a release of one more file and the first read of it
    (the stack's warm container reads only that release). And what a new Lambda
    container does: read the project listed, or after that publish (the listing older
    by one release), or with no listing at all."""
    stack = LocalStack.start(ADMIN)
    try:
        store = DynamoStore(stack.client("dynamodb"), "wharf", retention=60, max_lifetime=3600)
        blobs = S3BlobStore(stack.client("s3"), "wharf-files")
        seed(store, "wide", FILES, None)
        started = time.perf_counter()
        IndexService(store, store, blobs, stack.base).list_project("wide")  # the worker's
        listed_in = time.perf_counter() - started
        url = f"{stack.base}/simple/wide/"
        figures = Figures(*latencies(url))
        figures.extra["cold container, listed"] = cold_container(stack, store, FILES)
        seed(store, "wide", 1, None, version="2.0", first=False)
        figures.next_publish = timed_read(url, FILES + 1)
        figures.extra["cold container, listed before that release"] = cold_container(
            stack, store, FILES + 1
        )
        blobs.delete(f"{LISTINGS_PREFIX}wide.json")
        figures.extra["cold container, no listing"] = cold_container(stack, store, FILES + 1)
        figures.extra["the worker's listing of the release"] = listed_in
        return figures
    finally:
        stack.stop()


def cold_container(stack: LocalStack, store: DynamoStore, files: int) -> float:
    """What a new Lambda container does for the page, timed: the local stack has one
    container, so this one is built here, on the stack's AWS (over loopback, where the
    stack's own calls stay in its process: a little slower than the stack would be)."""
    blobs = S3BlobStore(stack.client("s3"), "wharf-files")
    index = IndexService(store, store, blobs, stack.base)
    pages = ProjectPages(64 * 10**6, index.static_page, index.private_page, 4 * 1024 * 1024)
    started = time.perf_counter()
    reply = pages.response(SIMPLE_JSON, index.project("wide"), {})
    took = time.perf_counter() - started
    assert reply.status_code == 200 and str(reply.body).count('"filename"') == files
    return took


def devpi(directory: Path) -> Figures:
    bin_dir = make_venv(directory / "devpi-venv", "devpi-server", "devpi-client", "twine")
    server_dir, client_dir = directory / "devpi-server", directory / "devpi-client"
    subprocess.run([str(bin_dir / "devpi-init"), "--serverdir", str(server_dir),
                    "--no-root-pypi"], check=True, capture_output=True)  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(bin_dir / "devpi-server"), "--serverdir", str(server_dir),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_up(f"{base}/+api", server)
        for command in (
            ["use", base],
            ["user", "-c", "bench", "password=pw"],
            ["login", "bench", "--password", "pw"],
            ["index", "-c", "dev", "bases="],
        ):
            subprocess.run([str(bin_dir / "devpi"), *command, "--clientdir", str(client_dir)],
                           check=True, capture_output=True)  # fmt: skip
        wheels = directory / "wheels"
        wheels.mkdir()
        for n in range(FILES):
            write_wheel(wheels, "wide", "1.0", f"cp3{n % 10}-none-plat{n}", 1000)
        upload = [str(bin_dir / "twine"), "upload", "--disable-progress-bar",
                  "--repository-url", f"{base}/bench/dev/", "-u", "bench", "-p", "pw"]  # fmt: skip
        subprocess.run([*upload, *sorted(map(str, wheels.iterdir()))], check=True,
                       capture_output=True)  # fmt: skip
        url = f"{base}/bench/dev/+simple/wide/"
        figures = Figures(*latencies(url))
        more = directory / "more"
        more.mkdir()
        subprocess.run([*upload, str(write_wheel(more, "wide", "2.0", "cp30-none-plat0", 1000))],
                       check=True, capture_output=True)  # fmt: skip
        figures.next_publish = timed_read(url, FILES + 1)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(name: str, figures: Figures) -> float:
    quantiles = statistics.quantiles(figures.warm, n=100)
    print(
        f"  {name:<7} first read {figures.first * 1000:7.1f} ms; warm p50 "
        f"{quantiles[49] * 1000:6.1f} ms, p99 {quantiles[98] * 1000:6.1f} ms; first read "
        f"after one more release of 1 file {(figures.next_publish or 0) * 1000:7.1f} ms"
    )
    if figures.not_modified:
        revalidated = statistics.quantiles(figures.not_modified, n=100)
        print(
            f"          304 p50 {revalidated[49] * 1000:6.1f} ms, "
            f"p99 {revalidated[98] * 1000:6.1f} ms"
        )
    else:
        print("          no 304: the page has no ETag, or If-None-Match is not answered")
    for what, took in figures.extra.items():
        print(f"          {what}: {took * 1000:7.1f} ms")
    return quantiles[49]


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        ours = wharf()
        theirs = devpi(Path(scratch))
    print(f"/simple/<name>/ with {FILES} files, JSON, {ROUNDS} warm reads each:")
    wharf_p50 = report("wharf", ours)
    devpi_p50 = report("devpi", theirs)
    print(f"  devpi/wharf p50: {devpi_p50 / wharf_p50:.2f} (goal > 1: wharf faster)")
    print(f"  devpi/wharf first read: {theirs.first / ours.first:.2f} (goal > 1)")


if __name__ == "__main__":
    main()
