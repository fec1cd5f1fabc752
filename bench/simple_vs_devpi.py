"""`/simple/<name>/` of a 2,000-file project, Wharf (local stack) beside devpi (installed
into a throwaway environment from PyPI, as pypiserver is for bench/publish.py), in one
run (`make bench`).

Prints figures; asserts nothing about time. Goal (issue 13): Wharf's page below devpi's.
Both are read warm (after a first read) with the PEP 691 JSON Accept, ROUNDS times;
p50 and p99 printed, and the first (cold) read."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.download import seed
from bench.publish import make_venv, wait_until_up, write_wheel
from chalicelib.adapters.dynamodb.store import DynamoStore
from chalicelib.adapters.s3 import S3BlobStore
from chalicelib.http.simple import SIMPLE_JSON, ProjectPages
from chalicelib.services.index import IndexService
from devserver.harness import LocalStack, free_port, request

FILES = 2000
ROUNDS = 100
ADMIN = "bench-admin-token"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def latencies(url: str) -> tuple[float, list[float]]:
    """The first read's time, then ROUNDS warm ones; each asserts all files are listed."""
    times = []
    for _ in range(ROUNDS + 1):
        started = time.perf_counter()
        reply = request(url, headers=JSON)
        times.append(time.perf_counter() - started)
        assert reply.status == 200, reply.status
    assert reply.body.count(b'"filename"') == FILES
    return times[0], times[1:]


def wharf() -> tuple[float, list[float], float]:
    """The first read, warm reads, and a cold container's first read of the same revision
    (another container listed it)."""
    stack = LocalStack.start(ADMIN)
    try:
        store = DynamoStore(stack.client("dynamodb"), "wharf", retention=60, max_lifetime=3600)
        seed(store, "wide", FILES, None)
        first, warm = latencies(f"{stack.base}/simple/wide/")
        return first, warm, cold_container(stack, store)
    finally:
        stack.stop()


def cold_container(stack: LocalStack, store: DynamoStore) -> float:
    """What a new Lambda container does for the page, timed: the local stack has one
    container, so this one is built here, on the stack's AWS (over loopback, where the
    stack's own calls stay in its process: a little slower than the stack would be)."""
    blobs = S3BlobStore(stack.client("s3"), "wharf-files")
    index = IndexService(store, store, blobs, stack.base)
    pages = ProjectPages(64 * 10**6, index.static_page, index.private_page, 4 * 1024 * 1024)
    started = time.perf_counter()
    reply = pages.response(SIMPLE_JSON, index.project("wide"), {})
    took = time.perf_counter() - started
    assert reply.status_code == 200 and str(reply.body).count('"filename"') == FILES
    return took


def devpi(directory: Path) -> tuple[float, list[float]]:
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
        subprocess.run([str(bin_dir / "twine"), "upload", "--disable-progress-bar",
                        "--repository-url", f"{base}/bench/dev/", "-u", "bench", "-p", "pw",
                        *sorted(map(str, wheels.iterdir()))],
                       check=True, capture_output=True)  # fmt: skip
        return latencies(f"{base}/bench/dev/+simple/wide/")
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(name: str, first: float, warm: list[float]) -> float:
    quantiles = statistics.quantiles(warm, n=100)
    print(
        f"  {name:<7} first read {first * 1000:7.1f} ms; warm p50 {quantiles[49] * 1000:6.1f} ms, "
        f"p99 {quantiles[98] * 1000:6.1f} ms"
    )
    return quantiles[49]


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        first, warm, cold = wharf()
        theirs = devpi(Path(scratch))
    print(f"/simple/<name>/ with {FILES} files, JSON, {ROUNDS} warm reads each:")
    wharf_p50 = report("wharf", first, warm)
    print(f"          a cold container, the revision listed: {cold * 1000:7.1f} ms (its own work)")
    devpi_p50 = report("devpi", *theirs)
    print(f"  devpi/wharf p50: {devpi_p50 / wharf_p50:.2f} (goal > 1: wharf faster)")


if __name__ == "__main__":
    main()
