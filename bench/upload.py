"""Upload benchmark (`make bench`): a 1 GiB wheel through the vendor mechanism with 4
parallel parts against the local stack, the same bytes with boto3's own multipart upload
to the same embedded S3, and memory: the worker's (a process of its own) while it
verifies the file, and apart from it the local stack process's, which holds the edge,
the API (neither handles a file's bytes on this path: parts go straight to storage) and
the embedded AWS, which holds an object in memory to complete it and for each GET (moto's
share; objects at rest are in temporary files).

Prints figures; asserts nothing about time. Goals (issues 3 and 13): the mechanism
reaches at least 0.9 of boto3's throughput; Wharf's own code stays under 100 MiB above
its idle size. BENCH_UPLOAD_MIB sets the file's size (default 1024)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from boto3.s3.transfer import TransferConfig

from devserver.harness import ROOT, LocalStack, request

MIB = 1024 * 1024
SIZE = int(os.environ.get("BENCH_UPLOAD_MIB", "1024")) * MIB
PARALLEL = 4
ADMIN = "bench-admin-token"
MECHANISM = "vnd-wharf-s3multipart-presigned-v1"
V2 = "application/vnd.pypi.upload.v2+json"


def make_wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("bench/blob.bin", os.urandom(SIZE - 4096))
        info = "bench-1.0.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: bench\nVersion: 1.0\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return buffer.getvalue()


def api(stack: LocalStack, method: str, url: str, token: str, body: object = None) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": V2}
    reply = request(
        url if url.startswith("http") else stack.base + url,
        method,
        json.dumps(body).encode() if body is not None else b"",
        headers,
    )
    assert reply.status < 300, reply.body
    return json.loads(reply.body) if reply.body else {}


def process_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of a process, from the kernel."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def main() -> int:
    data = make_wheel()
    stack = LocalStack.start(ADMIN, WHARF_LOCAL_WORKER="0", WHARF_MAX_FILE_SIZE=str(2 * SIZE))
    stack_idle = process_kib(stack.process.pid, "VmRSS")
    try:
        headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        request(stack.base + "/admin/users", "POST", b'{"username": "bench"}', headers)
        token = json.loads(
            request(stack.base + "/admin/users/bench/tokens", "POST", b"{}", headers).body
        )["token"]
        session = api(
            stack,
            "POST",
            "/upload/",
            token,
            {"meta": {"api-version": "2.0"}, "name": "bench", "version": "1.0"},
        )

        started = time.perf_counter()
        file = api(
            stack,
            "POST",
            session["links"]["upload"],
            token,
            {
                "meta": {"api-version": "2.0"},
                "filename": "bench-1.0-py3-none-any.whl",
                "size": len(data),
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "mechanism": MECHANISM,
            },
        )
        size, count = file["mechanism"]["part_size"], file["mechanism"]["part_count"]
        parts = {n + 1: memoryview(data)[n * size : (n + 1) * size] for n in range(count)}
        asked = [
            {"number": n, "sha256": base64.b64encode(hashlib.sha256(p).digest()).decode()}
            for n, p in parts.items()
        ]
        signed = api(
            stack,
            "POST",
            file["mechanism"]["parts_url"],
            token,
            {"meta": {"api-version": "2.0"}, "parts": asked},
        )["parts"]

        def put(part: dict[str, Any]) -> int:
            return request(part["url"], "PUT", bytes(parts[part["number"]]), part["headers"]).status

        with ThreadPoolExecutor(PARALLEL) as pool:
            assert set(pool.map(put, signed)) == {200}
        mechanism_seconds = time.perf_counter() - started

        s3 = stack.client("s3")
        with tempfile.NamedTemporaryFile() as spool:
            spool.write(data)
            spool.flush()
            config = TransferConfig(
                multipart_threshold=size, multipart_chunksize=size, max_concurrency=PARALLEL
            )
            started = time.perf_counter()
            s3.upload_file(spool.name, "wharf-files", "bench/direct.bin", Config=config)
            boto3_seconds = time.perf_counter() - started

        complete = request(
            file["links"]["complete"],
            "POST",
            b'{"meta": {"api-version": "2.0"}}',
            {"Authorization": f"Bearer {token}", "Content-Type": V2},
        )
        assert complete.status == 202, complete.body
        sqs = stack.client("sqs")
        queue_url = sqs.get_queue_url(QueueName="wharf-jobs")["QueueUrl"]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WHARF_"))},
            "AWS_ENDPOINT_URL": stack.moto,
            "AWS_ACCESS_KEY_ID": "wharf-local",
            "AWS_SECRET_ACCESS_KEY": "wharf-local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "WHARF_QUEUE_URL": queue_url,
            "WHARF_PUBLIC_URL": stack.base,
        }
        probe = subprocess.run(
            [sys.executable, "-m", "bench.worker_probe", "1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        memory = json.loads(probe.stdout.strip().splitlines()[-1])
        status = api(stack, "GET", file["links"]["file-upload-session"], token)["status"]
        stack_peak = process_kib(stack.process.pid, "VmHWM")
    finally:
        stack.stop()

    mib = len(data) / MIB
    mechanism_rate, boto3_rate = mib / mechanism_seconds, mib / boto3_seconds
    growth = (memory["peak_kib"] - memory["idle_kib"]) / 1024
    print(f"file: {mib:.0f} MiB in {count} parts of {size // MIB} MiB, {PARALLEL} in parallel")
    print(
        f"vendor mechanism:   {mechanism_rate:8.1f} MiB/s ({mechanism_seconds:.2f} s, signing too)"
    )
    print(f"boto3 upload_file:  {boto3_rate:8.1f} MiB/s ({boto3_seconds:.2f} s)")
    print(f"ratio mechanism/boto3: {mechanism_rate / boto3_rate:.2f} (goal >= 0.9)")
    print(
        f"worker memory: idle {memory['idle_kib'] / 1024:.0f} MiB, peak while verifying "
        f"{memory['peak_kib'] / 1024:.0f} MiB, growth {growth:.0f} MiB (goal < 100)"
    )
    print(
        f"local stack process (edge, API, embedded AWS): idle {stack_idle / 1024:.0f} MiB, "
        f"peak {stack_peak / 1024:.0f} MiB, growth {(stack_peak - stack_idle) / 1024:.0f} MiB: "
        "moto's share (completing a multipart upload and each GET hold the object in "
        "memory once: this file and boto3's copy; the edge and API never read the bytes)"
    )
    print(f"file status after the worker: {status}")
    return 0 if status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
