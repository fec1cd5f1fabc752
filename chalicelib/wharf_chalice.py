"""Chalice keeps the request being handled on the app object. A Lambda container handles
one request at a time, but the local stack serves many at once from threads, so the
per-request attributes live in thread-local storage (harmless in Lambda)."""

from __future__ import annotations

import threading
from typing import Any

from chalice.app import Chalice, Request

_local = threading.local()


class ThreadSafeChalice(Chalice):
    @property
    def current_request(self) -> Request | None:
        return getattr(_local, "request", None)

    @current_request.setter
    def current_request(self, value: Request | None) -> None:
        _local.request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(_local, "context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        _local.context = value
