"""The job queue in memory: jobs kept in order for a test to hand to the worker."""

from __future__ import annotations


class MemoryJobQueue:
    def __init__(self) -> None:
        self.jobs: list[dict[str, str]] = []

    def send(self, job: dict[str, str]) -> None:
        self.jobs.append(dict(job))
