"""Validation of uploaded wheels and sdists, one crafted archive per refusal."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from chalicelib.domain.distributions import Refused, inspect_distribution
from tests.dists import metadata, sdist, wheel

WHEEL = "demo_pkg-1.0-py3-none-any.whl"
SDIST = "demo_pkg-1.0.tar.gz"


def inspect(filename: str, data: bytes) -> bytes:
    return inspect_distribution(filename, io.BytesIO(data), "demo-pkg", "1").metadata


def test_valid_wheel_and_sdist_yield_their_metadata() -> None:
    assert b"Name: demo-pkg" in inspect(WHEEL, wheel(WHEEL))
    found = inspect_distribution(SDIST, io.BytesIO(sdist(SDIST)), "demo-pkg", "1")
    assert found.requires_python == ">=3.9"
    assert b"Version: 1.0" in found.metadata


def refused(filename: str, data: bytes, why: str) -> None:
    with pytest.raises(Refused, match=why) as caught:
        inspect(filename, data)
    assert caught.value.spec.startswith("https://packaging.python.org/")


def tar_member(
    name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", size: int = 0
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = size
    return info


def test_not_a_zip() -> None:
    refused(WHEEL, b"not a zip", "not a valid zip")


def test_a_wheel_with_an_unsupported_compression() -> None:
    refused(WHEEL, wheel(WHEEL, compression=zipfile.ZIP_BZIP2), "stored or deflated")


def test_a_zip_bomb_is_refused_without_inflating() -> None:
    bomb = wheel(WHEEL, members={"demo_pkg/zeros.bin": b"\0" * (50 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    refused(WHEEL, bomb, "inflate")


def test_a_wheel_without_metadata_files() -> None:
    info = "demo_pkg-1.0.dist-info"
    refused(WHEEL, wheel(WHEEL, members={f"{info}/RECORD": None}), "lacks .*RECORD")


def test_a_wheel_with_two_dist_infos() -> None:
    refused(WHEEL, wheel(WHEEL, members={"other-1.0.dist-info/METADATA": b""}), "exactly one")


def test_a_wheel_with_another_projects_dist_info() -> None:
    refused(WHEEL, wheel(WHEEL, dist_info="other-1.0.dist-info"), "not this release")


def test_a_wheel_whose_metadata_names_another_version() -> None:
    refused(WHEEL, wheel(WHEEL, meta=metadata("demo-pkg", "2.0")), "demo-pkg 2.0")


def test_an_unknown_metadata_version() -> None:
    refused(WHEEL, wheel(WHEEL, meta=metadata("demo-pkg", "1.0", metadata_version="9.9")), "9.9")


def test_a_wheel_member_escaping_the_tree() -> None:
    refused(WHEEL, wheel(WHEEL, members={"../evil.py": b"x"}), "relative path")


def test_not_a_tarball() -> None:
    refused(SDIST, b"\x1f\x8b garbage", "gzip-compressed tar|corrupt")


def test_an_sdist_with_two_top_directories() -> None:
    refused(SDIST, sdist(SDIST, extra=[tar_member("other/file", size=1)]), "single top directory")


def test_an_sdist_with_a_wrong_top_directory() -> None:
    refused(SDIST, sdist(SDIST, top="demo_pkg-2.0"), "top directory")


def test_an_sdist_without_pkg_info() -> None:
    data = sdist(SDIST, top="demo_pkg-1.0", extra=[])
    # Rebuild without PKG-INFO.
    buffer = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as src,
        tarfile.open(fileobj=buffer, mode="w:gz") as dst,
    ):
        for member in src:
            if not member.name.endswith("PKG-INFO"):
                dst.addfile(member, src.extractfile(member))
    refused(SDIST, buffer.getvalue(), "lacks demo_pkg-1.0/PKG-INFO")


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (tar_member("/etc/passwd", size=1), "relative path"),
        (tar_member("demo_pkg-1.0/../../x", size=1), "relative path"),
        (
            tar_member("demo_pkg-1.0/link", tarfile.SYMTYPE, link="../../etc/passwd"),
            "links outside",
        ),
        (tar_member("demo_pkg-1.0/abs", tarfile.SYMTYPE, link="/etc/passwd"), "links outside"),
        (tar_member("demo_pkg-1.0/hard", tarfile.LNKTYPE, link="etc/passwd"), "links outside"),
        (tar_member("demo_pkg-1.0/dev", tarfile.CHRTYPE), "device"),
        (tar_member("demo_pkg-1.0/fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_hostile_sdist_members(member: tarfile.TarInfo, why: str) -> None:
    refused(SDIST, sdist(SDIST, extra=[member]), why)


def test_links_inside_the_tree_are_fine() -> None:
    ok = tar_member("demo_pkg-1.0/link", tarfile.SYMTYPE, link="setup.py")
    assert inspect(SDIST, sdist(SDIST, extra=[ok]))


def test_an_sdist_whose_pkg_info_names_another_project() -> None:
    refused(SDIST, sdist(SDIST, meta=metadata("other", "1.0")), "other 1.0")
