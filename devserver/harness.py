"""Start and stop the local stack from tests and benchmarks, the way `make run` does."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import boto3

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    url: str, method: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
) -> Response:
    """One HTTP request on a fresh connection (what a CLI does)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body or None, headers=headers or {})
        reply = connection.getresponse()
        return Response(reply.status, dict(reply.getheaders()), reply.read())
    finally:
        connection.close()


@dataclass
class LocalStack:
    base: str
    moto: str
    process: subprocess.Popen[str]
    output: str = field(default="")
    public_url: str = field(default="")

    @classmethod
    def start(cls, admin_token: str, **settings: str) -> Self:
        port = int(settings.pop("WHARF_PORT", 0)) or free_port()
        moto_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WHARF_"))}
        env.update(
            WHARF_PORT=str(port),
            WHARF_MOTO_PORT=str(moto_port),
            WHARF_ADMIN_TOKEN=admin_token,
            PYTHONUNBUFFERED="1",
            **settings,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "devserver"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stack = cls(
            f"http://127.0.0.1:{port}",
            f"http://127.0.0.1:{moto_port}",
            process,
            public_url=settings.get("WHARF_PUBLIC_URL", ""),
        )
        deadline = time.monotonic() + 120  # a bound on start-up, not a measure of it
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"the local stack exited: {output}")
            try:
                if request(stack.base + "/simple/").status == 200:
                    return stack
            except OSError:
                time.sleep(0.2)
        process.kill()
        raise RuntimeError("the local stack did not become ready")

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's embedded AWS (moto), as `make run` configures it."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.moto,
            region_name="us-east-1",
            aws_access_key_id="wharf-local",
            aws_secret_access_key="wharf-local",
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        self.output, _ = self.process.communicate(timeout=60)
        return self.process.returncode
