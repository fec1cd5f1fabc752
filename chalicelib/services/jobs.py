"""The deferred jobs the API queues and the worker runs (services/worker.py), as the
queue carries them: {"job": <kind>, "session": <id>[, "file": <id>]}."""

from __future__ import annotations

from collections.abc import Callable

from ..domain.ports import JobQueue, QueueUnavailable

VERIFY_FILE = "verify-file"
PUBLISH = "publish"


def hand_over(queue: JobQueue, job: dict[str, str], undo: Callable[[], object]) -> None:
    """Queue `job`, for which the caller has moved its file or session to processing.
    When the queue certainly did not take it, `undo` moves it back, so that the request
    fails (503) having changed nothing and may be sent again."""
    try:
        queue.send(job)
    except QueueUnavailable:
        undo()
        raise
