"""What the user sees while an upload runs: bars on a terminal (one per file, one for the
release: bytes, rate, time left), one plain line per step in a CI log, or nothing."""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Reporter(Protocol):
    def release(self, label: str, total: int) -> None: ...

    def file(self, filename: str, total: int) -> None: ...

    def sent(self, filename: str, count: int) -> None: ...

    def step(self, message: str) -> None: ...

    def close(self) -> None: ...


class Plain:
    """One line per step, for logs: no carriage returns, no colours."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out
        self._lock = threading.Lock()

    def release(self, label: str, total: int) -> None:
        self.step(f"{label}: {total} bytes to send")

    def file(self, filename: str, total: int) -> None:
        self.step(f"{filename}: sending {total} bytes")

    def sent(self, filename: str, count: int) -> None:
        pass

    def step(self, message: str) -> None:
        with self._lock:
            print(message, file=self._out, flush=True)

    def close(self) -> None:
        pass


class Quiet(Plain):
    def step(self, message: str) -> None:
        pass


class Bars:
    """rich progress bars; steps are printed above them."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._total: TaskID | None = None
        self._lock = threading.Lock()
        self._progress.start()

    def release(self, label: str, total: int) -> None:
        with self._lock:
            self._total = self._progress.add_task(label, total=total)

    def file(self, filename: str, total: int) -> None:
        with self._lock:
            self._tasks[filename] = self._progress.add_task(f"  {filename}", total=total)

    def sent(self, filename: str, count: int) -> None:
        with self._lock:
            task = self._tasks.get(filename)
            if task is not None:
                self._progress.advance(task, count)
            if self._total is not None:
                self._progress.advance(self._total, count)

    def step(self, message: str) -> None:
        self._progress.console.print(message, highlight=False, markup=False)

    def close(self) -> None:
        self._progress.stop()


def reporter(*, quiet: bool = False, plain: bool | None = None) -> Reporter:
    if quiet:
        return Quiet()
    if plain is None:
        plain = not sys.stderr.isatty()
    return Plain() if plain else Bars()
