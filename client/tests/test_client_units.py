"""The client's own rules, without a server: grouping files by release, credentials,
problem documents, mechanism choice, and the retry policy (against a stand-in HTTP
transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from wharf_client import credentials
from wharf_client.api import Api
from wharf_client.credentials import resolve
from wharf_client.dists import releases
from wharf_client.errors import NetworkError, Problem, Refused, UsageError
from wharf_client.mechanisms import HTTP_POST_BYTES, Parts, choose


def write(directory: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = directory / name
        path.write_bytes(b"not checked here: " + name.encode())
        paths.append(path)
    return paths


def test_files_are_grouped_by_release(tmp_path: Path) -> None:
    paths = write(
        tmp_path,
        "Foo_Bar-1.0-py3-none-any.whl",
        "foo_bar-1.0.tar.gz",
        "foo_bar-1.0.0-cp312-cp312-win_amd64.whl",  # 1.0.0 == 1.0 (PEP 440)
        "other-2.0.tar.gz",
    )
    found = releases(paths)
    assert [(r.project, str(r.version), len(r.dists)) for r in found] == [
        ("foo-bar", "1.0", 3),
        ("other", "2.0", 1),
    ]
    assert found[0].size == sum(p.stat().st_size for p in paths[:3])


@pytest.mark.parametrize(
    "name", ["README.md", "foo-1.0.zip", "foo-1.0-py3-none.whl", "foo-x.y.z.tar.gz"]
)
def test_files_that_are_not_distributions_are_usage_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError) as caught:
        releases(write(tmp_path, name))
    assert name in str(caught.value)


def test_a_missing_or_repeated_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        releases([tmp_path / "foo-1.0.tar.gz"])
    (path,) = write(tmp_path, "foo-1.0.tar.gz")
    with pytest.raises(UsageError):
        releases([path, path])


def test_credentials_come_from_the_command_line_then_the_environment_then_pypirc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pypirc = tmp_path / ".pypirc"
    pypirc.write_text(
        "[distutils]\nindex-servers = wharf\n\n[wharf]\n"
        "repository = https://idx.example/upload/\nusername = __token__\npassword = from-pypirc\n"
    )
    monkeypatch.delenv("WHARF_TOKEN", raising=False)
    monkeypatch.delenv("WHARF_REPOSITORY_URL", raising=False)
    url = "https://idx.example/upload/"
    assert resolve(url, "given", pypirc=pypirc).token == "given"
    assert resolve(url, None, pypirc=pypirc).token == "from-pypirc"
    assert resolve(None, None, "wharf", pypirc=pypirc).url == url
    monkeypatch.setenv("WHARF_TOKEN", "from-env")
    assert resolve(url, None, pypirc=pypirc).token == "from-env"
    with pytest.raises(UsageError):
        resolve(None, None, "nosuch", pypirc=pypirc)
    monkeypatch.delenv("WHARF_TOKEN")
    # Last, the keyring (never the developer's own: replaced here), asked for the URL.
    asked: list[str] = []

    def nothing_stored(url: str) -> None:
        asked.append(url)

    monkeypatch.setattr(credentials, "_from_keyring", nothing_stored)
    assert resolve("https://elsewhere/upload/", None, pypirc=pypirc).token is None
    monkeypatch.setattr(credentials, "_from_keyring", lambda u: "from-keyring")
    assert resolve("https://elsewhere/upload/", None, pypirc=pypirc).token == "from-keyring"
    assert resolve(url, None, pypirc=pypirc).token == "from-pypirc"
    assert asked == ["https://elsewhere/upload/"]


def test_a_token_is_trimmed_and_a_garbled_one_refused_unshown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WHARF_TOKEN", raising=False)
    url = "https://idx.example/upload/"
    assert resolve(url, "wharf_secret\n", pypirc=tmp_path / "none").token == "wharf_secret"
    with pytest.raises(UsageError) as caught:
        resolve(url, "wharf_se\x00cret", pypirc=tmp_path / "none")
    shown = str(caught.value)
    assert "wharf_se" not in shown and "cret" not in shown


def test_a_problem_is_shown_as_title_detail_and_each_field_error() -> None:
    body = {
        "title": "Bad request",
        "status": 400,
        "detail": "The file upload session request is not valid.",
        "errors": [{"source": "filename", "message": "not a wheel"}],
    }
    shown = str(Refused(Problem.from_answer(400, body, "Bad Request"), "foo-1.0.zip"))
    assert shown.splitlines() == [
        "foo-1.0.zip",
        "Bad request (400)",
        "The file upload session request is not valid.",
        "  filename: not a wheel",
    ]
    assert Problem.from_answer(502, "<html>", "Bad Gateway").lines() == ["Bad Gateway (502)"]


def test_the_servers_preferred_mechanism_that_the_client_speaks_is_chosen() -> None:
    vendor = "vnd-wharf-s3multipart-presigned-v1"
    assert choose([vendor, HTTP_POST_BYTES]) == vendor
    assert choose(["vnd-acme-carrier-pigeon", HTTP_POST_BYTES, vendor]) == HTTP_POST_BYTES
    assert choose(["vnd-other-s3multipart-presigned-v1"]) == "vnd-other-s3multipart-presigned-v1"
    assert choose([]) == HTTP_POST_BYTES


class Script:
    """A stand-in server: answers in order, records what was asked."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.method)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        body: dict[str, Any] = {"title": "t", "status": answer}
        return httpx.Response(answer, content=json.dumps(body).encode())


