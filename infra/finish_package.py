"""Finish the Lambda package after `chalice package` (`make package`): drop botocore's
data for the AWS services the code never calls, and put compiled bytecode beside each
module.

botocore carries the API models of every AWS service (28 MB of the package's 36 MB); a
client is made only for those in SERVICES, each from its own directory under
botocore/data, so the rest is never read (issue 13: the package's size). The tests make
every client the code makes from the finished package.

Lambda's /var/task is read-only, so without bytecode in the package every cold start
compiles each module it imports again (pydantic alone is hundreds of them). Run with the
interpreter chalice packaged for (the runtime's Python version, so the file names match
what the runtime looks for); the hashes are unchecked, so the runtime uses the bytecode
whatever times the files have once extracted, and tracebacks name /var/task paths.

usage: python infra/finish_package.py build/deployment.zip
"""

from __future__ import annotations

import compileall
import sys
import tempfile
import zipfile
from pathlib import Path
from py_compile import PycInvalidationMode

LAMBDA_ROOT = "/var/task"
# The services chalicelib/runtime.py makes clients for.
SERVICES = frozenset({"cloudfront", "dynamodb", "s3", "secretsmanager", "sqs", "ssm"})
BOTOCORE_DATA = "botocore/data/"


def kept(name: str) -> bool:
    """Whether the package keeps this entry: botocore's data only for SERVICES (and its
    own files, such as endpoints.json), without the examples (documentation only)."""
    if not name.startswith(BOTOCORE_DATA):
        return True
    service, slash, rest = name.removeprefix(BOTOCORE_DATA).partition("/")
    if not slash:
        return True
    return service in SERVICES and not rest.endswith("/examples-1.json")


def finish(package: Path) -> tuple[int, int]:
    """Rewrite `package` without the data no client reads, with a __pycache__ entry
    beside each module; how many entries were dropped, how many modules compiled."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(package) as original:
            entries = [(i, original.read(i)) for i in original.infolist() if kept(i.filename)]
            dropped = len(original.infolist()) - len(entries)
        for info, data in entries:
            if not info.is_dir():
                (root / info.filename).parent.mkdir(parents=True, exist_ok=True)
                (root / info.filename).write_bytes(data)
        # Modules that do not compile (none expected) are left to compile at run time.
        compileall.compile_dir(
            root,
            quiet=2,
            ddir=LAMBDA_ROOT,
            workers=0,
            invalidation_mode=PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled = sorted(p for p in root.rglob("*.pyc") if "__pycache__" in p.parts)
        with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as rewritten:
            for info, data in entries:
                rewritten.writestr(info, data)
            for path in compiled:
                name = path.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                rewritten.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return dropped, len(compiled)


if __name__ == "__main__":
    dropped, compiled = finish(Path(sys.argv[1]))
    print(
        f"{sys.argv[1]}: {dropped} entries of unused botocore data dropped, bytecode for "
        f"{compiled} modules added"
    )
