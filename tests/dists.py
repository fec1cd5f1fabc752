"""Real (small) wheels and sdists for tests, and the crafted bad ones."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Mapping

from packaging.utils import parse_sdist_filename, parse_wheel_filename


def metadata(name: str, version: str, *, metadata_version: str = "2.1", extra: str = "") -> bytes:
    return (
        f"Metadata-Version: {metadata_version}\nName: {name}\nVersion: {version}\n"
        f"Requires-Python: >=3.9\n{extra}\n"
    ).encode()


def _record(files: dict[str, bytes | None], record: str) -> bytes:
    """A RECORD listing every member with its hash and size, as installers check it."""
    lines = []
    for member, data in files.items():
        if data is None or member == record:
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{member},sha256={digest},{len(data)}")
    lines.append(f"{record},,")
    return ("\n".join(lines) + "\n").encode()


def wheel(
    filename: str,
    *,
    salt: str = "",
    members: Mapping[str, bytes | None] | None = None,  # None drops a member
    meta: bytes | None = None,
    dist_info: str | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    name, version, _, _ = parse_wheel_filename(filename)
    stem = filename.split("-")[0]
    info = dist_info if dist_info is not None else f"{stem}-{version}.dist-info"
    files: dict[str, bytes | None] = {
        f"{stem}/__init__.py": f"# {salt}\nVERSION = {str(version)!r}\n".encode(),
        f"{info}/METADATA": meta if meta is not None else metadata(str(name), str(version)),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": b"",
    }
    if members is not None:
        files = {**files, **members}
    if files.get(f"{info}/RECORD") == b"":
        files[f"{info}/RECORD"] = _record(files, f"{info}/RECORD")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for member, data in files.items():
            if data is not None:
                # A fixed timestamp: the same arguments give the same bytes.
                entry = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
                archive.writestr(entry, data, compress_type=compression)
    return buffer.getvalue()


def sdist(
    filename: str,
    *,
    salt: str = "",
    top: str | None = None,
    meta: bytes | None = None,
    extra: list[tarfile.TarInfo] | None = None,
) -> bytes:
    name, version = parse_sdist_filename(filename)
    root = top if top is not None else filename.removesuffix(".tar.gz")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for member, data in (
            (f"{root}/PKG-INFO", meta if meta is not None else metadata(str(name), str(version))),
            (f"{root}/setup.py", f"# {salt}\n".encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra or []:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def dist(filename: str, salt: str = "") -> bytes:
    """A valid distribution for `filename`."""
    return wheel(filename, salt=salt) if filename.endswith(".whl") else sdist(filename, salt=salt)
