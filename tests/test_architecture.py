"""Imports run downward (docs/architecture.md): every ``facelib`` module imports only from its own
package or from a lower layer, at module level or inside functions alike."""

from __future__ import annotations

import ast
from pathlib import Path

import facelib

ROOT = Path(facelib.__file__).parent

#: Layer of each top-level part of the ``facelib`` package, lowest first (docs/architecture.md).
LAYERS: dict[str, int] = {
    "_version": 0,
    "errors": 0,
    "_progress": 0,
    "backends": 1,
    "processing": 1,
    "results": 2,
    "io": 3,
    "models": 4,
    "tasks": 5,
    "tools": 6,
    "batch": 6,
    "testing": 7,
    "commands": 8,
    "cli": 9,
    "__main__": 10,
    "__init__": 10,  # the facade: lazy names for users
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "facelib":  # ``from facelib import X``: X is the part
                found += [(node.lineno, f"facelib.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.startswith("facelib.")]


def _violations(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        own = _part(module)
        for line, name in _imports(path):
            target = _part(name)
            if target == own:
                continue
            if own not in LAYERS or target not in LAYERS:
                bad.append(f"{relative}.py:{line}: {name}: a part of facelib that docs/architecture.md does not place")
            elif LAYERS[target] >= LAYERS[own]:
                bad.append(f"{relative}.py:{line}: {own} (layer {LAYERS[own]}) imports {name} (layer {LAYERS[target]})")
    return bad


def test_imports_run_downward() -> None:
    assert _violations(ROOT) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "facelib"
    (package / "io").mkdir(parents=True)
    (package / "io" / "sink.py").write_text("def f():\n    from facelib.tasks.head_pose import HeadPose\n")
    (package / "models").mkdir()
    (package / "models" / "m.py").write_text("from facelib import __version__\nfrom facelib.io.image import x\n")
    assert _violations(package) == [
        "facelib/io/sink.py:2: io (layer 3) imports facelib.tasks.head_pose (layer 5)",
        "facelib/models/m.py:1: facelib.__version__: a part of facelib that docs/architecture.md does not place",
    ]
