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
from .credentials import NO_TOKEN, resolve
from .dists import releases
from .errors import NetworkError, Refused, UsageError, WharfClientError
from .progress import Reporter, reporter
from .uploader import Options, Outcome, Uploader


def upload(
    dists: Iterable[str | Path],
    *,
    repository_url: str | None = None,
    token: str | None = None,
    repository: str | None = None,
    stage: bool = False,
    parallel_files: int = 4,
    parallel_parts: int = 4,
    shown: Reporter | None = None,
) -> list[Outcome]:
    """Upload and publish (or only stage) the releases of `dists`; one Outcome each.
    Raises UsageError, Refused or NetworkError (all WharfClientError). Progress goes to
    `shown` (default: nothing)."""
    if parallel_files < 1 or parallel_parts < 1:
        raise UsageError("parallel files and parts are at least 1")
    target = resolve(repository_url, token, repository)
    if not target.token:
        raise UsageError(NO_TOKEN)
    found = releases(dists)  # refuses bad files before anything is sent (and hashes them)
    shown = shown or reporter(quiet=True)
    # A connection for every part and API call in flight at once.
    client = Api(target.token, pool=max(16, 2 * parallel_files * parallel_parts))
    try:
        options = Options(parallel_files, parallel_parts, stage)
        uploader = Uploader(client, target.url, shown, options)
        return [uploader.upload(r) for r in found]
    finally:
        client.close()
        shown.close()


__all__ = [
    "NetworkError",
    "Outcome",
    "Refused",
    "UsageError",
    "WharfClientError",
    "upload",
]
