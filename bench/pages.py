"""A project too large for one Lambda answer (`make bench`): BENCH_PAGE_FILES files
(20,000 by default) published through the store, then `/simple/<name>/` as an installer
reads it through the local edge: the API's answer (a 302 once the page is above
WHARF_PAGE_INLINE_MAX), then the page from storage.

Prints figures; asserts that the project is still served (issue 13: "a 20,000-file
project still served"), nothing about time."""

from __future__ import annotations

import os
import time

from bench.download import seed
from chalicelib.adapters.dynamodb.store import DynamoStore
from devserver.harness import LocalStack, request

FILES = int(os.environ.get("BENCH_PAGE_FILES", "20000"))
ADMIN = "bench-admin-token"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def main() -> None:
    stack = LocalStack.start(ADMIN)
    try:
        store = DynamoStore(stack.client("dynamodb"), "wharf", retention=60, max_lifetime=3600)
        started = time.perf_counter()
        seed(store, "huge", FILES, None)
        seeded = time.perf_counter() - started
        timings = []
        for _ in range(3):  # the first renders and stores the page; the next find it
            started = time.perf_counter()
            answer = request(f"{stack.base}/simple/huge/", headers=JSON)
            location = answer.headers.get("Location", "")
            page = request(location, headers=JSON) if answer.status == 302 else answer
            timings.append(time.perf_counter() - started)
            assert page.status == 200, (answer.status, page.status)
        listed = page.body.count(b'"filename"')
        assert listed == FILES, listed
    finally:
        stack.stop()
    print(f"{FILES} files published in {seeded:.1f} s (through the store)")
    how = "302 to storage" if answer.status == 302 else "answered by the API"
    print(
        f"/simple/huge/: {len(page.body) / 1e6:.1f} MB, {how}; first read {timings[0]:.2f} s "
        f"(renders and stores it), then {min(timings[1:]):.2f} s; all {listed} files listed"
    )


if __name__ == "__main__":
    main()
