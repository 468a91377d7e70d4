"""The tree shows the architecture: each layer imports only itself and the layers below.

Data flows one way: config and data -> episodes -> survival -> engines -> analysis -> present ->
runner -> the commands. Every import counts, also one inside a function or under
``TYPE_CHECKING``: a lazy import that climbs a layer is still a dependency upwards.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "retention_study"

#: Lowest first. A sub-package is one layer; top-level modules are named one by one.
LAYERS = [
    ("core", ["retention_study", "errors"]),
    # the run config is an input like the files: it is checked against their headers
    ("input", ["config", "config_keys", "config_file", "notebook", "data"]),
    ("episodes", ["episodes"]),
    ("survival", ["survival"]),
    ("engines", ["engines"]),
    ("analysis", ["analysis"]),
    ("present", ["present"]),
    ("runner", ["runner"]),
    ("commands", ["cli", "init"]),
]
RANK = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The rank of a module ``retention_study.x.y``: by its sub-package or its own name."""
    parts = module.split(".")
    return RANK[parts[1] if len(parts) > 1 else parts[0]]


def imported(path: Path) -> set[str]:
    """Every ``retention_study`` module ``path`` imports, anywhere in the file."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "retention_study")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "retention_study":
                continue
            if target == "retention_study":  # from retention_study import analysis, errors
                out.update(f"retention_study.{a.name}" for a in node.names
                           if a.name.split(".")[0] in RANK)
                if any(a.name not in RANK for a in node.names):
                    out.add(target)
            else:
                out.add(target)
    return out


def upward_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        found += [f"{me} -> {dep}" for dep in sorted(imported(path)) if layer(dep) > layer(me)]
    return found


def test_every_module_belongs_to_a_layer():
    for path in sorted(PACKAGE.rglob("*.py")):
        layer(module_name(path))  # KeyError names a module no layer owns


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    # a data module that reads the results would be a climb from data to analysis
    pkg = tmp_path / "retention_study"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    (pkg / "data" / "x.py").write_text(
        "def f():\n    from retention_study.analysis.results import Results\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert upward_imports() == ["retention_study.data.x -> retention_study.analysis.results"]
