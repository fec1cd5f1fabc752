"""The simple repository API's representations (simple-repository-api.rst): PEP 503
HTML and PEP 691 JSON, chosen by server-driven negotiation on `Accept`, at API version
1.4 (hashes, requires-python, PEP 658/714 core-metadata, PEP 700 size, upload-time and
versions, PEP 592 yanked).

Pages carry a strong ETag over their bytes and answer If-None-Match with 304."""

from __future__ import annotations

import hashlib
import html
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalice.app import Response

from ..domain.hashes import SECURE_GUARANTEED
from ..domain.records import ProjectState
from ..services.index import IndexFile, ProjectPage
from .problems import NotAcceptable

API_VERSION = "1.4"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
# The media types this index serves, and the Accept ranges that name each one exactly
# (the `latest` aliases of the simple API spec count as exact).
_EXACT = {
    SIMPLE_JSON: SIMPLE_JSON,
    "application/vnd.pypi.simple.latest+json": SIMPLE_JSON,
    SIMPLE_HTML: SIMPLE_HTML,
    "application/vnd.pypi.simple.latest+html": SIMPLE_HTML,
    TEXT_HTML: TEXT_HTML,
}
# On equal quality: JSON beats HTML.
_PREFERENCE = {SIMPLE_JSON: 3, SIMPLE_HTML: 2, TEXT_HTML: 1}
INDEX_CACHE = "public, max-age=60"
STAGE_CACHE = "private, no-cache"


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for entry in accept.split(","):
        media, *params = (p.strip() for p in entry.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


# The wildcard ranges each offer answers: JSON only when asked for by name, HTML as
# the default for `*/*` (simple API spec: "the default ... should be HTML").
_WILDCARDS = {SIMPLE_JSON: (), SIMPLE_HTML: ("application/*", "*/*"), TEXT_HTML: ("text/*",)}


def _specificity(media_range: str, offer: str) -> int:
    """How specifically a range names an offer: 3 exactly, 2 as type/*, 1 as */*, 0 not."""
    if _EXACT.get(media_range) == offer:
        return 3
    if media_range in _WILDCARDS[offer]:
        return 1 if media_range == "*/*" else 2
    return 0


def negotiate(accept: str | None) -> str:
    """The content type to answer with; NotAcceptable when nothing offered is wanted.
    No Accept header means `*/*`, which gets the HTML default.

    Each offer takes the quality of the most specific range that names it (RFC 9110
    section 12.5.1), so `text/html;q=0, */*` refuses text/html even though `*/*` would
    take it: q=0 means "not acceptable" (section 12.4.2)."""
    if not accept or not accept.strip():
        return SIMPLE_HTML
    ranges = _accept_ranges(accept)
    best: tuple[float, int, int] | None = None
    chosen = None
    for offer, preference in _PREFERENCE.items():
        matches = [m for m in ((_specificity(r, offer), q) for r, q in ranges) if m[0]]
        if not matches:
            continue
        # The most specific range decides; among equally specific ones, the best quality.
        specificity, quality = max(matches)
        # On equal quality an offer named explicitly beats one a wildcard reached.
        rank = (quality, specificity, preference)
        if quality > 0 and (best is None or rank > best):
            best, chosen = rank, offer
    if chosen is None:
        raise NotAcceptable(
            f"This index serves {SIMPLE_JSON}, {SIMPLE_HTML} and {TEXT_HTML} (API "
            f"version {API_VERSION})."
        )
    return chosen


def _upload_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_json(f: IndexFile) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": f.filename,
        "url": f.url,
        "hashes": dict(sorted(f.hashes.items())),
        "size": f.size,
    }
    if f.requires_python:
        entry["requires-python"] = f.requires_python
    if f.metadata_sha256:
        metadata = {"sha256": f.metadata_sha256}
        entry["core-metadata"] = metadata
        entry["dist-info-metadata"] = metadata  # PEP 658's name, for older installers
    if f.uploaded_at is not None:
        entry["upload-time"] = _upload_time(f.uploaded_at)
    if f.yanked is not None:
        entry["yanked"] = f.yanked or True
    return entry


# The URL fragment carries one hash (simple-repository-api.rst "Base HTML API": a hashlib
# algorithm, sha256 recommended). A file may have been verified with any secure
# guaranteed algorithm instead (PEP 694 "hashes"): sha256 first, then those pip checks in
# a fragment, then the rest in a fixed order, so a page's bytes (and ETag) are stable.
_FRAGMENT_PREFERENCE = ("sha256", "sha512", "sha384", "sha224")


def fragment_hash(hashes: Mapping[str, str]) -> tuple[str, str] | None:
    """The (algorithm, hex digest) for a file URL's fragment; None when the file has no
    secure guaranteed hash (the fragment is a SHOULD: better none than a weak one)."""
    secure = sorted(
        (name for name in hashes if name in SECURE_GUARANTEED),
        key=lambda name: (
            _FRAGMENT_PREFERENCE.index(name)
            if name in _FRAGMENT_PREFERENCE
            else len(_FRAGMENT_PREFERENCE),
            name,
        ),
    )
    return (secure[0], hashes[secure[0]]) if secure else None


def _file_anchor(f: IndexFile) -> str:
    fragment = fragment_hash(f.hashes)
    href = f.url + (f"#{fragment[0]}={fragment[1]}" if fragment else "")
    attrs = [f'href="{html.escape(href)}"']
    if f.requires_python:
        attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
    if f.metadata_sha256:
        attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
        attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
    if f.yanked is not None:
        attrs.append(f'data-yanked="{html.escape(f.yanked)}"')
    return f"    <a {' '.join(attrs)}>{html.escape(f.filename)}</a><br/>"


