"""The layers of chalicelib/ import one way (README "Layout"): a module's path says what
it may import. The wiring at the top (config, runtime) may import everything."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHALICELIB = Path(__file__).resolve().parent.parent / "chalicelib"
# What each layer may import of chalicelib besides itself.
ALLOWED = {
    "domain": set(),
    "services": {"domain", "config"},
    "adapters": {"domain"},
    "http": {"domain", "services"},
}


def _imports(path: Path) -> set[str]:
    """The chalicelib layers (first package below chalicelib) the module imports."""
    package = path.relative_to(CHALICELIB).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # relative: resolve against the module's package
            parts = [*package[: len(package) - node.level + 1], *(node.module or "").split(".")]
        elif (node.module or "").startswith("chalicelib."):
            parts = (node.module or "").split(".")[1:]
        else:
            continue
        if parts and parts[0]:
            found.add(parts[0].removesuffix(".py"))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = {
        str(path.relative_to(CHALICELIB)): sorted(imported - ALLOWED[layer] - {layer})
        for path in (CHALICELIB / layer).rglob("*.py")
        if (imported := _imports(path)) - ALLOWED[layer] - {layer}
    }
    assert wrong == {}
