"""What installers read: the simple repository API's content for published projects, and
for a stage (PEP 694 "Staged Previews"), which adds one session's completed files."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from packaging.version import Version

from ..domain.errors import NotFound
from ..domain.names import InvalidInput, normalize_name, release_key
from ..domain.ports import BlobGone, BlobStore, IndexStore, Listed, SessionStore
from ..domain.records import (
    FileRecord,
    ProjectRecord,
    ProjectState,
    ProjectStatus,
    PublishedFile,
    SessionRecord,
)
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
# A project's published files as one container last listed them, stored for the next
# cold container, which then reads one object rather than query every file of the
# project (issue 13: a first read of 2,000 files). One per project, replaced by the first
# cold container to read a newer revision: it reads the listing, then only what the
# commits it does not list added. Private (never tagged public: the edge does not serve
# it); the bucket's lifecycle rules delete replaced listings after a day and any after a
# while (infra/template.yaml), and one so deleted is stored again by its next reader.
# The format is in the prefix: another format, another prefix.
LISTINGS_PREFIX = "files/_listings/v2/"
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
    # The project's state the files were read under (ProjectRecord.state): the page is
    # the same while it is (files are immutable and appear only with a commit). None
    # for a stage's page.
    state: ProjectState | None = None

    @property
    def revision(self) -> int | None:
        return None if self.state is None else self.state[0]

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


def _listing_key(project: str) -> str:
    return f"{LISTINGS_PREFIX}{project}.json"


# What each of a listed file's fields may be (_LISTED's order), as JSON gives them back.
_LISTED_TYPES = (str, str, str, dict, int, str | None, str | None, int | None, str | None)


def _listable(row: Any) -> bool:
    """Whether a stored listing's row renders as a published file: the simple API renders
    what it lists without checking it again, so a listing of anything else is not used."""
    if not isinstance(row, list) or len(row) != len(_LISTED):
        return False
    if not all(isinstance(value, kind) for value, kind in zip(row, _LISTED_TYPES, strict=True)):
        return False
    _parsed(row[1])  # InvalidVersion otherwise
    return all(isinstance(k, str) and isinstance(v, str) for k, v in row[3].items())


@functools.lru_cache(maxsize=4096)
def _parsed(version: str) -> tuple[Version, str]:
    """A published version and its release key, parsed once per process: every render
    of a project page needs them for every file."""
    parsed = Version(version)
    return parsed, release_key(parsed)


@dataclass(frozen=True)
class _Published:
    """A project's published files as read under its state (ProjectRecord.state): the
    sessions whose commit markers were read, and their files, as listed (_LISTED's fields)
    and as the simple API renders them."""

    state: ProjectState
    sessions: dict[str, int | None]  # each with when it committed (Commit.committed_at)
    rows: list[list[Any]]
    files: list[IndexFile]


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
        # project -> its published files as last read: files are immutable and appear
        # only with a commit, so while the state (ProjectRecord.state) is the same a
        # warm container reads nothing but the project item, and after a commit only
        # what the new commits added.
        self._published_cache: OrderedDict[str, _Published] = OrderedDict()
        # The local stack serves requests, and runs its worker, on threads of one process.
        self._cache_lock = threading.Lock()

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
        return ProjectPage(project, self._published_files(record), record.state)

    def _published_files(self, record: ProjectRecord) -> list[IndexFile]:
        """The project's published files, read again only when a publish changed them
        (ProjectRecord.state: one read of the project says so). A container that has
        them for an older state reads only what the commits since added; one that has
        none reads the project's listing, which is either of this state (done) or the
        older state to add to, and then lists the project as it found it."""
        with self._cache_lock:
            cached = self._published_cache.get(record.name)
            if cached is not None and cached.state == record.state:
                self._published_cache.move_to_end(record.name)
                return cached.files
        base = cached
        if base is None:
            base = self._listing(record.name)
            # A project last published before commits were named (no last_commit) is
            # read from its commits until its next publish.
            if base is not None and record.last_commit is not None and base.state == record.state:
                return self._remember(record.name, base)
        published = self._read(record, base)
        if cached is None and record.last_commit is not None:
            self._store_listing(record.name, published)
        return self._remember(record.name, published)

    def _read(self, record: ProjectRecord, base: _Published | None) -> _Published:
        """The project's files as of its commit markers, read after the project (so as
        new as its state at least; a publish committed just after it is there whole,
        invariant 2): `base` and the files of the commits it does not list, when those
        are of one release (one query, whatever the project's size); else every file.
        A base whose commits the markers do not record as it does (a table restored to
        an earlier point in time: a commit it lists is not there, or was made again,
        after the restore, with other files) is not used."""
        commits = self._index.commits(record.name)
        sessions = {session: commit.committed_at for session, commit in commits.items()}
        if base is not None and all(
            session in sessions and sessions[session] == committed_at
            for session, committed_at in base.sessions.items()
        ):
            new = frozenset(sessions.keys() - base.sessions.keys())
            releases = {commits[session].version_key for session in new}
            if len(releases) <= 1:
                added = [
                    self._row(f)
                    for version_key in releases
                    for f in self._index.published_files(record.name, new, version_key=version_key)
                ]
                return _Published(
                    record.state,
                    sessions,
                    base.rows + added,
                    base.files + [self._listed_file(row) for row in added],
                )
        rows = [self._row(f) for f in self._index.published_files(record.name, frozenset(commits))]
        return _Published(record.state, sessions, rows, [self._listed_file(row) for row in rows])

    @staticmethod
    def _row(f: PublishedFile) -> list[Any]:
        return [getattr(f, field) for field in _LISTED]

    def _remember(self, project: str, published: _Published) -> list[IndexFile]:
        with self._cache_lock:
            self._published_cache[project] = published
            self._published_cache.move_to_end(project)
            while len(self._published_cache) > PUBLISHED_CACHE_PROJECTS:
                self._published_cache.popitem(last=False)
        return published.files

    def list_project(self, name: str) -> None:
        """List a project as a cold container would (its listing brought up to date) after
        a publish, so that the readers that come next read one object: the worker's, for
        a release too large to publish within the request."""
        with self._cache_lock:
            self._published_cache.pop(name, None)
        record = self._sessions.get_project(name)
        if record is not None and record.status is ProjectStatus.REGISTERED:
            self._published_files(record)

    def _listing(self, project: str) -> _Published | None:
        """The project's stored listing; None when there is none (or it cannot be read:
        the index then answers from the store, as without listings)."""
        key = _listing_key(project)
        try:
            stored = json.loads(b"".join(self._blobs.stream(key)))
            (revision, commit, committed_at), sessions, rows = (
                stored["state"],
                stored["sessions"],
                stored["files"],
            )
            if not (
                isinstance(revision, int)
                and isinstance(commit, str | None)
                and isinstance(committed_at, int | None)
                and isinstance(sessions, dict)
                and all(isinstance(at, int | None) for at in sessions.values())
                and isinstance(rows, list)
                and all(map(_listable, rows))
            ):
                raise ValueError("not a listing")
            files = [self._listed_file(row) for row in rows]
        except BlobGone:
            return None
        except Exception:
            _log.warning("listing %s not read; reading the index instead", key, exc_info=True)
            return None
        return _Published((revision, commit, committed_at), sessions, rows, files)

    def _store_listing(self, project: str, published: _Published) -> None:
        """Store the project's listing for the next cold container; a failure costs that
        container the reads this one made, nothing more. Two containers listing at once
        store the same files, or one an older state, which the next reader adds to."""
        key = _listing_key(project)
        listing = {
            "state": published.state,
            "sessions": published.sessions,
            "files": published.rows,
        }
        try:
            self._blobs.replace(key, json.dumps(listing, separators=(",", ":")).encode())
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
