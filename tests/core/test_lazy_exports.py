"""Packages that load their names on first use (PEP 562): the names type checkers see, the
table `__getattr__` loads from and `__all__` agree, each name is the object its module
defines, and a server answering with the echo backend never loads an HTTP client."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import agent_runtime

PACKAGE = Path(agent_runtime.__file__).parent
LAZY = ["agent_runtime", "agent_runtime.backends", "agent_runtime.chat", "agent_runtime.eval"]


def _typing_imports(name: str) -> dict[str, set[str]]:
    """`{".module": {names}}` imported under the package's `if TYPE_CHECKING:`."""
    path = Path(importlib.import_module(name).__file__ or "")
    tree = ast.parse(path.read_text())
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.body:
                assert isinstance(child, ast.ImportFrom), ast.unparse(child)
                module = "." * child.level + (child.module or "")
                found.setdefault(module, set()).update(a.name for a in child.names)
    return found


@pytest.mark.parametrize("name", LAZY)
def test_the_typed_names_the_lazy_table_and_all_agree(name: str) -> None:
    package = importlib.import_module(name)
    table = {module: set(names) for module, names in package._EXPORTS.items()}
    assert table == _typing_imports(name)
    names = [n for names in table.values() for n in names]
    assert len(names) == len(set(names)), "a name is exported from two modules"
    assert set(names) == set(package.__all__) - {"__version__"}


@pytest.mark.parametrize("name", LAZY)
def test_each_name_is_its_modules_object(name: str) -> None:
    package = importlib.import_module(name)
    for module, names in package._EXPORTS.items():
        source = importlib.import_module(module, name)
        for export in names:
            assert getattr(package, export) is getattr(source, export)
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        package.not_a_name  # noqa: B018


def test_an_echo_server_loads_no_http_client_and_no_optional_subpackage() -> None:
    code = (
        "import sys\n"
        "from agent_runtime.backends import create_echo_backend\n"
        "from agent_runtime.server import create_app\n"
        "create_app(store_url='sqlite:///:memory:', backend=create_echo_backend())\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    loaded = [m for m in out if m.split(".")[0] in ("httpx2", "opentelemetry", "psycopg")]
    assert loaded == []
    extras = ("ledger", "otel", "trace", "_task_loop", "temporal", "backends.openai_compatible")
    assert [m for m in out if m.removeprefix("agent_runtime.") in extras] == []
