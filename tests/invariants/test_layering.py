"""Layering that import-linter cannot express: private modules and names stay in their package.

import-linter (``lint-imports`` in ``make test``) checks the layers of docs/architecture.md;
this test checks the other half of the contract: a module of one sub-package never imports
another sub-package's private module (``deepscope.explain._gibbs``) or private name
(``from deepscope.debug.selection import _fill``). The benchmarks follow the same rule for every
``deepscope`` module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "deepscope"


def _owner(module: str) -> str:
    """``deepscope.explain.base`` → ``deepscope.explain``; ``deepscope._seeds`` → ``deepscope``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or not parts[-1].startswith("_") else parts[0]


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
    return found


def _violations(path: Path, home: str) -> list[str]:
    """Private deepscope modules or names imported from outside ``home``."""
    bad = []
    for line, module, names in _imports(path):
        if not module.startswith("deepscope"):
            continue
        parts = module.split(".")
        for i, part in enumerate(parts[1:], start=1):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:i])  # the package the private module belongs to
                if home == "bench" or (owner != "deepscope" and not home.startswith(owner)):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
                break
        if not home.startswith(_owner(module)) or home == "bench":
            bad.extend(f"{path.relative_to(ROOT)}:{line} imports private name {module}.{n}"
                       for n in names if n.startswith("_") and not n.startswith("__"))
    return bad


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(p for p in rel.parts if p != "__init__")


@pytest.mark.parametrize("folder", ["deepscope", "bench"])
def test_no_private_imports_across_packages(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        home = "bench" if folder == "bench" else _module_name(path)
        bad.extend(_violations(path, home))
    assert not bad, "private imports across packages:\n" + "\n".join(bad)


def test_the_checker_catches_a_private_import(tmp_path, monkeypatch):
    mod = PACKAGE / "attacks" / "__layering_probe__.py"
    try:
        mod.write_text("from deepscope.explain._gibbs import x\n"
                       "from deepscope.debug.selection import _fill\n"
                       "from deepscope.attacks._ops import y\n")
        bad = _violations(mod, "deepscope.attacks.__layering_probe__")
    finally:
        mod.unlink()
    assert len(bad) == 2
    assert "deepscope.explain._gibbs" in bad[0] and "_fill" in bad[1]