def api_with(script: Script) -> Api:
    api = Api("secret", sleep=lambda _: None)
    api._http = httpx.Client(transport=httpx.MockTransport(script))
    return api


def test_idempotent_steps_are_retried_on_429_5xx_and_cut_connections() -> None:
    script = Script(503, httpx.RemoteProtocolError("cut"), 429, 200)
    assert api_with(script).call("GET", "http://s/x", idempotent=True).status == 200
    assert len(script.calls) == 4


def test_other_steps_are_tried_once() -> None:
    script = Script(503)
    with pytest.raises(NetworkError):  # a 5xx is the server not working: exit code 4
        api_with(script).call("POST", "http://s/publish", {}, idempotent=False)
    assert len(script.calls) == 1
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(NetworkError):
        api_with(script).call("POST", "http://s/publish", {}, idempotent=False)


def test_refusals_are_not_retried() -> None:
    script = Script(403, 200)
    with pytest.raises(Refused) as caught:
        api_with(script).call("GET", "http://s/x", idempotent=True)
    assert caught.value.problem.status == 403 and len(script.calls) == 1


def test_a_terminal_gets_a_bar_per_file_and_one_for_the_release() -> None:
    import io

    from rich.console import Console
    from wharf_client.progress import Bars

    screen = io.StringIO()
    bars = Bars(Console(file=screen, force_terminal=True, width=120))
    bars.release("demo 1.0", 300)
    bars.file("demo-1.0.tar.gz", 100)
    bars.file("demo-1.0-py3-none-any.whl", 200)
    bars.sent("demo-1.0.tar.gz", 100)
    bars.step("a step")
    bars.close()
    shown = screen.getvalue()
    for label in ("demo 1.0", "  demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl", "a step"):
        assert label in shown
    # What was sent advances its file's bar and the release's.
    tasks = {t.description: t.completed for t in bars._progress.tasks}
    assert tasks == {"demo 1.0": 100, "  demo-1.0.tar.gz": 100, "  demo-1.0-py3-none-any.whl": 0}


def test_a_part_signed_at_creation_is_sent_without_asking_and_412_means_stored(
    tmp_path: Path,
) -> None:
    """A file of one part comes with its URL signed: the client PUTs it straight away
    (no signing request), and a 412 (an earlier attempt stored it: the URL writes once)
    counts as sent; `complete` then checks the bytes."""
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(b"wheel bytes")
    [[dist]] = [r.dists for r in releases([path])]
    asked: list[tuple[str, str, dict[str, str]]] = []

    def storage(request: httpx.Request) -> httpx.Response:
        asked.append((request.method, str(request.url), dict(request.headers)))
        return httpx.Response(412)

    api = Api("secret", sleep=lambda _: None)
    api._http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    api.storage = httpx.Client(transport=httpx.MockTransport(storage))
    signed = {"number": 1, "url": "http://s3/put", "headers": {"If-None-Match": "*"}}
    mechanism = {
        "part_size": 8 << 20,
        "part_count": 1,
        "parts_url": "http://s/p",
        "parts": [signed],
    }
    sent: list[int] = []
    assert Parts(api, dist, mechanism, 4, sent.append).send(fresh=True) == 1
    assert [(m, u) for m, u, _ in asked] == [("PUT", "http://s3/put")]
    assert asked[0][2]["if-none-match"] == "*"
    assert sent == [dist.size]
