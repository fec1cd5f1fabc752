"""The clock of the deployed service: the machine's time, in whole seconds."""

from __future__ import annotations

import time


class SystemClock:
    def now(self) -> int:
        return int(time.time())
