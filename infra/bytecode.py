"""Put compiled bytecode into the Lambda package (`make package`, after `chalice package`).

Lambda's /var/task is read-only, so without bytecode in the package every cold start
compiles each module it imports again (pydantic alone is hundreds of them). Run with the
interpreter chalice packaged for (the runtime's Python version, so the file names match
what the runtime looks for); the hashes are unchecked, so the runtime uses the bytecode
whatever times the files have once extracted, and tracebacks name /var/task paths.

usage: python infra/bytecode.py build/deployment.zip
"""

from __future__ import annotations

import compileall
import sys
import tempfile
import zipfile
from pathlib import Path
from py_compile import PycInvalidationMode

LAMBDA_ROOT = "/var/task"


def add_bytecode(package: Path) -> int:
    """Rewrite `package` with a __pycache__ entry beside each module; how many."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(package) as original:
            original.extractall(root)
            entries = [(info, original.read(info)) for info in original.infolist()]
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
    return len(compiled)


if __name__ == "__main__":
    count = add_bytecode(Path(sys.argv[1]))
    print(f"bytecode for {count} modules added to {sys.argv[1]}")
