"""The local stack's S3: moto's, behind the same guard, in a process of its own.

Part uploads, multipart assembly and the bytes of every download are the heaviest work of
the local stack. In the stack's own process they competed for one interpreter lock with the
API, DynamoDB and the edge, so a publish used one core while the machine had two (issue 13).
In a process of their own they run beside the API, and moto's memory (it holds whole
objects) is measured apart from Wharf's.

Why moto and not another S3-compatible server (issue 13 asked to evaluate one): none that
this project may install is a better local S3. The registries it reaches offer Debian's
radosgw, which needs a running Ceph cluster, and npm's s3rver, unmaintained since 2022 and
without the checksums, object tagging and conditional writes Wharf relies on; PyPI has no
S3 server. moto implements all three and is already what every test runs against.

`python -m devserver.storage PORT` serves until its standard input closes: the stack holds
the other end, so this process ends with the stack however the stack ends (SIGKILL
included), and nothing is left listening."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .moto_guard import EmbeddedAws

ROOT = Path(__file__).resolve().parent.parent
READY = "s3 ready at "


@dataclass
class StorageProcess:
    """The S3 process, seen from the stack that started it."""

    url: str
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, port: int) -> Self:
        process = subprocess.Popen(
            [sys.executable, "-m", "devserver.storage", str(port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until it listens, or ends
        if not line.startswith(READY):
            process.kill()
            raise RuntimeError(f"the local S3 did not start: {line!r}")
        return cls(line.removeprefix(READY).strip(), process)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> int:
    # Ctrl+C in a terminal reaches the whole process group: the stack decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    s3 = EmbeddedAws("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    s3.start()
    print(READY + s3.url, flush=True)
    stopped = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the stack closes its end, or dies
        stopped.set()

    threading.Thread(target=watch_stdin, name="stack-watch", daemon=True).start()
    stopped.wait()
    s3.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
