"""A clock that moves only when told: what tests set expiry and retention by."""

from __future__ import annotations


class FixedClock:
    def __init__(self, now: int = 1_800_000_000) -> None:
        self.value = now

    def now(self) -> int:
        return self.value

    def advance(self, seconds: int) -> None:
        self.value += seconds
