"""Download benchmark (`make bench`): a 512 MiB file through the local edge's /files/ and
the same object straight from the embedded S3, the edge's memory while it serves, and the
latency of /simple/<name>/ for a project with 2,000 files.

Prints figures; asserts nothing about time. Goals (issue 4): /files/ reaches at least 0.9
of S3's throughput; serving keeps the process under 100 MB above its size before.

The two paths are timed in alternation, best of ROUNDS each: on a small shared machine one
download can take twice as long as the next, and the best run is the one least disturbed."""

from __future__ import annotations

import hashlib
import http.client
import os
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

from packaging.version import Version

from chalicelib.adapters.dynamodb.store import DynamoStore
from chalicelib.domain.names import release_key
from chalicelib.domain.records import FileRecord, SessionRecord
from chalicelib.domain.states import FileStatus, SessionStatus
from chalicelib.domain.tokens import new_session_token, random_id, session_id_for
from devserver.harness import LocalStack, request

MIB = 1024 * 1024
SIZE = int(os.environ.get("BENCH_DOWNLOAD_MIB", "512")) * MIB
PAGE_FILES = 2000
ROUNDS = 4
ADMIN = "bench-admin-token"
BUCKET = "wharf-files"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def drain(url: str) -> float:
    """Seconds to GET `url` and read the body, all SIZE bytes of it, in 1 MiB chunks."""
    parts = urlsplit(url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
    reply = connection.getresponse()
    assert reply.status == 200, reply.status
    received = 0
    while chunk := reply.read(MIB):
        received += len(chunk)
    connection.close()
    assert received == SIZE, received
    return time.perf_counter() - started


def measured(pid: int, url: str) -> tuple[float, int]:
    """Time of one download, and the process's RSS growth (KiB) meanwhile."""
    baseline = rss_kib(pid)
    peak = baseline
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampling.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    seconds = drain(url)
    sampling.set()
    sampler.join()
    return seconds, peak - baseline


def seed(
    store: DynamoStore,
    project: str,
    files: int,
    blob_key: str | None,
    *,
    version: str = "1.0",
    first: bool = True,
) -> str:
    """Publish `files` files of release `version` of `project` through the store (as the
    API would, minus the uploads); the key of the first file is `blob_key` when given.
    `first`: the project's first release (it registers the name)."""
    now = int(time.time())
    token = new_session_token()
    session = SessionRecord(
        id=session_id_for(token),
        token=token,
        project=project,
        version=version,
        version_key=release_key(Version(version)),
        status=SessionStatus.OPEN,
        created_at=now,
        expires_at=now + 3600,
        created_by=None,
        first_release=first,
    )
    store.create_session(session, reserve_project=first)
    records = []
    for n in range(files):
        fid = random_id()
        name = f"{project}-{version}-cp3{n % 10}-none-plat{n}.whl"
        records.append(
            FileRecord(
                id=fid,
                session_id=session.id,
                filename=name,
                size=SIZE if n == 0 else 1000,
                hashes={"sha256": hashlib.sha256(name.encode()).hexdigest()},
                mechanism="http-post-bytes",
                status=FileStatus.COMPLETED,
                key=blob_key if (n == 0 and blob_key) else f"files/{project}/{fid}/{name}",
                created_at=now,
                metadata_sha256="0" * 64,
                requires_python=">=3.9",
                uploaded_at=now,
            )
        )
    locked = store.lock_for_publish(session, now, now + 900)
    assert store.reserve_filenames(locked, records, now) == {}
    store.commit_publish(locked, now, owner=None)
    return records[0].key


def main() -> int:
    stack = LocalStack.start(ADMIN)
    try:
        s3 = stack.client("s3")
        store = DynamoStore(stack.client("dynamodb"), "wharf", retention=60, max_lifetime=3600)
        key = "files/big/0123/big-1.0-py3-none-any.whl"
        chunk = os.urandom(MIB)
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        parts = []
        for number in range(1, SIZE // (64 * MIB) + 1):
            etag = s3.upload_part(
                Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=chunk * 64
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
        s3.put_object_tagging(
            Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "wharf-public", "Value": "true"}]}
        )
        seed(store, "big", 1, key)

        direct = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
        edge = f"{stack.base}/{key}"
        drain(edge)  # warm both paths once
        drain(direct)
        # moto runs in the stack's process and holds each object it serves in memory, so
        # the edge's own share is the growth through the edge minus the growth serving
        # the same object straight from moto.
        rounds = [
            (measured(stack.process.pid, edge), measured(stack.process.pid, direct))
            for _ in range(ROUNDS)
        ]
        edge_seconds = min(through_edge[0] for through_edge, _ in rounds)
        edge_growth = max(through_edge[1] for through_edge, _ in rounds)
        s3_seconds = min(from_s3[0] for _, from_s3 in rounds)
        s3_growth = max(from_s3[1] for _, from_s3 in rounds)

        seed(store, "wide", PAGE_FILES, None)
        accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
        request(f"{stack.base}/simple/wide/", headers=accept)
        latencies = []
        for _ in range(100):
            started = time.perf_counter()
            reply = request(f"{stack.base}/simple/wide/", headers=accept)
            latencies.append(time.perf_counter() - started)
            assert reply.status == 200
        files_listed = reply.body.count(b'"filename"')
        query = []
        for _ in range(20):
            started = time.perf_counter()
            store.published_files("wide")
            query.append(time.perf_counter() - started)
    finally:
        stack.stop()

    mib = SIZE / MIB
    edge_rate, s3_rate = mib / edge_seconds, mib / s3_seconds
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"file: {mib:.0f} MiB, best of {ROUNDS} downloads each way, in alternation")
    print(f"/files/ through the edge: {edge_rate:8.1f} MiB/s ({edge_seconds:.2f} s)")
    print(f"straight from S3:         {s3_rate:8.1f} MiB/s ({s3_seconds:.2f} s)")
    print(f"ratio edge/S3: {edge_rate / s3_rate:.2f} (goal >= 0.9)")
    print(
        f"edge's own memory while serving: {(edge_growth - s3_growth) / 1024:+.0f} MiB (goal < 100;"
        f" process growth through the edge +{edge_growth / 1024:.0f} MiB, straight from"
        f" the in-process moto +{s3_growth / 1024:.0f} MiB: moto reads each object whole)"
    )
    print(
        f"/simple/wide/ with {files_listed} files: p50 {quantiles[49] * 1000:.1f} ms, "
        f"p99 {quantiles[98] * 1000:.1f} ms (warm); reading all its items from moto, as a "
        f"cold container does: median {statistics.median(query) * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
