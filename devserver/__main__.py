"""`make run`: the whole service on 127.0.0.1, in the foreground, until SIGINT/SIGTERM."""

from __future__ import annotations

import gc
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from .inprocess import InProcessAws
from .moto_guard import EmbeddedAws

if TYPE_CHECKING:
    from chalicelib.adapters.sqs import SqsJobQueue
    from chalicelib.config import Settings
    from chalicelib.runtime import Services

    from .edge import Edge

REGION = "us-east-1"
SWEEP_SECONDS = 30


def main() -> int:
    logging.basicConfig(level=os.environ.get("WHARF_LOG_LEVEL", "WARNING"))
    host, port, generated = _configure()
    moto = _start_embedded_aws()
    edge, jobs, settings = _build_stack(host, port, moto)
    _collect_less()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for thread in _threads(edge, jobs, stop):
        thread.start()
    _announce(settings, generated)
    stop.wait()
    edge.shutdown()
    edge.server_close()
    moto.stop()
    print("Wharf stopped.", flush=True)
    return 0


def _collect_less() -> None:
    """Garbage collection took a seventh of the stack's CPU on a release of small files:
    moto and botocore allocate many short-lived containers per call, and every full
    collection walked the loaded models too. What start-up loaded is set aside from
    collections (gc.freeze), and the youngest generation collected less often; a
    cycle of garbage lives a little longer. Measured: 0.40 -> 0.14 s of collections
    for 30 files (bench/publish.py at BENCH_PUBLISH_SCALE=0.0125)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)


def _configure() -> tuple[str, int, bool]:
    """The WHARF_* settings a local run defaults: the host, the port, and whether the
    admin token was generated."""
    host = os.environ.setdefault("WHARF_HOST", "127.0.0.1")
    port = int(os.environ.setdefault("WHARF_PORT", "8000"))
    os.environ.setdefault("WHARF_PUBLIC_URL", f"http://{host}:{port}")
    generated = not os.environ.get("WHARF_ADMIN_TOKEN")
    if generated:
        os.environ["WHARF_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
    return host, port, generated


def _start_embedded_aws() -> EmbeddedAws:
    """moto, started, with the environment pointing every AWS client at it."""
    # Embedded AWS on loopback only, behind the guard that makes moto safe under
    # concurrent requests (moto_guard.py: without it moto loses committed writes).
    moto = EmbeddedAws("127.0.0.1", int(os.environ.get("WHARF_MOTO_PORT", "0")))
    moto.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "wharf-local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "wharf-local")
    os.environ["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", REGION)
    # The stack's own calls reach moto in-process; the port is for everyone else.
    InProcessAws(moto.url, moto.app).install()
    return moto


def _build_stack(host: str, port: int, moto: EmbeddedAws) -> tuple[Edge, SqsJobQueue, Settings]:
    """The table, bucket and queue created in moto, and the edge serving the app: the
    edge (not serving yet), the job queue and the settings."""
    # Imported only now: the app's AWS clients must see the endpoint moto was given.
    from chalice.config import Config
    from chalice.local import LocalGateway

    from app import app
    from chalicelib.adapters.schema import create_bucket, create_queue, create_table
    from chalicelib.adapters.sqs import SqsJobQueue
    from chalicelib.config import QUEUE_NAME, Settings
    from chalicelib.runtime import aws_clients, services

    from .edge import Edge
    from .files import FileOrigin

    dynamodb, s3, sqs = aws_clients()
    settings = Settings.from_env()
    create_table(dynamodb, settings.table_name)
    create_bucket(s3, settings.bucket_name, os.environ["AWS_DEFAULT_REGION"])
    os.environ["WHARF_QUEUE_URL"] = create_queue(sqs, QUEUE_NAME)
    settings = services().settings
    jobs = SqsJobQueue(sqs, settings.queue_url)

    edge = Edge(
        (host, port),
        LocalGateway(app, Config.create(lambda_timeout=900)),
        # The same (guarded) moto application the server above runs, called in-process
        # (files.py).
        FileOrigin(s3, settings.bucket_name, moto.app),
    )
    return edge, jobs, settings


def _threads(edge: Edge, jobs: SqsJobQueue, stop: threading.Event) -> list[threading.Thread]:
    """The threads that serve (not started): the edge, the expiry sweep and, unless
    WHARF_LOCAL_WORKER=0, the worker."""
    from chalicelib.runtime import services  # late, as in _build_stack

    threads = [
        threading.Thread(target=edge.serve_forever, name="edge", daemon=True),
        threading.Thread(target=_sweep, args=(services, stop), name="sweeper", daemon=True),
    ]
    # WHARF_LOCAL_WORKER=0 leaves the queue to an outside worker (the upload benchmark
    # runs it in a process of its own to measure its memory).
    if os.environ.get("WHARF_LOCAL_WORKER", "1") != "0":
        threads.append(
            threading.Thread(target=_work, args=(services, jobs, stop), name="worker", daemon=True)
        )
    return threads


def _sweep(services: Callable[[], Services], stop: threading.Event) -> None:
    """The scheduled Lambda's job in AWS (Services.sweep), every SWEEP_SECONDS."""
    while not stop.wait(SWEEP_SECONDS):
        try:
            services().sweep.run()
        except Exception:
            logging.getLogger("wharf").exception("expiry sweep failed")


def _work(services: Callable[[], Services], jobs: SqsJobQueue, stop: threading.Event) -> None:
    """The SQS-subscribed worker Lambda's job in AWS, calling the same handler."""
    while not stop.is_set():
        try:
            for job, receipt in jobs.receive(wait_seconds=1):
                services().worker.handle(job)
                jobs.done(receipt)
        except Exception:
            # Left on the queue: delivered again after its visibility timeout.
            logging.getLogger("wharf").exception("job failed")
            stop.wait(1)


def _announce(settings: Settings, generated: bool) -> None:
    """Where the running service is, and its admin token."""
    base = settings.public_url
    print(f"Wharf is running at {base}/", flush=True)
    print(f"  upload root: {base}/upload/   index: {base}/simple/", flush=True)
    print(
        f"  admin token{' (generated)' if generated else ''}: {settings.admin_token}",
        flush=True,
    )
    print("Press Ctrl+C to stop.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
