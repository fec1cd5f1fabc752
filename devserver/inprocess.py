"""The local stack's own AWS calls, answered by the embedded moto in this same process.

In AWS each call is a request over the network to the service. Here the service is moto,
in this process, and sending each call over loopback cost a TCP connection, a server
thread and two HTTP parsers per call (moto's server answers `Connection: close`): about a
fifth of the stack's CPU while publishing. botocore's `before-send` event lets a handler
answer a request instead of sending it; this one hands the request, signed headers and
body as they are, to the same guarded WSGI application that serves moto's port
(MotoGuard: the same locks apply), so moto sees what it would have seen over HTTP and
the port stays for everyone else (tests, benchmarks, presigned URLs)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import botocore
import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from werkzeug.test import EnvironBuilder

from chalicelib import runtime

from .moto_guard import call

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment


class _Body(io.RawIOBase):
    """A WSGI response body read as a file (botocore's StreamingBody wraps it), one chunk
    of the application's iterable at a time: a large GetObject is not joined first, and
    each byte is copied once, into what `read` returns."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._iterator = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        while not self._pending:
            chunk = next(self._iterator, None)
            if chunk is None:
                return False
            self._pending = memoryview(chunk)
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        if not self._next():
            return b""
        taken, self._pending = self._pending[:size], self._pending[size:]
        return bytes(taken)

    def readall(self) -> bytes:
        parts = []
        while self._next():
            parts.append(self._pending)
            self._pending = memoryview(b"")
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def stream(self, amt: int = 64 * 1024, decode_content: bool | None = None) -> Iterator[bytes]:
        # What botocore's AWSResponse.content reads (urllib3's HTTPResponse has it).
        while chunk := self.read(amt):
            yield chunk

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)  # PEP 3333
            if close is not None:
                close()
        super().close()


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return bytes(body.read())  # a file-like body (the stack's own bodies are small)


# The stack's own DynamoDB and SQS calls, answered in this process, go unsigned: moto
# checks no signature, and SigV4 was an eighth of the stack's CPU while publishing. Without
# an Authorization header moto takes its default region and account, the ones the stack
# configures (us-east-1, the one account). S3 calls stay signed: moto applies the
# bucket's policy to an anonymous request, as S3 does.
UNSIGNED_SERVICES = ("dynamodb", "sqs")


def _unsigned(signature_version: str, **_: Any) -> object | None:
    """A presigned URL (`-query`, `-presign-post`) is still signed: it is sent from
    outside."""
    if signature_version.endswith(("-query", "-presign-post")):
        return None
    unsigned: object = botocore.UNSIGNED
    return unsigned


class InProcessAws:
    """Answers the requests botocore would send to `endpoint` by calling `app`."""

    def __init__(self, endpoint: str, app: WSGIApplication) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._app = app

    def install(self, session: botocore.session.Session | None = None) -> None:
        """For every client created from `session` from now on; by default the session
        the app makes its clients from (the stack's own: runtime.aws_session)."""
        if session is None:
            session = runtime.aws_session()
        # botocore sends what a before-send handler returns instead of the request (its
        # stubs type handlers as returning None).
        handler = cast("Callable[..., None]", self.answer)
        session.register("before-send", handler)
        for service in UNSIGNED_SERVICES:
            session.register(f"choose-signer.{service}", cast("Callable[..., None]", _unsigned))

    def answer(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        url = urlsplit(request.url)
        if f"{url.scheme}://{url.netloc}" != self._endpoint:
            return None  # somewhere else: botocore sends it
        environ = EnvironBuilder(
            method=request.method,
            base_url=self._endpoint,
            path=url.path,
            query_string=url.query,
            headers=[
                (k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
            ],
            data=_body_bytes(request.body),
        ).get_environ()
        if request.stream_output:
            status, headers, body = self._stream(environ)
        else:
            # Read whole now, as botocore would, so the application's work is done here.
            answer = call(self._app, environ)
            status, headers, body = answer.status, answer.headers, _Body([answer.body])
        return AWSResponse(
            request.url, int(status.split()[0]), HTTPHeaders.from_pairs(headers), body
        )

    def _stream(self, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], _Body]:
        """The response as the application gives it, its body read as botocore reads it."""
        answered: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            answered[:] = [(status, headers)]
            return None

        body = _Body(self._app(environ, start_response))
        status, headers = answered[0]
        return status, headers, body
