"""The simple repository API and stage previews, through chalice.test.Client."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from chalicelib import runtime
from chalicelib.adapters.memory.clock import FixedClock
from chalicelib.config import Settings
from chalicelib.http import simple
from chalicelib.http.problems import NotAcceptable
from chalicelib.http.simple import (
    SIMPLE_HTML,
    SIMPLE_JSON,
    STAGE_CACHE,
    TEXT_HTML,
    ProjectPages,
    negotiate,
    project_body,
)
from chalicelib.runtime import Services
from chalicelib.services.index import (
    LISTINGS_PREFIX,
    PAGES_PREFIX,
    STORED_PAGE_GRACE,
    IndexFile,
    IndexService,
    ProjectPage,
)
from chalicelib.services.publishing import EXPOSE_GRACE_SECONDS
from tests.conftest import PUBLIC_URL, Api, wheel_name
from tests.dists import dist

JSON = {"Accept": SIMPLE_JSON}
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
SDIST = "demo-1.0.tar.gz"
WHEEL = wheel_name("demo", "1.0")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, SIMPLE_HTML),
        ("", SIMPLE_HTML),
        ("*/*", SIMPLE_HTML),
        ("text/html", TEXT_HTML),
        (SIMPLE_JSON, SIMPLE_JSON),
        (PIP_ACCEPT, SIMPLE_JSON),
        ("application/vnd.pypi.simple.v1+json;q=0.2, text/html", TEXT_HTML),
        ("application/vnd.pypi.simple.latest+json", SIMPLE_JSON),
        ("application/vnd.pypi.simple.v2+json, */*;q=0.1", SIMPLE_HTML),
        ("application/json, text/html;q=0.5", TEXT_HTML),
        ("text/html, */*", TEXT_HTML),
        ("text/*", TEXT_HTML),
        ("application/*", SIMPLE_HTML),
        # q=0 refuses a type even where a wildcard would reach it (RFC 9110 12.4.2).
        (f"{SIMPLE_HTML};q=0, text/*", TEXT_HTML),
        (f"{SIMPLE_JSON};q=0, {SIMPLE_HTML};q=0.5", SIMPLE_HTML),
        (f"text/html;q=0, {SIMPLE_HTML};q=0.1, */*", SIMPLE_HTML),
    ],
)
def test_negotiation_follows_accept(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.pypi.simple.v2+json",
        "application/json",
        f"{SIMPLE_JSON};q=0",
        f"{SIMPLE_HTML};q=0, */*",
        f"{SIMPLE_HTML};q=0, application/*;q=0.9",
        "text/html;q=0, text/*",
        "*/*;q=0",
    ],
)
def test_unsupported_versions_are_406(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        negotiate(accept)


@pytest.fixture
def published(me: Api) -> dict[str, Any]:
    session = me.create_session("demo", "1.0").json()
    me.add_file(session, SDIST)
    me.add_file(session, WHEEL)
    assert me.publish(session).status == 201
    return dict(session)


def test_the_project_page_in_json(api: Api, published: dict[str, Any]) -> None:
    reply = api.get("/simple/demo/", headers={"Accept": PIP_ACCEPT})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == SIMPLE_JSON
    assert reply.headers["Vary"] == "Accept"
    page = reply.json()
    assert page["meta"] == {"api-version": "1.4"}
    assert page["name"] == "demo" and page["versions"] == ["1.0"]
    files = {f["filename"]: f for f in page["files"]}
    assert set(files) == {SDIST, WHEEL}
    wheel = files[WHEEL]
    data = dist(WHEEL)
    assert wheel["hashes"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert wheel["size"] == len(data)
    assert wheel["requires-python"] == ">=3.9"
    assert wheel["url"].startswith("http://wharf.test/files/demo/") and wheel["url"].endswith(
        "/" + WHEEL
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", wheel["upload-time"])
    assert set(wheel["core-metadata"]) == {"sha256"}
    assert wheel["dist-info-metadata"] == wheel["core-metadata"]
    assert "yanked" not in wheel


def test_the_project_page_in_html(api: Api, published: dict[str, Any]) -> None:
    reply = api.get("/simple/demo/")
    assert reply.status == 200 and reply.headers["Content-Type"] == SIMPLE_HTML
    page = reply.body.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="pypi:repository-version" content="1.4">' in page
    sha = hashlib.sha256(dist(WHEEL)).hexdigest()
    anchor = re.search(rf'<a href="([^"]+)"([^>]*)>{re.escape(WHEEL)}</a>', page)
    assert anchor is not None
    assert anchor.group(1).endswith(f"/{WHEEL}#sha256={sha}")
    assert 'data-requires-python="&gt;=3.9"' in anchor.group(2)
    assert 'data-core-metadata="sha256=' in anchor.group(2)
    assert (
        api.get("/simple/demo/", headers={"Accept": "text/html"}).headers["Content-Type"]
        == TEXT_HTML
    )


def test_yanked_files_are_marked() -> None:
    files = [
        IndexFile("demo-1.0.tar.gz", "1.0", "u", {"sha256": "0" * 64}, 1, None, None, None, "bad")
    ]
    assert '"yanked": "bad"' in project_body(SIMPLE_JSON, ProjectPage("demo", files))
    assert 'data-yanked="bad"' in project_body(SIMPLE_HTML, ProjectPage("demo", files))


def test_pages_have_a_strong_etag_and_answer_304(api: Api, published: dict[str, Any]) -> None:
    first = api.get("/simple/demo/", headers=JSON)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    found = re.search(r"max-age=(\d+)", first.headers["Cache-Control"])
    assert found is not None
    max_age = int(found.group(1))
    assert 0 < max_age <= 600
    again = api.get("/simple/demo/", headers={**JSON, "If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    html = api.get("/simple/demo/", headers={"If-None-Match": etag})
    assert html.status == 200 and html.headers["ETag"] != etag


def test_a_new_release_is_visible_on_the_next_get(
    api: Api, me: Api, published: dict[str, Any]
) -> None:
    before = api.get("/simple/demo/", headers=JSON)
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    assert api.get("/simple/demo/", headers=JSON).json() == before.json()
    me.publish(session)
    after = api.get("/simple/demo/", headers={**JSON, "If-None-Match": before.headers["ETag"]})
    assert after.status == 200
    assert after.json()["versions"] == ["1.0", "2.0"]


def test_a_page_is_rendered_once_per_publish(
    api: Api, me: Api, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering and hashing a page of thousands of files is most of a warm request: it
    is done again only when a publish changed what the page lists."""
    rendered: list[str] = []

    def counting(kind: str, page: ProjectPage) -> str:
        rendered.append(kind)
        return project_body(kind, page)

    monkeypatch.setattr(simple, "project_body", counting)
    first = api.get("/simple/demo/", headers=JSON)
    etag = first.headers["ETag"]
    assert api.get("/simple/demo/", headers={**JSON, "If-None-Match": etag}).status == 304
    assert api.get("/simple/demo/", headers=JSON).body == first.body
    assert len(rendered) == 1
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    me.publish(session)
    assert api.get("/simple/demo/", headers=JSON).json()["versions"] == ["1.0", "2.0"]
    assert rendered[-1] == SIMPLE_JSON


