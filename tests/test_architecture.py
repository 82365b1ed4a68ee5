"""The package's shape, as docs/architecture.md describes it: each module names its surface in
`__all__`, other modules import only that surface, and a private module (`_name`) is used only
inside its own package. The layers and the fence around durable_rules are import-linter's
contracts (pyproject.toml), run by scripts/test.sh."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "bonecds"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): ast.parse(path.read_text("utf-8")) for path in PACKAGE.rglob("*.py")}


def _exports(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id == "__all__" for target in targets):
            assert isinstance(node, ast.Assign)
            return list(ast.literal_eval(node.value))
    return None


def _imports(tree: ast.Module) -> list[tuple[str, str, int]]:
    """(module, name, line) of every `from bonecds... import name`, anywhere in the module."""
    return [
        (node.module, alias.name, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bonecds")
        for alias in node.names
    ]


def _is_module(name: str) -> bool:
    return name in MODULES


PACKAGES = {_module_name(path) for path in PACKAGE.rglob("__init__.py")}


@pytest.mark.parametrize("module", sorted(set(MODULES) - PACKAGES - {"bonecds.__main__"}))
def test_every_module_names_its_surface(module: str) -> None:
    tree = MODULES[module]
    exports = _exports(tree)
    assert exports is not None, f"{module} has no __all__"
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    assert [name for name in exports if name not in names] == [], module


def test_modules_import_only_each_others_surface() -> None:
    wrong = []
    for importer, tree in MODULES.items():
        for module, name, line in _imports(tree):
            if _is_module(f"{module}.{name}") or module == "bonecds":
                continue  # a submodule, or the lazy public API
            exports = _exports(MODULES[module]) or []
            if name not in exports:
                wrong.append(f"{importer}:{line} imports {name} from {module}, not in its __all__")
    assert wrong == []


def test_a_private_module_is_used_only_inside_its_package() -> None:
    wrong = []
    for importer, tree in MODULES.items():
        for module, name, line in _imports(tree):
            target = f"{module}.{name}" if _is_module(f"{module}.{name}") else module
            private = [i for i, part in enumerate(target.split(".")) if part.startswith("_")]
            if not private:
                continue
            package = ".".join(target.split(".")[: private[0]])
            if not (importer == package or importer.startswith(package + ".")):
                wrong.append(f"{importer}:{line} uses the private {target}")
    assert wrong == []
