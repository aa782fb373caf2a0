"""Every MagicMind name the plugin or the double uses appears in Cambricon's own samples.

MagicMind ships only in Cambricon's docker image; ``sdk_names/magicmind-samples.txt`` lists the
identifiers Cambricon/magicmind_cloud v1.7 Python samples use (``sdk_names/regenerate.py``).
"""

from __future__ import annotations

import ast
import enum
import inspect
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent / "facelib_cambricon"

#: Offered by the double although no vendor sample names them, with why that is acceptable:
#: status codes the double reports its own refusals with (samples only build OUT_OF_RANGE; the
#: plugin never compares codes, it checks ``.ok()`` and prints the status).
UNCONFIRMED = {"INTERNAL", "INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE", "UNIMPLEMENTED"}


def _samples() -> set[str]:
    lines = (HERE / "sdk_names" / "magicmind-samples.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_double_offers_only_names_the_samples_use(cambricon: type) -> None:
    import magicmind.python.runtime as mm

    offered: set[str] = set()
    for name, value in vars(mm).items():
        if name.startswith("_") or inspect.ismodule(value) or getattr(value, "__module__", mm.__name__) != mm.__name__:
            continue
        offered.add(name)
        if isinstance(value, type):
            offered |= {n for n in vars(value) if not n.startswith("_")}
            if issubclass(value, enum.Enum):
                offered |= {m.name for m in value}
    assert {"Calibrator", "CalibDataInterface", "Builder", "Model", "Device", "active"} <= offered
    missing = sorted(offered - _samples() - UNCONFIRMED)
    assert not missing, f"the MagicMind double offers names no Cambricon sample uses: {missing}"
    assert "activate" not in offered  # samples call Device.active(); activate is unconfirmed


def test_plugin_uses_only_names_the_samples_use() -> None:
    used: set[str] = set()
    for path in PLUGIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                root = node
                parts = []
                while isinstance(root, ast.Attribute):
                    parts.append(root.attr)
                    root = root.value  # type: ignore[assignment]
                if isinstance(root, ast.Name) and root.id == "mm":
                    used |= set(parts)
    assert {"Calibrator", "Status", "Dims"} <= used
    missing = sorted(used - _samples())
    assert not missing, f"facelib_cambricon uses MagicMind names no Cambricon sample uses: {missing}"
