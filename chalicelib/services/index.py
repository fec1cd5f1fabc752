"""What installers read: the simple repository API's content for published projects, and
for a stage (PEP 694 "Staged Previews"), which adds one session's completed files."""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from packaging.version import Version

from ..domain.errors import NotFound
from ..domain.names import InvalidInput, normalize_name, release_key
from ..domain.ports import BlobGone, BlobStore, IndexStore, Listed, SessionStore
from ..domain.records import FileRecord, ProjectRecord, ProjectStatus, SessionRecord
from ..domain.states import FileStatus
from ..domain.tokens import is_random_id, session_id_for
from .verification import metadata_key

# Staged bytes are handed out through short-lived presigned URLs (DESIGN.md).
STAGE_URL_SECONDS = 300
PUBLISHED_CACHE_PROJECTS = 256
# Under files/ for the edge; "_" is never in a normalized project name, so no file's key.
PAGES_PREFIX = "files/_pages/"
# A stage's page too large for the API's answer: stored privately (never tagged public:
# the edge does not serve it), downloaded through a presigned URL like staged files. A
# lifecycle rule deletes these after the longest a session can live (infra/template.yaml).
STAGE_PAGES_PREFIX = "files/_stage_pages/"
# How long a stored page outlives the page that replaced it: far beyond any cache of the
# redirect to it (the edge's and installers' caches of /simple/ last minutes).
STORED_PAGE_GRACE = 24 * 3600
# A project's published files as of one revision (ProjectRecord.revision), stored by the
# first container that queried them, so that a cold container reads one object rather
# than query every file of the project (issue 13: a first read of 2,000 files). Private
# (never tagged public: the edge does not serve it). A revision's files never change, so
# a listing is written once and never rewritten; the bucket's lifecycle rule deletes
# listings after a while (infra/template.yaml), and a current one so deleted is stored
# again by its next reader. The format is in the prefix: another format, another prefix.
LISTINGS_PREFIX = "files/_listings/v1/"
# A listed file: what the simple API renders of a published file (the URL is made from
# the key as the page is served, so a new public URL needs no new listings).
_LISTED = (
    "filename",
    "version",
    "key",
    "hashes",
    "size",
    "requires_python",
    "metadata_sha256",
    "uploaded_at",
    "yanked",
)

_log = logging.getLogger("wharf.index")


@dataclass(frozen=True)
class IndexFile:
    filename: str
    version: str
    url: str
    hashes: dict[str, str]
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    uploaded_at: int | None
    yanked: str | None = None


@dataclass(frozen=True)
class ProjectPage:
    name: str
    files: list[IndexFile]
    # The project's revision the files were read under, and the commit that made it
    # (ProjectRecord.state): the page is the same while they are (files are immutable
    # and appear only with a commit). None for a stage's page.
    revision: int | None = None
    commit: str | None = None

    @property
    def state(self) -> tuple[int, str | None] | None:
        return None if self.revision is None else (self.revision, self.commit)

    @property
    def versions(self) -> list[str]:
        """One entry per release, in version order (PEP 700). `1.0` and `1.0.0` are one
        release to this index (names.release_key), listed as first published."""
        first: dict[str, IndexFile] = {}
        for f in sorted(self.files, key=lambda f: (f.uploaded_at or 0, f.version)):
            first.setdefault(_parsed(f.version)[1], f)
        return sorted((f.version for f in first.values()), key=lambda v: _parsed(v)[0])


def _page_revision(name: str) -> int:
    """The project revision a stored page lists (`<revision>-<digest>.<ext>`); a page
    stored before pages were so named counts as the oldest."""
    head, dash, _ = name.partition("-")
    return int(head) if dash and head.isdigit() else -1


@functools.lru_cache(maxsize=4096)
def _parsed(version: str) -> tuple[Version, str]:
    """A published version and its release key, parsed once per process: every render
    of a project page needs them for every file."""
    parsed = Version(version)
    return parsed, release_key(parsed)


