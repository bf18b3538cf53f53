"""Dependencies point down: the durable core imports nothing from chat, the server or the
CLI at run time (type-checking imports aside), checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agent_runtime

PACKAGE = Path(agent_runtime.__file__).parent
UPPER = ("chat", "server", "cli", "temporal", "history", "_cli_output", "_cli_temporal")


def _runtime_imports(path: Path) -> list[str]:
    """Modules a file imports outside `if TYPE_CHECKING:` blocks, resolved to package names."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module is not None and node.level:
            parts = path.relative_to(PACKAGE).parent.parts
            base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
            found.append(".".join((*base, node.module)))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module.removeprefix("agent_runtime."))
        elif isinstance(node, ast.Import):
            found += [a.name.removeprefix("agent_runtime.") for a in node.names]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            found.append("<dynamic>")
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "durable").glob("*.py")), ids=lambda p: p.name)
def test_the_durable_core_imports_nothing_above_it(path: Path) -> None:
    upper = [m for m in _runtime_imports(path) if m.split(".")[0] in UPPER]
    assert upper == [], f"{path.name} imports {upper}"
