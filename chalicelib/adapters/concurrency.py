"""Calls to AWS made at once where a request has several independent ones: each costs a
round trip, and a round trip is most of a call's time in AWS (botocore clients are
thread-safe)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def each(call: Callable[[T], R], items: Sequence[T], at_once: int) -> list[R]:
    """`call` on every item, `at_once` at a time, the answers in order; re-raises the
    first failure. One item is called in this thread."""
    if len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(min(at_once, len(items))) as pool:
        return list(pool.map(call, items))