def _page(title: str, anchors: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        + "".join(a + "\n" for a in anchors)
        + "  </body>\n</html>\n"
    )


def root_body(kind: str, base: str, projects: list[str]) -> str:
    if kind == SIMPLE_JSON:
        return json.dumps(
            {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in projects]}
        )
    anchors = [f'    <a href="{base}{html.escape(n)}/">{html.escape(n)}</a><br/>' for n in projects]
    return _page("Simple index", anchors)


def project_body(kind: str, page: ProjectPage) -> str:
    files = sorted(page.files, key=lambda f: f.filename)
    if kind == SIMPLE_JSON:
        return json.dumps(
            {
                "meta": {"api-version": API_VERSION},
                "name": page.name,
                "files": [_file_json(f) for f in files],
                "versions": page.versions,
            }
        )
    return _page(f"Links for {page.name}", [_file_anchor(f) for f in files])


def _etag(kind: str, body: str) -> str:
    return '"' + hashlib.sha256(f"{kind}\n{body}".encode()).hexdigest()[:40] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


# Where a page too large to answer is stored: (project, name, body, content type, cache
# control) -> its URL (IndexService.static_page).
StaticPage = Callable[[str, str, str, str, str], str]
PrivatePage = Callable[[str, str, str, str], str]


class ProjectPages:
    """Project pages as answers. Each is kept as last rendered, with its ETag and size
    in bytes, per (kind, project) and the project state it was read under
    (ProjectPage.state): a page changes only with a publish, and rendering and
    hashing thousands of files is most of a warm request; bounded by the bytes kept.
    A page of more than `inline_max` bytes (WHARF_PAGE_INLINE_MAX: Lambda answers at
    most 6 MB) is stored once (`static`) and the client sent there."""

    def __init__(
        self, max_bytes: int, static: StaticPage, private: PrivatePage, inline_max: int
    ) -> None:
        self._max_bytes = max_bytes
        self._static = static
        self._private = private
        self._inline_max = inline_max
        self._kept = 0
        self._pages: OrderedDict[tuple[str, str], tuple[ProjectState | None, str, str, int]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def response(
        self,
        kind: str,
        page: ProjectPage,
        request_headers: Mapping[str, str],
        *,
        cache: str = INDEX_CACHE,
    ) -> Response:
        """The page; a large one as a 302 to storage (the next publish makes another
        page): public for the index, through a short-lived URL for a stage (private)."""
        body, etag, size = self._body_and_etag(kind, page)
        if size <= self._inline_max:
            return _page_response(kind, body, etag, request_headers, cache)
        digest, extension = etag.strip('"'), "json" if kind == SIMPLE_JSON else "html"
        # Stored with this answer's caching: it moves with a publish.
        if page.revision is not None:
            # Named by the revision it lists too: the sweep keeps the newest revision's.
            name = f"{page.revision}-{digest}.{extension}"
            return found(self._static(page.name, name, body, kind, cache), cache=cache)
        return found(self._private(f"{digest}.{extension}", body, kind, cache), cache=cache)

    def _body_and_etag(self, kind: str, page: ProjectPage) -> tuple[str, str, int]:
        if page.revision is None:  # a stage's page: its staged files change in place
            return _rendered(kind, page)
        key = (kind, page.name)
        with self._lock:
            cached = self._pages.get(key)
            if cached is not None and cached[0] == page.state:
                self._pages.move_to_end(key)
                return cached[1], cached[2], cached[3]
        body, etag, size = _rendered(kind, page)
        with self._lock:
            replaced = self._pages.pop(key, None)
            self._kept += size - (replaced[3] if replaced else 0)
            self._pages[key] = (page.state, body, etag, size)
            while self._kept > self._max_bytes and len(self._pages) > 1:
                self._kept -= self._pages.popitem(last=False)[1][3]
        return body, etag, size


def _rendered(kind: str, page: ProjectPage) -> tuple[str, str, int]:
    body = project_body(kind, page)
    return body, _etag(kind, body), len(body.encode())


def page_response(
    kind: str, body: str, request_headers: Mapping[str, str], *, cache: str = INDEX_CACHE
) -> Response:
    return _page_response(kind, body, _etag(kind, body), request_headers, cache)


def _page_response(
    kind: str, body: str, etag: str, request_headers: Mapping[str, str], cache: str
) -> Response:
    headers: dict[str, str | list[str]] = {
        "Vary": "Accept",
        "Cache-Control": cache,
        "ETag": etag,
    }
    if _matches(request_headers.get("if-none-match"), etag):
        return Response(body="", status_code=304, headers=headers)
    return Response(body=body, status_code=200, headers={**headers, "Content-Type": kind})


def found(location: str, *, cache: str = INDEX_CACHE) -> Response:
    """A 302 to where this page is now (it moves with the next publish); which page
    depends on Accept."""
    return redirect(location, cache=cache, status=302, vary="Accept")


def redirect(
    location: str, *, cache: str = INDEX_CACHE, status: int = 301, vary: str | None = None
) -> Response:
    headers: dict[str, str | list[str]] = {"Location": location, "Cache-Control": cache}
    if vary is not None:
        headers["Vary"] = vary
    return Response(body="", status_code=status, headers=headers)
