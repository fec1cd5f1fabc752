"""Real publishing tools against the local stack: twine and `uv publish` speak the legacy
upload API; what they upload is then installable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import Stack, clean_env, wheel_name
from tests.dists import dist

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def write_dist(directory: Path, *filenames: str) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        (directory / filename).write_bytes(dist(filename))
    return [str(directory / f) for f in filenames]


def published(stack: Stack, project: str) -> set[str]:
    page = stack.api().get(f"/simple/{project}/", headers=JSON).json()
    return {f["filename"] for f in page["files"]}


def twine_upload(stack: Stack, token: str, *files: str) -> subprocess.Popen[str]:
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
        token,
        *files,
    ]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env()
    )


def test_twine_uploads_a_release(stack: Stack, users: dict[str, str], tmp_path: Path) -> None:
    files = write_dist(tmp_path / "dist", "twinedemo-1.0.tar.gz", wheel_name("twinedemo", "1.0"))
    result = twine_upload(stack, users["alice"], *files)
    output = result.communicate(timeout=300)[0]
    assert result.returncode == 0, output
    assert published(stack, "twinedemo") == {
        "twinedemo-1.0.tar.gz",
        wheel_name("twinedemo", "1.0"),
    }
    again = twine_upload(stack, users["alice"], *files)
    again.communicate(timeout=300)
    assert again.returncode != 0  # published files never change


def test_a_ci_matrix_uploads_each_wheel_of_a_release_at_once(
    stack: Stack, users: dict[str, str], tmp_path: Path
) -> None:
    """Each platform's job runs its own `twine upload` of one release at the same time
    (the first of them registers the name); all succeed, and a second upload of a file
    is still refused."""
    tags = ["py3-none-any", "cp312-cp312-win_amd64", "cp312-cp312-macosx_11_0_arm64"]
    tags += ["cp312-cp312-manylinux_2_17_x86_64", "cp313-cp313-win_amd64"]
    names = [wheel_name("matrixdemo", "1.0", tag) for tag in tags] + ["matrixdemo-1.0.tar.gz"]
    files = write_dist(tmp_path / "dist", *names)
    jobs = [twine_upload(stack, users["alice"], f) for f in files]
    outputs = [job.communicate(timeout=300)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0] * len(jobs), outputs
    assert published(stack, "matrixdemo") == set(names)
    again = twine_upload(stack, users["alice"], files[0])
    output = again.communicate(timeout=300)[0]
    assert again.returncode != 0
    assert "409" in output or "already" in output.lower(), output


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
