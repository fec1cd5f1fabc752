"""Publish benchmark (`make bench`): the `wharf` client (client/, PEP 694 Upload 2.0)
against the local stack, and twine (the legacy upload API) against pypiserver and against
a null sink (a server that reads each upload and throws it away: what sending the bytes
alone costs), for the same files: a 30-wheel, 150 MiB release and one 1 GiB wheel. And
twine to Wharf's own legacy API (files up to 4 MiB) beside pypiserver: 30 wheels of 1 MiB.

Each tool runs as a user runs it, from a virtualenv of its own (created here, thrown away
after), on files on disk. Measured: wall time from start to exit (the release published),
and the process's peak RSS (the kernel's ru_maxrss, exact, from os.wait4) against its
idle size (the peak of `<tool> --version`: interpreter and imports, no work).

Prints figures; asserts nothing. Goals: `wharf upload` publishes faster than twine to
pypiserver and within 2x of twine to the null sink; the client stays under 100 MiB above
idle for the 1 GiB file.

BENCH_PUBLISH_SCALE (default 1) scales every file size, e.g. 0.05 for a quick check."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from base64 import urlsafe_b64encode
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devserver.harness import ROOT, LocalStack, free_port, request

MIB = 1024 * 1024
SCALE = float(os.environ.get("BENCH_PUBLISH_SCALE", "1"))
RELEASE_FILES = 30
RELEASE_FILE_SIZE = max(64 * 1024, int(5 * MIB * SCALE))
BIG_FILE_SIZE = max(64 * 1024, int(1024 * MIB * SCALE))
BIG_LABEL = f"{BIG_FILE_SIZE / MIB:.0f} MiB file"
# The legacy API takes files up to 4 MiB (API Gateway): twine's release for it.
LEGACY_FILE_SIZE = max(64 * 1024, int(1 * MIB * SCALE))
ADMIN = "bench-admin-token"
# Real releases of this size are a wheel per interpreter and platform.
PYTHONS = ("cp310", "cp311", "cp312", "cp313", "cp314")
PLATFORMS = (
    "manylinux_2_17_x86_64",
    "manylinux_2_17_aarch64",
    "musllinux_1_2_x86_64",
    "macosx_10_9_x86_64",
    "macosx_11_0_arm64",
    "win_amd64",
)
# Stored members' headers and the dist-info files: what a wheel adds to its payload.
WHEEL_OVERHEAD = 4096


def _record_hash(digest: bytes) -> str:
    return "sha256=" + urlsafe_b64encode(digest).rstrip(b"=").decode()


def write_wheel(directory: Path, name: str, version: str, tag: str, size: int) -> Path:
    """A valid wheel of about `size` bytes (RECORD and all) whose payload is random,
    incompressible bytes, streamed to disk a MiB at a time."""
    path = directory / f"{name}-{version}-{tag}.whl"
    info = f"{name}-{version}.dist-info"
    records: list[str] = []
    stamp = (2020, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        blob = f"{name}/blob.bin"
        digest = hashlib.sha256()
        remaining = max(1, size - WHEEL_OVERHEAD)
        total = remaining
        with archive.open(zipfile.ZipInfo(blob, date_time=stamp), "w") as out:
            while remaining:
                chunk = os.urandom(min(MIB, remaining))
                digest.update(chunk)
                out.write(chunk)
                remaining -= len(chunk)
        records.append(f"{blob},{_record_hash(digest.digest())},{total}")
        small = {
            f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
            f"{info}/METADATA": (
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                "Requires-Python: >=3.10\n"
            ).encode(),
            f"{info}/WHEEL": (
                f"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: false\nTag: {tag}\n"
            ).encode(),
        }
        for member, data in small.items():
            archive.writestr(zipfile.ZipInfo(member, date_time=stamp), data)
            records.append(f"{member},{_record_hash(hashlib.sha256(data).digest())},{len(data)}")
        records.append(f"{info}/RECORD,,")
        archive.writestr(
            zipfile.ZipInfo(f"{info}/RECORD", date_time=stamp), "\n".join(records) + "\n"
        )
    return path


def build_dists(directory: Path) -> tuple[list[Path], Path, list[Path]]:
    """The release, the big file, and the smaller release for the legacy API."""
    release = directory / "release"
    big = directory / "big"
    small = directory / "small"
    for folder in (release, big, small):
        folder.mkdir()
    tags = [f"{py}-{py}-{platform}" for py in PYTHONS for platform in PLATFORMS]
    files = [
        write_wheel(release, "benchpub", "1.0", tag, RELEASE_FILE_SIZE)
        for tag in tags[:RELEASE_FILES]
    ]
    legacy = [
        write_wheel(small, "benchlegacy", "1.0", tag, LEGACY_FILE_SIZE)
        for tag in tags[:RELEASE_FILES]
    ]
    return files, write_wheel(big, "benchbig", "1.0", "py3-none-any", BIG_FILE_SIZE), legacy


@dataclass
class Run:
    seconds: float
    peak_kib: int
    returncode: int
    output: str


def run(command: list[str], log: Path, env: dict[str, str] | None = None) -> Run:
    """Run `command` to its exit: wall time, its peak RSS (ru_maxrss: KiB on Linux) and
    its output. os.wait4 reaps the process itself, so the peak is the kernel's, not a
    sample's."""
    # Whatever earlier steps wrote (the 1 GiB file, virtual environments, the previous
    # run's server state) reaches the disk first, so that neither tool is timed while
    # the kernel writes back another's pages.
    os.sync()
    with log.open("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped above, not by Popen
        out.seek(0)
        return Run(seconds, usage.ru_maxrss, process.returncode, out.read())


def make_venv(path: Path, *packages: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *packages],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return path / "bin"


def client_venv(directory: Path) -> Path:
    # Built from a copy: building in client/ itself would write into another's work tree.
    source = directory / "client-src"
    shutil.copytree(
        ROOT / "client",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*cache"),
    )
    return make_venv(directory / "client-venv", str(source))


def user_token(stack: LocalStack) -> str:
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    created = request(stack.base + "/admin/users", "POST", b'{"username": "bench"}', headers)
    assert created.status == 201, created.body
    issued = request(stack.base + "/admin/users/bench/tokens", "POST", b"{}", headers)
    assert issued.status == 201, issued.body
    return str(json.loads(issued.body)["token"])


def wharf_files(stack: LocalStack, project: str) -> int:
    reply = request(
        f"{stack.base}/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    return len(json.loads(reply.body)["files"]) if reply.status == 200 else 0


def pypiserver_files(base: str, project: str) -> int:
    reply = request(f"{base}/simple/{project}/")
    return reply.body.count(b"<a ") if reply.status == 200 else 0


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # a bound on start-up, not a measure of it
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if request(url).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Results:
    idle_kib: int
    release: Run
    big: Run
    release_files: int
    big_files: int
    legacy: Run | None = None  # twine's smaller release to the legacy API
    legacy_files: int = 0


def measure(
    tool: str,
    command: list[str],
    env: dict[str, str],
    directory: Path,
    release: list[Path],
    big: Path,
    idle: Run,
    listed: Callable[[str], int],
) -> Results:
    """`command` run on the release, then on the big file; what the index lists after."""
    release_run = run([*command, *map(str, release)], directory / f"{tool}-release.log", env)
    big_run = run([*command, str(big)], directory / f"{tool}-big.log", env)
    return Results(idle.peak_kib, release_run, big_run, listed("benchpub"), listed("benchbig"))


def bench_wharf(directory: Path, release: list[Path], big: Path, small: list[Path]) -> Results:
    bin_dir = client_venv(directory)
    wharf = str(bin_dir / "wharf")
    idle = run([wharf, "--version"], directory / "wharf-idle.log")
    stack = LocalStack.start(ADMIN, WHARF_MAX_FILE_SIZE=str(2 * max(BIG_FILE_SIZE, MIB)))
    try:
        token = user_token(stack)
        tuning = [
            flag
            for name, option in (
                ("BENCH_PARALLEL_FILES", "--parallel-files"),
                ("BENCH_PARALLEL_PARTS", "--parallel-parts"),
            )
            if (value := os.environ.get(name))
            for flag in (option, value)
        ]
        base = [wharf, "upload", "--repository-url", f"{stack.base}/upload/", "--token", token]
        command = [*base, "--quiet", *tuning]
        # No credentials of the person running the bench: only what is given above.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "AWS_"))}
        listed = functools.partial(wharf_files, stack)
        results = measure("wharf", command, env, directory, release, big, idle, listed)
        twine = twine_command(f"{stack.base}/legacy", "__token__", token)
        results = with_legacy(results, twine, small, directory / "wharf-legacy.log")
        return dataclasses.replace(results, legacy_files=listed("benchlegacy"))
    finally:
        stack.stop()


def bench_twine(directory: Path, release: list[Path], big: Path, small: list[Path]) -> Results:
    bin_dir = make_venv(directory / "pypiserver-venv", "pypiserver")
    packages = directory / "pypiserver-packages"
    packages.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    idle = run([twine_command(base)[0], "--version"], directory / "twine-idle.log")
    server = subprocess.Popen(
        [
            str(bin_dir / "pypi-server"),
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            # No authentication at all (pypiserver's documented way), no PyPI fallback.
            "-a",
            ".",
            "-P",
            ".",
            "--disable-fallback",
            str(packages),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(base + "/", server)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
        listed = functools.partial(pypiserver_files, base)
        results = measure("twine", twine_command(base), env, directory, release, big, idle, listed)
        results = with_legacy(results, twine_command(base), small, directory / "twine-legacy.log")
        return dataclasses.replace(results, legacy_files=listed("benchlegacy"))
    finally:
        server.terminate()
        server.wait(timeout=30)


def twine_command(base: str, username: str = "bench", password: str = "bench") -> list[str]:
    twine = str(Path(sys.executable).parent / "twine")
    return [
        twine,
        "upload",
        "--repository-url",
        base + "/",
        "--username",
        username,
        "--password",
        password,
        "--non-interactive",
        "--disable-progress-bar",
    ]


def with_legacy(results: Results, command: list[str], small: list[Path], log: Path) -> Results:
    """`results` with twine's run of the smaller release through `command`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    outcome = run([*command, *map(str, small)], log, env)
    return dataclasses.replace(results, legacy=outcome)


@dataclass
class NullSink:
    """Uploads received per project name (the form's `name` field)."""

    received: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                remaining = int(self.headers.get("Content-Length", "0"))
                head = b""
                while remaining:
                    chunk = self.rfile.read(min(MIB, remaining))
                    if not chunk:
                        break
                    head = head or chunk  # twine sends the form fields before the file
                    remaining -= len(chunk)
                marker = b'name="name"\r\n\r\n'
                if marker in head:
                    name = head.split(marker, 1)[1].split(b"\r\n", 1)[0].decode()
                    with sink.lock:
                        sink.received[name] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def null_sink() -> Iterator[tuple[str, NullSink]]:
    sink = NullSink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), sink.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def bench_null_sink(directory: Path, release: list[Path], big: Path) -> Results:
    """twine's own cost: the same uploads to a server that only reads them."""
    idle = run([twine_command("")[0], "--version"], directory / "null-idle.log")
    with null_sink() as (base, sink):
        listed = sink.received.__getitem__
        return measure(
            "null", twine_command(base), dict(os.environ), directory, release, big, idle, listed
        )


def report(title: str, results: Results) -> None:
    idle = results.idle_kib / 1024
    print(f"{title}: idle {idle:.0f} MiB")
    for label, outcome, files in (
        ("release", results.release, results.release_files),
        (BIG_LABEL, results.big, results.big_files),
    ):
        peak = outcome.peak_kib / 1024
        state = "ok" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
        print(
            f"  {label:<13} {outcome.seconds:8.2f} s  peak {peak:5.0f} MiB "
            f"(+{peak - idle:.0f} over idle)  {files} file(s) listed after  {state}"
        )
        if outcome.returncode != 0:
            print("    " + "\n    ".join(outcome.output.strip().splitlines()[-15:]))


def main() -> int:
    if not (ROOT / "client" / "pyproject.toml").exists():
        print("client/ has no pyproject.toml yet: nothing to benchmark", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="wharf-bench-publish-") as temporary:
        directory = Path(temporary)
        release, big, small = build_dists(directory)
        wharf = bench_wharf(directory, release, big, small)
        twine = bench_twine(directory, release, big, small)
        null = bench_null_sink(directory, release, big)

    release_mib = RELEASE_FILES * RELEASE_FILE_SIZE / MIB
    print(
        f"release: {RELEASE_FILES} wheels of {RELEASE_FILE_SIZE / MIB:.2f} MiB "
        f"({release_mib:.0f} MiB); big file: {BIG_FILE_SIZE / MIB:.0f} MiB; "
        f"scale {SCALE:g}"
    )
    report("wharf upload -> local stack (Upload 2.0)", wharf)
    report("twine upload -> pypiserver (legacy API)", twine)
    report("twine upload -> null sink (reads and discards)", null)
    # Issue 13's goals are the release's; the big file's ratios are printed beside them.
    for label, ours, theirs, sink, goals in (
        ("release", wharf.release, twine.release, null.release, True),
        (BIG_LABEL, wharf.big, twine.big, null.big, False),
    ):
        print(
            f"{label}: twine/wharf time {theirs.seconds / ours.seconds:.2f}x "
            f"{'(goal > 1: wharf faster)' if goals else '(> 1: wharf faster)'}; "
            f"wharf/null-sink time {ours.seconds / sink.seconds:.2f}x "
            + (
                "(goal < 2: within twice what sending the bytes costs)"
                if goals
                else "(no goal: the local stack's moto copies the object on completion)"
            )
        )
    for title, results in (("Wharf /legacy/", wharf), ("pypiserver", twine)):
        outcome = results.legacy
        assert outcome is not None
        state = "ok" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
        print(
            f"twine upload of {RELEASE_FILES} wheels of {LEGACY_FILE_SIZE / MIB:.2f} MiB -> "
            f"{title}: {outcome.seconds:.2f} s, {results.legacy_files} file(s) listed after  "
            f"{state}"
        )
    assert wharf.legacy is not None and twine.legacy is not None
    print(
        f"legacy API: pypiserver/wharf time {twine.legacy.seconds / wharf.legacy.seconds:.2f}x "
        "(> 1: wharf faster)"
    )
    growth = (wharf.big.peak_kib - wharf.idle_kib) / 1024
    print(f"wharf client memory over idle, {BIG_LABEL}: {growth:.0f} MiB (goal < 100)")
    runs = [wharf.release, wharf.big, twine.release, twine.big, null.release, null.big]
    runs += [r for r in (wharf.legacy, twine.legacy) if r is not None]
    failed = [r for r in runs if r.returncode]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
