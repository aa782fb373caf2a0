"""Every ``sophon.sail`` name the plugin or the SAIL double uses is bound by the real SAIL.

``sdk_names/sail-3.10.7.txt`` holds the names ``src/bind.cpp`` of sophgo/sophon-sail v3.10.7
binds (``sdk_names/regenerate.py``); SAIL is not on PyPI, so its source is the reference.
"""

from __future__ import annotations

import ast
import enum
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "doubles" / "sophon" / "sail.py"
PLUGIN = HERE.parent / "facelib_sophon"


def _real() -> set[str]:
    lines = (HERE / "sdk_names" / "sail-3.10.7.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _double_surface() -> set[str]:
    sys.path.insert(0, str(DOUBLE.parents[1]))  # fake_bmodel
    try:
        spec = importlib.util.spec_from_file_location("sail_double_for_names", DOUBLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    out: set[str] = set()
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if getattr(value, "__module__", module.__name__) != module.__name__:
            continue  # imported helpers
        out.add(name)
        if isinstance(value, type):
            out |= {n for n in vars(value) if not n.startswith("_")}
            if issubclass(value, enum.Enum):
                out |= {m.name for m in value}
    return out


def _plugin_uses() -> set[str]:
    """``sail.X`` chains and methods called on SAIL engines (``self._engine.X`` / ``e.X``)."""
    used: set[str] = set()
    for path in PLUGIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            root: Any = node
            parts = []
            while isinstance(root, ast.Attribute):
                parts.append(root.attr)
                root = root.value
            base = root.id if isinstance(root, ast.Name) else ""
            if base in ("sail", "e"):  # sail.X.Y, and e = self._engine
                used |= set(parts)
            elif "_engine" in parts:  # self._engine.X
                used |= set(parts[: parts.index("_engine")])
    return used


def test_sail_double_offers_only_bound_names() -> None:
    offered = _double_surface() - {"__version__"}
    missing = sorted(offered - _real())
    assert not missing, f"the SAIL double offers names sophon-sail v3.10.7 does not bind: {missing}"
    assert {"Engine", "process", "graph_is_dynamic", "SailEngineError", "SYSIO"} <= offered


def test_plugin_uses_only_bound_names() -> None:
    used = _plugin_uses() - {"_engine"}
    assert {"Engine", "IOMode", "get_graph_names", "process"} <= used
    missing = sorted(used - _real())
    assert not missing, f"facelib_sophon uses SAIL names sophon-sail v3.10.7 does not bind: {missing}"
