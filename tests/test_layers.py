"""The layers of chalicelib/ import one way (README "Layout"): a module's path says what
it may import. The wiring at the top (config, runtime) may import everything."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHALICELIB = ROOT / "chalicelib"
# What each layer may import of chalicelib besides itself.
ALLOWED = {
    "domain": set(),
    "services": {"domain", "config"},
    "adapters": {"domain"},
    "http": {"domain", "services"},
}


def _imports(path: Path) -> set[str]:
    """The chalicelib layers (first package below chalicelib) the module imports."""
    package = list(path.relative_to(CHALICELIB).parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [
                a.name.split(".")[1:] for a in node.names if a.name.startswith("chalicelib.")
            ]
        elif isinstance(node, ast.ImportFrom) and node.level:
            # Relative: against the module's package; `from .. import x` imports x.
            base = package[: len(package) - node.level + 1]
            names = [node.module] if node.module else [a.name for a in node.names]
            targets = [[*base, *name.split(".")] for name in names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chalicelib."):
            targets = [(node.module or "").split(".")[1:]]
        else:
            continue
        found.update(t[0] for t in targets if t)
    return found


def test_relative_and_plain_imports_are_seen() -> None:
    assert _imports(CHALICELIB / "services" / "files.py") >= {"domain", "config", "services"}
    assert "adapters" in _imports(CHALICELIB / "runtime.py")


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = {
        str(path.relative_to(CHALICELIB)): sorted(imported - ALLOWED[layer] - {layer})
        for path in (CHALICELIB / layer).rglob("*.py")
        if (imported := _imports(path)) - ALLOWED[layer] - {layer}
    }
    assert wrong == {}


def test_importing_the_api_builds_no_schema() -> None:
    """A Lambda cold start waits for the import: each schema's validators are built on
    its first use (issue 13), so nothing at import may use one."""
    check = (
        "import app; from chalicelib.http import schemas\n"
        "def every(c): return [c] + [s for d in c.__subclasses__() for s in every(d)]\n"
        "print([c.__name__ for c in every(schemas.Schema) if c.__pydantic_complete__])"
    )
    built = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert built.stdout.strip() == "[]"
