"""Cost that must not grow (`make bench`): publishing a release into a project that
already has RELEASES releases, against publishing the first release of a new project,
through the API (`wharf_client.upload`: a session, a one-part file, completion, publish)
on the local stack.

Prints figures; asserts nothing about time. Goal (issue 13): the publish of a release
into a project with 200 releases takes as long as the first. The earlier releases are
written straight through the store (bench.download.seed), so the bench takes
seconds; ROUNDS of each, in alternation, best and median printed."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from wharf_client import upload

from bench.download import seed
from bench.publish import ADMIN, user_token, write_wheel
from chalicelib.adapters.dynamodb.store import DynamoStore
from devserver.harness import LocalStack, request

RELEASES = int(os.environ.get("BENCH_RELEASES", "200"))
ROUNDS = 5


def timed_publish(stack: LocalStack, token: str, wheel: Path) -> float:
    started = time.perf_counter()
    outcomes = upload([wheel], repository_url=f"{stack.base}/upload", token=token)
    seconds = time.perf_counter() - started
    assert all(o.status == "published" for o in outcomes), outcomes
    return seconds


def main() -> None:
    stack = LocalStack.start(ADMIN)
    try:
        store = DynamoStore(stack.client("dynamodb"), "wharf", retention=60, max_lifetime=3600)
        token = user_token(stack)
        for n in range(RELEASES):
            # The admin's first release registers the name for nobody: the bench user
            # publishes into it as the operator would let a maintainer.
            seed(store, "crowded", 1, None, version=f"0.{n}", first=n == 0)
        granted = request(
            f"{stack.base}/admin/projects/crowded/roles/bench",
            "PUT",
            b'{"role": "maintainer"}',
            {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        )
        assert granted.status in (200, 201), granted.body
        crowded: list[float] = []
        fresh: list[float] = []
        with tempfile.TemporaryDirectory() as scratch:
            for round_ in range(ROUNDS):
                big = write_wheel(Path(scratch), "crowded", f"1.{round_}", "py3-none-any", 4096)
                new = write_wheel(Path(scratch), f"fresh{round_}", "1.0", "py3-none-any", 4096)
                crowded.append(timed_publish(stack, token, big))
                fresh.append(timed_publish(stack, token, new))
    finally:
        stack.stop()
    print(f"publish of one wheel, best and median of {ROUNDS} (wharf_client.upload, local stack)")
    print(
        f"  into a project with {RELEASES} releases: {min(crowded):.3f} s, "
        f"{statistics.median(crowded):.3f} s"
    )
    print(f"  first release of a new project: {min(fresh):.3f} s, {statistics.median(fresh):.3f} s")
    print(
        f"  ratio (median): {statistics.median(crowded) / statistics.median(fresh):.2f} (goal ~1)"
    )


if __name__ == "__main__":
    main()
