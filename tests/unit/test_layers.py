"""The layer rule, checked from the code's own imports (docs/architecture.md, "Layers").

    emu.core  <-  emu.cpu, netdev  <-  devices  <-  emu.board  <-  emu.monitor  <-  emu.testing,
                                                                                  front ends

A module may import its own layer and the layers below it, nothing above. Imports of
project modules sit at module level, where a reader sees them; the only exception is an
`if TYPE_CHECKING:` import inside one package (a cycle between a package's own modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = ("emu", "netdev", "devices")

# Each layer and the layers it may import (its own included).
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "cpu": {"core", "cpu"},
    "netdev": {"core", "netdev"},
    "devices": {"core", "netdev", "devices"},
    "board": {"core", "cpu", "netdev", "devices", "board"},
    "monitor": {"core", "cpu", "netdev", "devices", "board", "monitor"},
    "testing": {"core", "cpu", "netdev", "devices", "board", "monitor", "testing"},
    "frontend": {"core", "cpu", "netdev", "devices", "board", "monitor", "testing",
                 "frontend"},
}
SUBPACKAGE_LAYERS = {"core", "cpu", "board", "monitor", "testing"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] in ("netdev", "devices"):
        return parts[0]
    if len(parts) > 1 and parts[1] in SUBPACKAGE_LAYERS:
        return parts[1]
    return "frontend"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> list[Path]:
    return sorted(p for top in PROJECT for p in (REPO / top).rglob("*.py"))


def imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
        and node.test.id == "TYPE_CHECKING"


def imports_of(tree: ast.Module) -> tuple[list[str], list[str], list[str]]:
    """(module-level imports, TYPE_CHECKING imports, imports anywhere else)."""
    top: list[str] = []
    typing_only: list[str] = []
    seen: set[int] = set()
    for node in tree.body:
        seen.add(id(node))
        if isinstance(node, ast.If) and is_type_checking_block(node):
            for inner in node.body:
                seen.add(id(inner))
                typing_only += imported(inner)
        else:
            top += imported(node)
    nested = [name for node in ast.walk(tree) if id(node) not in seen for name in imported(node)]
    return top, typing_only, nested


def ours(names: list[str]) -> list[str]:
    return [n for n in names if n.split(".")[0] in PROJECT]


@pytest.mark.parametrize("path", project_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_module_imports_only_its_layer_and_below(path: Path) -> None:
    module = module_name(path)
    layer = layer_of(module)
    top, typing_only, nested = imports_of(ast.parse(path.read_text()))
    above = [n for n in ours(top + typing_only + nested) if layer_of(n) not in ALLOWED[layer]]
    assert not above, f"{module} ({layer}) imports from a higher layer: {above}"
    assert not ours(nested), f"{module} imports project modules lazily: {ours(nested)}"
    own_package = module.split(".")[: 2 if module.startswith("emu.") else 1]
    foreign = [n for n in ours(typing_only)
               if n.split(".")[: len(own_package)] != own_package]
    assert not foreign, (
        f"{module} hides a cross-package seam behind TYPE_CHECKING: {foreign}")


def test_every_layer_has_modules() -> None:
    """The rule above is not vacuous: each layer exists in the tree."""
    layers = {layer_of(module_name(p)) for p in project_modules()}
    assert layers == set(ALLOWED)


def test_a_violation_is_detected() -> None:
    tree = ast.parse("from emu.board.machine import Machine\n"
                     "def f():\n    import netdev.net\n")
    top, _typing_only, nested = imports_of(tree)
    assert [n for n in ours(top) if layer_of(n) not in ALLOWED["core"]] == ["emu.board.machine"]
    assert ours(nested) == ["netdev.net"]
