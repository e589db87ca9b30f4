"""The layers import downwards only: leadtocash > scenarios > bridge > mock_sales, mock_scm > sandbox.

Every module's imports are read from its source with ``ast`` (at module level, inside functions and under
``TYPE_CHECKING`` alike, relative imports resolved, ``importlib.import_module("...")`` with a literal name
included), so an import hidden in a function body counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: package -> the packages of this project it must not import
FORBIDDEN: dict[str, set[str]] = {
    "sandbox": {"mock_sales", "mock_scm", "bridge", "scenarios", "leadtocash"},
    "mock_sales": {"mock_scm", "bridge", "scenarios", "leadtocash"},
    "mock_scm": {"mock_sales", "bridge", "scenarios", "leadtocash"},
    "bridge": {"mock_sales", "mock_scm", "scenarios", "leadtocash"},
    "scenarios": {"leadtocash"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the code of the module ``name``."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            # `from package import module` imports that module too
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            yield node.lineno, node.args[0].value.partition(":")[0]


def violations(package: str) -> list[str]:
    """``path:line imports module`` for every import of ``package`` that reaches a package it must not import."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for line, module in imported_modules(source, module_name(path), is_package=path.name == "__init__.py"):
            top = module.split(".")[0]
            if top in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return sorted(set(found))


def test_the_import_reader_sees_imports_in_functions_relative_ones_and_import_module() -> None:
    """What the layer checks rely on: an import in a function body, a relative import resolved against its
    package, and a module named to importlib are all reported."""
    source = (
        "def build():\n"
        "    from mock_sales.schema import build_model\n"
        "    import importlib\n"
        "    return importlib.import_module('mock_scm')\n"
        "from . import engine\n"
        "from ..leadtocash import stack\n"
    )
    seen = {module for _line, module in imported_modules(source, "bridge.probe")}
    assert {"mock_sales.schema", "mock_scm", "bridge.engine", "leadtocash.stack"} <= seen


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_no_layer_above_it_nor_its_sibling(package: str) -> None:
    """The platform imports none of the others; the mocks import neither each other nor anything above; the
    bridge gets its models from the stack instead of importing the mocks; scenarios never reach into the
    composition root."""
    assert violations(package) == []
