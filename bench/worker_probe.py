"""Run the deferred-processing worker in a process of its own and report its memory:
RSS when idle (imports and clients ready) and its peak while handling the queued jobs.

Started by bench/upload.py with the local stack's endpoint and queue in the environment."""

from __future__ import annotations

import json
import sys
import time


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> int:
    from chalicelib.adapters.sqs import SqsJobQueue
    from chalicelib.runtime import aws_clients, services

    built = services()
    _, _, sqs = aws_clients()
    queue = SqsJobQueue(sqs, built.settings.queue_url)
    idle = _rss_kib("VmRSS")
    handled = 0
    deadline = time.monotonic() + 600
    want = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    while handled < want and time.monotonic() < deadline:
        for job, receipt in queue.receive(wait_seconds=1):
            built.worker.handle(job)
            queue.done(receipt)
            handled += 1
    print(json.dumps({"idle_kib": idle, "peak_kib": _rss_kib("VmHWM"), "jobs": handled}))
    return 0 if handled == want else 1


if __name__ == "__main__":
    sys.exit(main())
