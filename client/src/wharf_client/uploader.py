"""Publishing a release through PEP 694: one publishing session per release; for each
file a file upload session, its bytes, `complete`, and a wait while it is `processing`;
then `publish` and a wait for `published`.

Rerun after a crash, the same command continues: creating the session answers 409 with
the live session's `Location` (PEP 694 "Multiple Session Creation Requests"), whose
`files` say what is done; completed files with the same bytes are skipped, a pending
file is resumed (the multipart mechanism sends only the parts the server lacks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .api import Api, backoff
from .dists import Dist, Release
from .errors import NetworkError, Problem, Refused
from .mechanisms import HTTP_POST_BYTES, Parts, choose, post_bytes, supported
from .progress import Reporter

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
POLL_SECONDS = 1.0
PUBLISH_ATTEMPTS = 4
MAX_WAIT_SECONDS = 3600.0


@dataclass(frozen=True)
class Options:
    parallel_files: int = 4
    parallel_parts: int = 4
    stage: bool = False


@dataclass(frozen=True)
class Outcome:
    project: str
    version: str
    session_url: str
    stage_url: str
    status: str  # "published", or "open" when staged
    uploaded: list[str]
    skipped: list[str]


def _refusal(what: str, body: Any) -> Refused:
    notices = body.get("notices", []) if isinstance(body, dict) else []
    title = f"{what}: {body.get('status', 'failed')}" if isinstance(body, dict) else what
    return Refused(Problem(409, title, "", [{"source": "", "message": n} for n in notices]))


class Uploader:
    def __init__(self, api: Api, root_url: str, reporter: Reporter, options: Options) -> None:
        self._api = api
        self._root = root_url
        self._report = reporter
        self._options = options

    # -- the session ------------------------------------------------------------------

    def open_session(self, release: Release) -> dict[str, Any]:
        """Create the release's session, or join the live one (a rerun)."""
        label = f"{release.project} {release.version}"
        answer = self._api.call(
            "POST",
            self._root,
            {"name": release.project, "version": str(release.version)},
            # Safe to repeat: a second creation answers 409 pointing at the first.
            idempotent=True,
            expect=(201, 409),
            context=f"{label}: creating the publishing session",
        )
        if answer.status == 201:
            self._report.step(f"{label}: publishing session created")
            return dict(answer.body)
        if not answer.location:
            raise Refused(Problem.from_answer(409, answer.body, "Conflict"), label)
        session = self._api.get(answer.location, context=f"{label}: the session in progress")
        self._report.step(f"{label}: continuing the session in progress")
        return dict(session.body)

    def wait(self, url: str, what: str) -> dict[str, Any]:
        """Poll a status URL while it is `processing`, honouring Retry-After."""
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        while True:
            answer = self._api.get(url, context=what)
            body: dict[str, Any] = answer.body
            if body.get("status") != "processing":
                return body
            if time.monotonic() > deadline:
                raise NetworkError(f"{what}: still processing after {MAX_WAIT_SECONDS:.0f} s")
            self._api.sleep(answer.retry_after(POLL_SECONDS))

    def publish(self, session_url: str, label: str) -> dict[str, Any]:
        """Publish and wait for `published`. The POST is not blindly repeated: after a
        lost or failed answer the session's status says whether it happened, and only an
        unpublished session is asked again (the server refuses a second publish anyway)."""
        for attempt in range(PUBLISH_ATTEMPTS):
            session = self.wait(session_url, f"{label}: the session")
            if session.get("status") == "published":
                return session
            if session.get("status") not in ("open", "error"):
                raise _refusal(f"{label}: cannot publish", session)
            try:
                self._api.call(
                    "POST",
                    session["links"]["publish"],
                    {},
                    idempotent=False,
                    expect=(200, 201, 202),
                    context=f"{label}: publishing",
                )
            except NetworkError:
                self._api.sleep(backoff(attempt))
                continue
            final = self.wait(session_url, f"{label}: publishing")
            if final.get("status") != "published":
                raise _refusal(f"{label}: publishing failed", final)
            return final
        raise NetworkError(f"{label}: publishing kept failing; run the command again")

    # -- a release --------------------------------------------------------------------

    def upload(self, release: Release) -> Outcome:
        label = f"{release.project} {release.version}"
        session = self.open_session(release)
        mechanism = choose(list(session.get("mechanisms") or [HTTP_POST_BYTES]))
        self._report.release(label, release.size)
        uploaded: list[str] = []
        skipped: list[str] = []

        def one(dist: Dist) -> None:
            if self._file(session, dist, mechanism):
                uploaded.append(dist.filename)
            else:
                skipped.append(dist.filename)

        with ThreadPoolExecutor(max(1, self._options.parallel_files)) as pool:
            futures = [pool.submit(one, d) for d in release.dists]
        for future in futures:
            future.result()  # the first failure, after every file had its chance
        links = session["links"]
        self._refuse_leftovers(links["session"], release, label)
        status = "open"
        if not self._options.stage:
            status = self.publish(links["session"], label)["status"]
            self._report.step(f"{label}: published")
        return Outcome(
            release.project,
            str(release.version),
            links["session"],
            links.get("stage", ""),
            status,
            sorted(uploaded),
            sorted(skipped),
        )

    def _refuse_leftovers(self, session_url: str, release: Release, label: str) -> None:
        """A joined session may hold files of an earlier attempt that this command does
        not name: publishing would publish them too (or fail on them). Say so instead."""
        ours = {d.filename for d in release.dists}
        files = self._api.get(session_url, context=label).body.get("files") or {}
        others = sorted(name for name in files if name not in ours)
        if others:
            raise Refused(
                Problem(
                    409,
                    f"{label}: the session in progress also holds files this command does not name",
                    f"Name them too, or delete them (or `wharf cancel {session_url}`).",
                    [{"source": name, "message": files[name].get("status", "")} for name in others],
                )
            )

    # -- a file -----------------------------------------------------------------------

    def _file(self, session: dict[str, Any], dist: Dist, mechanism: str) -> bool:
        """Make the file `completed` in the session; False when it already was, with the
        same bytes."""
        existing = (session.get("files") or {}).get(dist.filename)
        if existing and existing.get("status") == "processing":
            existing = self.wait(existing["link"], f"{dist.filename}: processing") | {
                "link": existing["link"]
            }
        if existing and existing.get("status") == "completed" and self._staged_same(session, dist):
            self._report.step(f"{dist.filename}: already uploaded, skipped")
            self._report.file(dist.filename, dist.size)
            self._report.sent(dist.filename, dist.size)
            return False
        if existing and existing.get("status") == "error":
            # PEP 694: a file in error is deleted before it is uploaded again.
            self._api.call("DELETE", existing["link"], idempotent=True, expect=(204, 404, 409))
        resume = existing["link"] if existing and existing.get("status") == "pending" else None
        if resume is not None:
            try:
                self._send(session, dist, mechanism, resume)
                if self._staged_same(session, dist) is not False:
                    return True
            except Refused:
                pass
            # The pending upload was another attempt's, perhaps of other bytes (the file
            # was rebuilt): start over with these.
            self._api.call("DELETE", resume, idempotent=True, expect=(204, 404, 409))
        self._send(session, dist, mechanism, None)
        return True

    def _send(
        self, session: dict[str, Any], dist: Dist, mechanism: str, resume: str | None
    ) -> None:
        if resume is not None:
            file = self._api.get(resume, context=dist.filename).body
        else:
            file = self._create(session, dist, mechanism)
        links = file["links"]
        details = file["mechanism"]
        identifier = details.get("identifier", mechanism)
        if not supported(identifier):
            raise Refused(Problem(422, f"unsupported mechanism {identifier!r}"), dist.filename)
        self._report.file(dist.filename, dist.size)
        progress: Callable[[int], None] = lambda n: self._report.sent(dist.filename, n)  # noqa: E731
        final = file
        if file.get("status") == "pending":
            if identifier == HTTP_POST_BYTES:
                post_bytes(self._api, dist, details, progress)
            else:
                parts = Parts(self._api, dist, details, self._options.parallel_parts, progress)
                parts.send(fresh=resume is None)
            final = self._complete(links, dist)
        if final.get("status") != "completed":
            final = self.wait(links["file-upload-session"], f"{dist.filename}: verifying")
        if final.get("status") != "completed":
            raise _refusal(f"{dist.filename} was not accepted", final)
        self._report.step(f"{dist.filename}: completed")

    def _create(self, session: dict[str, Any], dist: Dist, mechanism: str) -> dict[str, Any]:
        answer = self._api.call(
            "POST",
            session["links"]["upload"],
            {
                "filename": dist.filename,
                "size": dist.size,
                "hashes": {"sha256": dist.sha256},
                "mechanism": mechanism,
            },
            # Safe to repeat: a second creation answers 409 pointing at the pending one.
            idempotent=True,
            expect=(201, 202, 409),
            context=f"{dist.filename}: starting its upload",
        )
        if answer.status == 409:
            if not answer.location:
                raise Refused(Problem.from_answer(409, answer.body, "Conflict"), dist.filename)
            return dict(self._api.get(answer.location, context=dist.filename).body)
        return dict(answer.body)

    def _complete(self, links: dict[str, str], dist: Dist) -> dict[str, Any]:
        """The file's status after `complete`: `completed` (201), or anything else, which
        the file's own status then settles. Repeated after a lost answer, complete is a
        409 (no longer pending), and its status tells how it ended."""
        answer = self._api.call(
            "POST",
            links["complete"],
            {},
            idempotent=True,
            expect=(200, 201, 202, 409),
            context=f"{dist.filename}: completing",
        )
        return dict(answer.body) if answer.status in (200, 201) and answer.body else {}

    def _staged_same(self, session: dict[str, Any], dist: Dist) -> bool | None:
        """Are the completed file's bytes ours? None when the server cannot tell: the
        file status does not carry hashes; the session's stage index (PEP 694 "Staged
        Previews"), where there is one, lists them."""
        stage = session.get("links", {}).get("stage")
        if not stage:
            return None
        try:
            page = self._api.get(f"{stage.rstrip('/')}/{dist.project}/", accept=SIMPLE_JSON)
        except (NetworkError, Refused):
            return None
        files = page.body.get("files", []) if isinstance(page.body, dict) else []
        hashes = [f.get("hashes", {}) for f in files if f.get("filename") == dist.filename]
        if not hashes:
            return None
        return any(h.get("sha256") == dist.sha256 for h in hashes)
