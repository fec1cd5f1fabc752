"""Real publishing tools against the local stack: twine and `uv publish` speak the legacy
upload API; what they upload is then installable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import Stack, wheel_name
from tests.dists import dist
from tests.test_downloads import clean_env

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def write_dist(directory: Path, *filenames: str) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        (directory / filename).write_bytes(dist(filename))
    return [str(directory / f) for f in filenames]


def published(stack: Stack, project: str) -> set[str]:
    page = stack.api().get(f"/simple/{project}/", headers=JSON).json()
    return {f["filename"] for f in page["files"]}


def test_twine_uploads_a_release(stack: Stack, users: dict[str, str], tmp_path: Path) -> None:
    files = write_dist(tmp_path / "dist", "twinedemo-1.0.tar.gz", wheel_name("twinedemo", "1.0"))
    command = [
        sys.executable,
        "-m",
        "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        f"{stack.base}/legacy/",
        "-u",
        "__token__",
        "-p",
        users["alice"],
        *files,
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=clean_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert published(stack, "twinedemo") == {
        "twinedemo-1.0.tar.gz",
        wheel_name("twinedemo", "1.0"),
    }
    again = subprocess.run(command, capture_output=True, text=True, env=clean_env())
    assert again.returncode != 0  # published files never change


def test_uv_publish_uploads_a_release(stack: Stack, users: dict[str, str], tmp_path: Path) -> None:
    files = write_dist(tmp_path / "dist", wheel_name("uvpub", "1.0"))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "uv"),
            "publish",
            "--publish-url",
            f"{stack.base}/legacy/",
            "--token",
            users["alice"],
            *files,
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert published(stack, "uvpub") == {wheel_name("uvpub", "1.0")}
