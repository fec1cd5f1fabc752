"""Cold start benchmark (`make bench`): the Lambda package's size, and how long the API
handler takes to import as packaged (build/deployment.zip, extracted read-only-like: the
interpreter writes no bytecode), with the package's bytecode and without it.

Prints figures; asserts nothing about time. Goal (issue 13): under 0.5 s of import on
this machine. Each import runs in a fresh interpreter of the runtime's Python version
(.venv-package, what `make package` used); best of ROUNDS, the run least disturbed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "build" / "deployment.zip"
PYTHON = ROOT / ".venv-package" / "bin" / "python"
ROUNDS = 5
IMPORT = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); start = time.perf_counter(); "
    "import app; print(time.perf_counter() - start)"
)


def _best_import(directory: Path) -> float:
    # -I: none of this machine's site or environment; -B: no bytecode written, as on
    # Lambda's read-only /var/task, so every round is a cold one.
    return min(
        float(
            subprocess.run(
                [str(PYTHON), "-I", "-B", "-c", IMPORT, str(directory)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for _ in range(ROUNDS)
    )


def main() -> None:
    if not PACKAGE.exists() or not PYTHON.exists():
        sys.exit("run `make package` first: it builds build/deployment.zip and .venv-package")
    with zipfile.ZipFile(PACKAGE) as package:
        unzipped = sum(info.file_size for info in package.infolist())
        with tempfile.TemporaryDirectory() as scratch:
            shipped = Path(scratch) / "shipped"
            package.extractall(shipped)
            bare = Path(scratch) / "bare"
            shutil.copytree(shipped, bare, ignore=shutil.ignore_patterns("__pycache__"))
            with_bytecode, without = _best_import(shipped), _best_import(bare)
    zipped = PACKAGE.stat().st_size
    print(f"Lambda package: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped")
    print(
        f"API handler import, cold (best of {ROUNDS}): {with_bytecode:.2f} s as packaged "
        f"(goal: under 0.5 s); {without:.2f} s without the package's bytecode"
    )


if __name__ == "__main__":
    main()