def cold_container(services: Services) -> None:
    """The app from now on as a new Lambda container runs it: nothing read yet."""
    index = IndexService(services.store, services.store, services.blobs, PUBLIC_URL)
    runtime.install(replace(services, index=index))


LISTING = f"{LISTINGS_PREFIX}demo.json"


def stored_listing(services: Services) -> dict[str, Any]:
    listing: dict[str, Any] = json.loads(b"".join(services.blobs.stream(LISTING)))
    return listing


def spied_reads(monkeypatch: pytest.MonkeyPatch, services: Services) -> list[str | None]:
    """From now on, each query of the project's files: the release it is of (None: all)."""
    reads: list[str | None] = []
    store = type(services.store)
    original = store.published_files

    def published_files(
        self: Any,
        project: str,
        committed: frozenset[str] | None = None,
        *,
        version_key: str | None = None,
    ) -> Any:
        reads.append(version_key)
        return original(self, project, committed, version_key=version_key)

    monkeypatch.setattr(store, "published_files", published_files)
    return reads


def publish(me: Api, version: str, *filenames: str) -> None:
    session = me.create_session("demo", version).json()
    for filename in filenames:
        me.add_file(session, filename)
    assert me.publish(session).status == 201


def test_a_cold_container_serves_the_revision_as_listed_by_the_first(
    api: Api,
    me: Api,
    services: Services,
    published: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = api.get("/simple/demo/", headers=JSON)
    project = services.store.get_project("demo")
    assert project is not None
    listing = stored_listing(services)
    assert tuple(listing["state"]) == project.state
    cold_container(services)
    # The listing is what the cold container reads: neither commits nor files.
    with monkeypatch.context() as patch:
        patch.setattr(type(services.store), "published_files", None)
        patch.setattr(type(services.store), "commits", None)
        assert api.get("/simple/demo/", headers=JSON).body == first.body
    # A publish: the next cold container reads the listing and the new release's files
    # only, then lists the project as it is now.
    publish(me, "2.0", "demo-2.0.tar.gz")
    cold_container(services)
    reads = spied_reads(monkeypatch, services)
    assert api.get("/simple/demo/", headers=JSON).json()["versions"] == ["1.0", "2.0"]
    assert reads == ["2"]
    project = services.store.get_project("demo")
    assert project is not None and project.revision == 2
    listing = stored_listing(services)
    assert tuple(listing["state"]) == project.state
    assert sorted(row[0] for row in listing["files"]) == sorted([SDIST, WHEEL, "demo-2.0.tar.gz"])
    # Private: the edge serves published files only.
    assert api.get(f"/{LISTING}").status in (403, 404)


def test_a_warm_container_reads_only_what_a_publish_added(
    api: Api,
    me: Api,
    services: Services,
    published: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.get("/simple/demo/", headers=JSON)
    publish(me, "1.0", wheel_name("demo", "1.0", "cp312-none-any"))  # more files of 1.0
    publish(me, "1.0", wheel_name("demo", "1.0", "cp313-none-any"))
    reads = spied_reads(monkeypatch, services)
    page = api.get("/simple/demo/", headers=JSON).json()
    assert len(page["files"]) == 4
    assert reads == ["1"]  # two commits since, of one release: one query of it
    # Commits of two releases since: every file is read again, in one query.
    publish(me, "2.0", "demo-2.0.tar.gz")
    publish(me, "3.0", "demo-3.0.tar.gz")
    assert api.get("/simple/demo/", headers=JSON).json()["versions"] == ["1.0", "2.0", "3.0"]
    assert reads == ["1", None]
    # The same files as a container that read them all at once.
    cold = IndexService(services.store, services.store, services.blobs, PUBLIC_URL)
    services.blobs.delete(LISTING)
    assert sorted(cold.project("demo").files, key=lambda f: f.filename) == sorted(
        services.index.project("demo").files, key=lambda f: f.filename
    )


def test_a_listing_that_cannot_be_read_is_not_used(
    api: Api, services: Services, published: dict[str, Any]
) -> None:
    services.blobs.replace(LISTING, b'{"not": "a listing"}')
    page = api.get("/simple/demo/", headers=JSON)
    assert page.status == 200
    assert [f["filename"] for f in page.json()["files"]] == sorted([SDIST, WHEEL])
    assert stored_listing(services)["state"][0] == 1  # and listed again


@pytest.mark.parametrize(
    "row",
    [
        [SDIST, "1.0", "files/demo/x/demo-1.0.tar.gz", ["sha256"], 3, None, None, 1, None],
        [SDIST, "not a version", "files/demo/x/demo-1.0.tar.gz", {}, 3, None, None, 1, None],
        [SDIST, "1.0", "files/demo/x/demo-1.0.tar.gz", {"sha256": 1}, 3, None, None, 1, None],
        [SDIST, "1.0", "files/demo/x/demo-1.0.tar.gz", {}, 3, None, None, "1", None],
    ],
)
def test_a_listing_of_files_that_do_not_render_is_not_used(
    api: Api, services: Services, published: dict[str, Any], row: list[Any]
) -> None:
    """Rendered as listed, a row of another shape would fail the page (a 500), and be
    copied into every listing after it."""
    api.get("/simple/demo/", headers=JSON)
    listing = stored_listing(services)
    listing["files"][0] = row
    services.blobs.replace(LISTING, json.dumps(listing).encode())
    cold_container(services)
    page = api.get("/simple/demo/", headers=JSON)
    assert page.status == 200
    assert [f["filename"] for f in page.json()["files"]] == sorted([SDIST, WHEEL])
    assert stored_listing(services)["files"] != listing["files"]  # listed again


def snapshot(aws: tuple[Any, Any, Any], settings: Settings) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws[0].scan(TableName=settings.table_name, ConsistentRead=True)[
        "Items"
    ]
    return items


def restore(aws: tuple[Any, Any, Any], settings: Settings, items: list[dict[str, Any]]) -> None:
    """The table as it was when `items` were taken (point-in-time recovery)."""
    dynamodb, table = aws[0], settings.table_name
    for item in snapshot(aws, settings):
        dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    for item in items:
        dynamodb.put_item(TableName=table, Item=item)


def filenames(api: Api) -> list[str]:
    return sorted(f["filename"] for f in api.get("/simple/demo/", headers=JSON).json()["files"])


def test_a_table_restored_to_an_earlier_point_meets_no_listing_of_its_other_history(
    api: Api,
    me: Api,
    services: Services,
    aws: tuple[Any, Any, Any],
    settings: Settings,
    clock: FixedClock,
) -> None:
    """Point-in-time recovery counts revisions again: the revision a publish makes after
    the restore is the one a listing was stored for before it, made by another commit;
    neither the listing nor a warm container's files of the other history are read."""
    before = snapshot(aws, settings)
    publish(me, "1.0", SDIST)
    assert filenames(api) == [SDIST]  # listed: revision 1
    restore(aws, settings, before)
    clock.advance(3600)  # restored later
    publish(me, "1.0", WHEEL)  # revision 1 again
    assert filenames(api) == [WHEEL]  # the warm container
    cold_container(services)
    assert filenames(api) == [WHEEL]


def test_a_session_committed_again_after_a_restore_is_read_again(
    api: Api,
    me: Api,
    services: Services,
    aws: tuple[Any, Any, Any],
    settings: Settings,
    clock: FixedClock,
) -> None:
    """Restored to before a session's publish, the session is open again: published again
    with another file, it is another commit of the same session, at another time."""
    publish(me, "1.0", SDIST)
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    before = snapshot(aws, settings)
    assert me.publish(session).status == 201
    assert filenames(api) == sorted([SDIST, "demo-2.0.tar.gz"])  # listed, and kept warm
    restore(aws, settings, before)
    clock.advance(60)  # restored later, the session still live
    me.add_file(session, wheel_name("demo", "2.0"))
    assert me.publish(session).status == 201  # the same state as before the restore
    everything = sorted([SDIST, "demo-2.0.tar.gz", wheel_name("demo", "2.0")])
    assert filenames(api) == everything
    cold_container(services)
    assert filenames(api) == everything
    publish(me, "3.0", "demo-3.0.tar.gz")  # and after a publish that follows it
    cold_container(services)
    assert filenames(api) == sorted([*everything, "demo-3.0.tar.gz"])


def small_pages(services: Services) -> None:
    """The app from now on: pages above 100 bytes go to storage (WHARF_PAGE_INLINE_MAX)."""
    index = services.index
    pages = ProjectPages(64 * 10**6, index.static_page, index.private_page, inline_max=100)
    runtime.install(replace(services, pages=pages))


def test_a_page_too_large_for_the_api_is_served_from_storage(
    api: Api,
    me: Api,
    published: dict[str, Any],
    services: Services,
) -> None:
    """Lambda answers at most 6 MB: a larger page is written to storage once, public,
    and the client is sent there; the next publish makes another page."""
    small_pages(services)
    first = api.get("/simple/demo/", headers=JSON)
    assert first.status == 302 and first.headers["Vary"] == "Accept"
    location = first.headers["Location"]
    assert location.startswith(PUBLIC_URL + "/files/_pages/demo/") and location.endswith(".json")
    key = location.removeprefix(PUBLIC_URL + "/")
    assert services.blobs.is_public(key)
    page = services.index.project("demo")
    assert b"".join(services.blobs.stream(key)).decode() == project_body(SIMPLE_JSON, page)
    assert api.get("/simple/demo/", headers=JSON).headers["Location"] == location
    html = api.get("/simple/demo/").headers["Location"]
    assert html.endswith(".html") and html != location
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    me.publish(session)
    assert api.get("/simple/demo/", headers=JSON).headers["Location"] != location


def test_stored_pages_are_deleted_a_day_after_newer_ones_replace_them(
    api: Api,
    me: Api,
    published: dict[str, Any],
    services: Services,
    clock: FixedClock,
) -> None:
    small_pages(services)
    old = {api.get("/simple/demo/", headers=kind).headers["Location"] for kind in (JSON, {})}
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    me.publish(session)
    new = {api.get("/simple/demo/", headers=kind).headers["Location"] for kind in (JSON, {})}
    stored = services.blobs.listed(PAGES_PREFIX)
    assert {PUBLIC_URL + "/" + page.key for page in stored} == old | new
    # When the first page of the newer revision was stored: the old ones' grace starts.
    replaced = min(p.written_at for p in stored if PUBLIC_URL + "/" + p.key in new)
    clock.value = replaced + STORED_PAGE_GRACE - 1
    services.sweep.run()  # cached redirects may still send clients to the old pages
    assert len(services.blobs.listed(PAGES_PREFIX)) == 4
    clock.value = replaced + STORED_PAGE_GRACE
    services.sweep.run()
    assert {PUBLIC_URL + "/" + p.key for p in services.blobs.listed(PAGES_PREFIX)} == new
    for location in new:  # still served
        assert services.blobs.is_public(location.removeprefix(PUBLIC_URL + "/"))


def test_a_stage_page_too_large_for_the_api_is_stored_privately(
    api: Api,
    me: Api,
    published: dict[str, Any],
    services: Services,
) -> None:
    """A stage's page is private: stored untagged (the edge does not serve it) and
    handed out through a short-lived presigned URL that answers its media type."""
    small_pages(services)
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    staged = api.get(stage_path(session) + "demo/", headers=JSON)
    assert staged.status == 302 and staged.headers["Cache-Control"] == STAGE_CACHE
    location = staged.headers["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    path = location.split("?", 1)[0]
    key = path[path.index("/files/_stage_pages/") + 1 :]
    assert not services.blobs.is_public(key)
    import requests  # moto answers the presigned URL in-process

    page = requests.get(location, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"] == SIMPLE_JSON
    assert page.headers["Cache-Control"] == STAGE_CACHE
    assert "demo-2.0.tar.gz" in [f["filename"] for f in page.json()["files"]]
    assert api.get(stage_path(session) + "demo/").headers["Location"] != location  # HTML


def test_versions_list_a_release_once_in_version_order(
    api: Api, me: Api, published: dict[str, Any]
) -> None:
    # 1.0.0 is the release 1.0 (names.release_key): its new wheel joins it, and
    # `versions` names the release once, as first published.
    later = me.create_session("demo", "1.0.0").json()
    me.add_file(later, wheel_name("demo", "1.0.0", "py2-none-any"))
    assert me.publish(later).status == 201
    for version in ("10.0", "2.0"):
        session = me.create_session("demo", version).json()
        me.add_file(session, f"demo-{version}.tar.gz")
        assert me.publish(session).status == 201
    page = api.get("/simple/demo/", headers=JSON).json()
    assert page["versions"] == ["1.0", "2.0", "10.0"]
    assert len(page["files"]) == 5


def test_names_are_normalized_by_redirect(api: Api, published: dict[str, Any]) -> None:
    reply = api.get("/simple/Demo/")
    assert reply.status == 301
    assert reply.headers["Location"] == "http://wharf.test/simple/demo/"


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/simple", "/simple/"),
        ("/simple/demo", "/simple/demo/"),
        ("/simple/Demo", "/simple/Demo/"),  # then normalized by the next redirect
        ("/stage/{token}", "/stage/{token}/"),
        ("/stage/{token}/demo", "/stage/{token}/demo/"),
    ],
)
def test_pages_redirect_to_their_trailing_slash(
    api: Api, me: Api, published: dict[str, Any], path: str, canonical: str
) -> None:
    # simple-repository-api.rst: page URLs MUST end with '/'; others redirect there.
    token = me.create_session("demo", "2.0").json()["session-token"]
    reply = api.get(path.format(token=token), headers=JSON)
    assert reply.status == 301
    assert reply.headers["Location"] == "http://wharf.test" + canonical.format(token=token)
    # A stage URL carries the session token: never cached where others could read it.
    assert ("private" in reply.headers["Cache-Control"]) == path.startswith("/stage/")
    assert api.get(canonical.format(token=token), headers=JSON).status in (200, 301)


def test_unknown_and_reserved_projects_are_404(api: Api, me: Api) -> None:
    me.create_session("reserved", "1.0")
    for name in ("nothing", "reserved", "-bad-"):
        reply = api.get(f"/simple/{name}/", headers=JSON)
        assert reply.status == 404, name
        assert reply.headers["Content-Type"] == "application/problem+json"


def test_406_is_a_problem(api: Api) -> None:
    reply = api.get("/simple/", headers={"Accept": "application/vnd.pypi.simple.v2+json"})
    assert reply.status == 406
    assert reply.headers["Content-Type"] == "application/problem+json"


def test_the_root_lists_registered_projects(api: Api, published: dict[str, Any]) -> None:
    assert api.get("/simple/", headers=JSON).json()["projects"] == [{"name": "demo"}]
    assert 'href="http://wharf.test/simple/demo/"' in api.get("/simple/").body.decode()


# -- stages ----------------------------------------------------------------------------------


def stage_path(session: dict[str, Any]) -> str:
    return str(session["links"]["stage"]).removeprefix("http://wharf.test")


def test_a_stage_shows_published_and_staged_files(
    api: Api, me: Api, published: dict[str, Any]
) -> None:
    session = me.create_session("demo", "2.0").json()
    me.add_file(session, "demo-2.0.tar.gz")
    pending = me.create_file(session, wheel_name("demo", "2.0"), dist(wheel_name("demo", "2.0")))
    assert pending.status == 202
    stage = stage_path(session)
    root = api.get(stage, headers=JSON)
    assert root.status == 200 and root.json()["projects"] == [{"name": "demo"}]
    page = api.get(f"{stage}demo/", headers=JSON)
    assert page.status == 200
    assert "no-cache" in page.headers["Cache-Control"]
    files = {f["filename"]: f for f in page.json()["files"]}
    # Published files plus completed staged ones; the pending wheel is not there yet.
    assert set(files) == {SDIST, WHEEL, "demo-2.0.tar.gz"}
    assert page.json()["versions"] == ["1.0", "2.0"]
    staged = files["demo-2.0.tar.gz"]["url"]
    assert staged.startswith(session["links"]["stage"] + "files/")
    # Not public before publish.
    assert api.get("/simple/demo/", headers=JSON).json()["versions"] == ["1.0"]


def test_staged_files_download_through_a_short_lived_url(
    api: Api, me: Api, services: Services
) -> None:
    session = me.create_session("demo", "1.0").json()
    me.add_file(session, SDIST)
    page = api.get(f"{stage_path(session)}demo/", headers=JSON).json()
    url = page["files"][0]["url"].removeprefix("http://wharf.test")
    download = api.get(url)
    assert download.status == 302
    assert "X-Amz-Expires=300" in download.headers["Location"]
    metadata = api.get(url + ".metadata")
    assert metadata.status == 302 and ".metadata" in metadata.headers["Location"]
    assert api.get(url.replace(SDIST, "demo-9.9.tar.gz")).status == 404
    # Staged objects are not public: the edge (CloudFront) will not serve them.
    sid = session["links"]["session"].rsplit("/", 1)[1]
    _, files = services.store.get_session_and_files(sid)
    assert not services.blobs.is_public(files[0].key)


def test_other_projects_are_served_by_a_stage_as_published(
    api: Api, me: Api, published: dict[str, Any]
) -> None:
    session = me.create_session("other", "1.0").json()
    stage = stage_path(session)
    names = [p["name"] for p in api.get(stage, headers=JSON).json()["projects"]]
    assert names == ["demo", "other"]
    assert len(api.get(f"{stage}demo/", headers=JSON).json()["files"]) == 2


def test_wrong_or_finished_stages_are_404(api: Api, me: Api) -> None:
    session = me.create_session("demo", "1.0").json()
    me.add_file(session, SDIST)
    stage = stage_path(session)
    url = api.get(f"{stage}demo/", headers=JSON).json()["files"][0]["url"]
    token = session["session-token"]
    wrong = stage.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    for path in (wrong, f"{wrong}demo/", "/stage/x/", "/stage/x/demo/"):
        assert api.get(path).status == 404, path
    me.delete(session["links"]["session"])
    assert api.get(stage).status == 404
    assert api.get(f"{stage}demo/").status == 404
    assert api.get(url.removeprefix("http://wharf.test")).status == 404


def test_a_stage_stops_serving_canceled_files(api: Api, me: Api) -> None:
    session = me.create_session("demo", "1.0").json()
    file = me.add_file(session, SDIST)
    stage = stage_path(session)
    assert len(api.get(f"{stage}demo/", headers=JSON).json()["files"]) == 1
    me.delete(file["links"]["file-upload-session"])
    assert api.get(f"{stage}demo/", headers=JSON).json()["files"] == []


def test_published_objects_are_tagged_public(
    me: Api, published: dict[str, Any], services: Services
) -> None:
    for f in services.store.published_files("demo"):
        assert services.blobs.is_public(f.key)
        assert services.blobs.is_public(f.key + ".metadata")


def test_files_left_unexposed_by_a_failed_publisher_are_exposed_by_the_sweep(
    me: Api, services: Services, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def s3_down(keys: Sequence[str]) -> None:
        raise ConnectionError("S3 is unreachable")

    monkeypatch.setattr(services.blobs, "mark_public", s3_down)
    session = me.create_session("demo", "1.0").json()
    me.add_file(session, SDIST)
    # The commit is the publish: it stands although the tagging after it failed.
    assert me.publish(session).status == 201
    (listed,) = services.store.published_files("demo")
    assert not services.blobs.is_public(listed.key)
    monkeypatch.undo()
    services.sweep.run()
    assert not services.blobs.is_public(listed.key)  # too recent: its publisher may be at work
    clock.advance(EXPOSE_GRACE_SECONDS + 1)
    services.sweep.run()
    assert services.blobs.is_public(listed.key)
    assert services.blobs.is_public(listed.key + ".metadata")
    assert services.store.unexposed(clock.now() + 1) == []


def test_one_commit_that_cannot_be_exposed_does_not_hold_up_the_others(
    me: Api, services: Services, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = services.blobs.mark_public
    monkeypatch.setattr(services.blobs, "mark_public", lambda keys: 1 / 0)
    for name in ("demo", "other"):
        session = me.create_session(name, "1.0").json()
        me.add_file(session, f"{name}-1.0.tar.gz")
        me.publish(session)
    clock.advance(EXPOSE_GRACE_SECONDS + 1)
    refused: list[str] = []

    def s3_refuses_the_first_project(keys: Sequence[str]) -> None:
        # Whichever commit the sweep takes first fails, so the test does not depend on
        # the order the outbox lists them in.
        project = keys[0].split("/")[1]
        if refused in ([], [project]):
            refused[:] = [project]
            raise ConnectionError("S3 refuses")
        tag(keys)

    monkeypatch.setattr(services.blobs, "mark_public", s3_refuses_the_first_project)
    services.sweep.run()
    ((_, project, _),) = services.store.unexposed(clock.now())
    assert [project] == refused
    (exposed,) = services.store.published_files({"demo": "other", "other": "demo"}[project])
    assert services.blobs.is_public(exposed.key)


def test_the_sweep_clears_a_successful_publish_without_tagging_or_invalidating_again(
    published: dict[str, Any],
    services: Services,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.adapters.cloudfront import NoEdgeCache

    # The publish leaves its outbox entry (one write fewer in the request): the sweep
    # sees the files public and only takes the entry away.
    assert len(services.store.unexposed(clock.now() + 1)) == 1
    assert isinstance(services.edge, NoEdgeCache)
    invalidated = list(services.edge.invalidated)
    monkeypatch.setattr(services.blobs, "mark_public", lambda keys: 1 / 0)
    clock.advance(EXPOSE_GRACE_SECONDS + 1)
    services.sweep.run()
    assert services.store.unexposed(clock.now() + 1) == []
    assert services.edge.invalidated == invalidated


def test_publishing_invalidates_the_index_pages_at_the_edge(
    published: dict[str, Any], services: Services
) -> None:
    from chalicelib.adapters.cloudfront import NoEdgeCache

    assert isinstance(services.edge, NoEdgeCache)
    assert {"/simple/", "/simple/demo/"} <= set(services.edge.invalidated)
