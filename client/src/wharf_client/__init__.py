"""wharf-client: publish distributions through the PEP 694 Upload 2.0 API.

For CI scripts::

    from wharf_client import upload
    outcomes = upload(["dist/a.whl"], repository_url="https://idx/upload/", token="...")
"""

from __future__ import annotations

__version__ = "0.1.0"

from collections.abc import Iterable
from pathlib import Path

from .api import Api
from .credentials import resolve
from .dists import releases
from .errors import NetworkError, Refused, UsageError, WharfClientError
from .progress import reporter
from .uploader import Options, Outcome, Uploader


def upload(
    dists: Iterable[str | Path],
    *,
    repository_url: str | None = None,
    token: str | None = None,
    stage: bool = False,
    parallel_files: int = 4,
    parallel_parts: int = 4,
    quiet: bool = True,
) -> list[Outcome]:
    """Upload and publish (or only stage) the releases of `dists`; one Outcome each.
    Raises UsageError, Refused or NetworkError (all WharfClientError)."""
    target = resolve(repository_url, token)
    found = releases(dists)
    shown = reporter(quiet=quiet, plain=True)
    client = Api(target.token)
    try:
        uploader = Uploader(
            client, target.url, shown, Options(parallel_files, parallel_parts, stage)
        )
        return [uploader.upload(r) for r in found]
    finally:
        client.close()


__all__ = [
    "NetworkError",
    "Outcome",
    "Refused",
    "UsageError",
    "WharfClientError",
    "upload",
]
