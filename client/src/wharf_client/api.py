"""HTTP to a PEP 694 server: the Upload 2.0 content type, the token, and retries only
where retrying cannot duplicate a side effect."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from . import __version__
from .errors import NetworkError, Problem, Refused

UPLOAD_JSON = "application/vnd.pypi.upload.v2+json"
META = {"api-version": "2.0"}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: Any  # the parsed JSON, or None

    url: str = ""

    @property
    def location(self) -> str | None:
        """The Location header, made absolute (it may be relative to the request)."""
        location = self.headers.get("location")
        return urljoin(self.url, str(location)) if location else None

    def retry_after(self, default: float) -> float:
        # At least a fifth of a second: a server saying 0 must not get a busy loop.
        value = self.headers.get("retry-after", "")
        try:
            return max(0.2, min(float(value), 60.0))
        except ValueError:
            return default


def backoff(attempt: int, base: float = 0.5, cap: float = 20.0) -> float:
    """Full jitter: retries of many clients do not arrive together."""
    return float(random.uniform(0, min(cap, base * 2**attempt)))


class Api:
    """One server, one token, one connection pool (shared by the threads of an upload)."""

    def __init__(
        self,
        token: str | None,
        *,
        timeout: float = 60.0,
        attempts: int = 6,
        pool: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": f"wharf-client/{__version__}", "Accept": UPLOAD_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=15.0),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            follow_redirects=False,
        )
        # Presigned URLs carry their own authorization: never send the token there.
        self.storage = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=15.0),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )
        self._attempts = attempts
        self.sleep = sleep

    def close(self) -> None:
        self._http.close()
        self.storage.close()

    def call(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None = None,
        *,
        # A body streamed from disk is a function giving a fresh iterator per attempt.
        content: bytes | Callable[[], Iterable[bytes]] | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        expect: tuple[int, ...] = (200, 201, 202, 204),
        context: str = "",
    ) -> Answer:
        """One API request. Idempotent ones (GET, DELETE, and POSTs whose repetition the
        server answers the same) are retried on connection failures, 429 and 5xx,
        honouring Retry-After; others get one try, so that nothing runs twice. An answer
        outside `expect` is Refused, carrying the server's problem; a 429 or 5xx that
        persists is a NetworkError (the server is not saying no, it is not working)."""
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = UPLOAD_JSON
        elif content_type:
            sent["Content-Type"] = content_type
        attempts = self._attempts if idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                reply = self._http.request(
                    method,
                    url,
                    json={"meta": META, **body} if body is not None else None,
                    content=content() if callable(content) else content,
                    headers=sent,
                )
            except httpx.TransportError as exc:
                if last:
                    raise NetworkError(f"{context or url}: {describe(exc)}") from None
                self.sleep(backoff(attempt))
                continue
            answer = _answer(reply)
            if answer.status in RETRY_STATUSES and not last:
                self.sleep(answer.retry_after(backoff(attempt)))
                continue
            if answer.status not in expect:
                if answer.status in RETRY_STATUSES:
                    raise NetworkError(
                        "\n".join(
                            [
                                context or url,
                                *Problem.from_answer(
                                    answer.status, answer.body, reply.reason_phrase
                                ).lines(),
                            ]
                        )
                    )
                raise Refused(
                    Problem.from_answer(answer.status, answer.body, reply.reason_phrase),
                    context,
                )
            return answer
        raise AssertionError("the loop returns or raises")  # pragma: no cover

    def get(self, url: str, *, context: str = "", accept: str | None = None) -> Answer:
        headers = {"Accept": accept} if accept else None
        return self.call("GET", url, headers=headers, idempotent=True, context=context)


def _answer(reply: httpx.Response) -> Answer:
    try:
        body = reply.json() if reply.content else None
    except ValueError:
        body = None
    return Answer(reply.status_code, reply.headers, body, str(reply.request.url))


def describe(exc: httpx.TransportError) -> str:
    kind = {
        httpx.ConnectError: "cannot connect",
        httpx.ConnectTimeout: "connecting timed out",
        httpx.ReadTimeout: "no answer in time",
        httpx.RemoteProtocolError: "the connection was cut",
    }.get(type(exc), type(exc).__name__)
    return f"{kind} ({exc})" if str(exc) else kind