class Redirect(Exception):
    """The name in the URL is not normalized: go to the normalized URL instead."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class IndexService:
    def __init__(
        self, index: IndexStore, sessions: SessionStore, blobs: BlobStore, public_url: str
    ) -> None:
        self._index = index
        self._sessions = sessions
        self._blobs = blobs
        self._public = public_url
        self._static_pages: set[str] = set()  # written by this container
        # project -> (its state, its published files): files are immutable and appear
        # only with a commit, so while the state (ProjectRecord.state) is the same a
        # warm container reads nothing but the project item.
        self._published_cache: OrderedDict[str, tuple[tuple[int, str | None], list[IndexFile]]] = (
            OrderedDict()
        )

    def static_page(
        self, project: str, name: str, body: str, content_type: str, cache_control: str
    ) -> str:
        """Where the edge serves a project page too large for the API's answer (Lambda's
        6 MB): an object under files/ (the edge's /files/), written once, public from
        the start. `name` names its content (the page's ETag and kind), so the object
        never changes, and a publish makes a page of another name."""
        key = f"{PAGES_PREFIX}{project}/{name}"
        self._store_once(
            key, lambda: self._blobs.put_public(key, body.encode(), content_type, cache_control)
        )
        return self.file_url(key)

    def private_page(self, name: str, body: str, content_type: str, cache_control: str) -> str:
        """Where a stage's page too large for the API's answer is downloaded: stored once
        (`name` names its content), handed out through a short-lived presigned URL."""
        key = f"{STAGE_PAGES_PREFIX}{name}"
        self._store_once(key, lambda: self._blobs.put_new(key, body.encode()))
        return self._blobs.presign_get(
            key, STAGE_URL_SECONDS, content_type=content_type, cache_control=cache_control
        )

    def _store_once(self, key: str, store: Callable[[], object]) -> None:
        """A page's key names its content: stored by this container once, the body
        encoded only then (a write finding it there already is the same page)."""
        if key not in self._static_pages:
            store()
            self._static_pages.add(key)

    def prune_pages(self, now: int) -> int:
        """Delete a project's stored pages of an older revision STORED_PAGE_GRACE after
        the first page of a newer revision was stored; how many. Every publish of a
        project that large stores new pages (each kind the index answers); the older
        ones are referenced by nothing once the caches that sent clients to them have
        expired. The revision in a page's name (ProjectPages), not when it was written,
        tells which is current: a slow request may store an older page last."""
        projects: dict[str, dict[int, list[Listed]]] = {}
        for page in self._blobs.listed(PAGES_PREFIX):
            project, _, name = page.key.removeprefix(PAGES_PREFIX).partition("/")
            projects.setdefault(project, {}).setdefault(_page_revision(name), []).append(page)
        pruned = 0
        for revisions in projects.values():
            superseded_at: int | None = None  # the first page stored of a newer revision
            for revision in sorted(revisions, reverse=True):
                pages = revisions[revision]
                if superseded_at is not None and superseded_at + STORED_PAGE_GRACE <= now:
                    for page in pages:
                        self._blobs.delete(page.key)
                    pruned += len(pages)
                first = min(page.written_at for page in pages)
                superseded_at = first if superseded_at is None else min(superseded_at, first)
        return pruned

    def file_url(self, key: str) -> str:
        """Keys start with files/: the URL path is the key (CloudFront's /files/*)."""
        return f"{self._public}/{quote(key)}"

    def _listed_file(self, row: list[Any]) -> IndexFile:
        """A listed file (_LISTED's fields, in order) as the simple API renders it."""
        filename, version, key, hashes, size, requires_python, metadata, uploaded_at, yanked = row
        return IndexFile(
            filename=filename,
            version=version,
            url=self.file_url(key),
            hashes=hashes,
            size=size,
            requires_python=requires_python,
            metadata_sha256=metadata,
            uploaded_at=uploaded_at,
            yanked=yanked,
        )

    @staticmethod
    def _normalized(name: str) -> str:
        try:
            normalized = normalize_name(name)
        except InvalidInput:
            raise NotFound("No such project.") from None
        if normalized != name:
            raise Redirect(normalized)
        return normalized

    def projects(self) -> list[str]:
        return self._index.project_names()

    def project(self, name: str) -> ProjectPage:
        """A registered project's published files; a reserved name is not visible until
        its first release is published (PEP 694)."""
        project = self._normalized(name)
        record = self._sessions.get_project(project)
        if record is None or record.status is not ProjectStatus.REGISTERED:
            raise NotFound("No such project.")
        return ProjectPage(
            project, self._published_files(record), record.revision, record.last_commit
        )

    def _published_files(self, record: ProjectRecord) -> list[IndexFile]:
        """The project's published files, read again only when a publish changed them
        (ProjectRecord.revision: one read of the project says so): from this container's
        cache, else from the revision's listing, else from the index (then listed for
        the next cold container). Commit markers are read after the project, so the files
        are at least as new as its revision; a listing of a revision may so list a
        publish committed just after it, whole (invariant 2), which is published."""
        cached = self._published_cache.get(record.name)
        if cached is not None and cached[0] == record.state:
            self._published_cache.move_to_end(record.name)
            return cached[1]
        # Named by the revision and the commit that made it (ProjectRecord.last_commit:
        # a restored table counts revisions again); a project last published before
        # commits were named has no listing until its next publish.
        key = f"{LISTINGS_PREFIX}{record.name}/{record.revision}-{record.last_commit}.json"
        rows = self._listing(key) if record.last_commit else None
        if rows is None:
            rows = [
                [getattr(f, field) for field in _LISTED]
                for f in self._index.published_files(record.name)
            ]
            if record.last_commit:
                self._store_listing(key, rows)
        files = [self._listed_file(row) for row in rows]
        self._published_cache[record.name] = (record.state, files)
        while len(self._published_cache) > PUBLISHED_CACHE_PROJECTS:
            self._published_cache.popitem(last=False)
        return files

    def _listing(self, key: str) -> list[list[Any]] | None:
        """A stored listing's rows; None when there is none (or it cannot be read: the
        index then answers from the store, as without listings)."""
        try:
            rows = json.loads(b"".join(self._blobs.stream(key)))
        except BlobGone:
            return None
        except Exception:
            _log.warning("listing %s not read; reading the index instead", key, exc_info=True)
            return None
        if not isinstance(rows, list) or not all(
            isinstance(row, list) and len(row) == len(_LISTED) for row in rows
        ):
            _log.warning("listing %s is not a listing; reading the index instead", key)
            return None
        return rows

    def _store_listing(self, key: str, rows: list[list[Any]]) -> None:
        """Store a revision's listing for the next cold container; a failure costs that
        container the query this one made, nothing more."""
        try:
            self._blobs.put_new(key, json.dumps(rows, separators=(",", ":")).encode())
        except Exception:
            _log.warning("listing %s not stored", key, exc_info=True)

    # -- stages -------------------------------------------------------------------------

    def stage(self, token: str) -> SessionRecord:
        """The live session whose token this is; 404 for anything else, revealing
        nothing (not whether the token ever existed)."""
        session = self._sessions.get_session(session_id_for(token)) if token else None
        if (
            session is None
            or not hmac.compare_digest(session.token, token)
            or session.status.terminal
        ):
            raise NotFound("No such stage.")
        return session

    def stage_projects(self, token: str) -> list[str]:
        session = self.stage(token)
        return sorted(set(self.projects()) | {session.project})

    def stage_project(self, token: str, name: str) -> ProjectPage:
        """The project as it will be once the session is published: its published files
        plus the session's completed ones. Other projects are served as published, so
        the stage works as an installer's only index."""
        session = self.stage(token)
        project = self._normalized(name)
        if project != session.project:
            return self.project(project)
        record = self._sessions.get_project(project)
        registered = record is not None and record.status is ProjectStatus.REGISTERED
        published = self._published_files(record) if record and registered else []
        _, files = self._sessions.get_session_and_files(session.id)
        staged = [
            self._staged(token, session, f) for f in files if f.status is FileStatus.COMPLETED
        ]
        return ProjectPage(project, published + staged)

    def _staged(self, token: str, session: SessionRecord, f: FileRecord) -> IndexFile:
        return IndexFile(
            filename=f.filename,
            version=session.version,
            url=f"{self._public}/stage/{token}/files/{f.id}/{quote(f.filename)}",
            hashes=f.hashes,
            size=f.size,
            requires_python=f.requires_python,
            metadata_sha256=f.metadata_sha256,
            uploaded_at=f.uploaded_at,
        )

    def staged_download(self, token: str, file_id: str, filename: str) -> str:
        """A short-lived presigned URL for a staged file (or its `.metadata`)."""
        session = self.stage(token)
        want_metadata = filename.endswith(".metadata")
        base = filename.removesuffix(".metadata") if want_metadata else filename
        file = self._sessions.get_file(session.id, file_id) if is_random_id(file_id) else None
        if file is None or file.status is not FileStatus.COMPLETED or file.filename != base:
            raise NotFound("No such staged file.")
        key = metadata_key(file.key) if want_metadata else file.key
        return self._blobs.presign_get(key, STAGE_URL_SECONDS)
