"""Comparing task results field by field (a backend's against ONNX Runtime's).

:func:`differences` walks two results of the same structure (attrs result classes, dicts,
lists/tuples, arrays, scalars, strings, None) and gives the largest absolute difference per
field path; :func:`assert_results_match` fails when any exceeds a tolerance.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs
import numpy as np

#: Default tolerance: results on a plugin match ONNX Runtime's within 1e-5 (issues 7 and 8).
TOL = 1e-5


def differences(got: Any, want: Any, path: str = "result") -> dict[str, float]:
    """Max absolute difference per field path between two task results of the same structure.

    Walks attrs result classes, dicts, lists/tuples and arrays; structure (types, lengths,
    keys, None-ness, shapes) must be identical, otherwise the assertion names the path.
    Paths are generic over list positions (``result[].faces[].box``): one figure per field.
    """
    if attrs.has(type(want)):
        assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
        out: dict[str, float] = {}
        for field in attrs.fields(type(want)):
            out.update(differences(getattr(got, field.name), getattr(want, field.name), f"{path}.{field.name}"))
        return out
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        out = {}
        for key in want:
            out.update(differences(got[key], want[key], f"{path}[{key!r}]"))
        return out
    if isinstance(want, list | tuple) and not (want and isinstance(want[0], int | float | np.floating)):
        assert isinstance(got, list | tuple) and len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        out = {}
        for i, (g, w) in enumerate(zip(got, want)):
            for key, value in differences(g, w, f"{path}[{i}]").items():
                out[key] = max(out.get(key, 0.0), value)
        return out
    if want is None:
        assert got is None, f"{path}: got a value where the reference has None"
        return {}
    if isinstance(want, str):
        assert got == want, f"{path}: {got!r} != {want!r}"
        return {}
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"{path}: shape {g.shape} != {w.shape}"
    if w.dtype.kind in "biu" and g.dtype.kind in "biu":
        return {_generic(path): float(np.max(np.abs(g.astype(np.int64) - w.astype(np.int64)), initial=0))}
    return {_generic(path): float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)), initial=0.0))}


def _generic(path: str) -> str:
    """``result[0].faces[1].box`` -> ``result[].faces[].box`` (one figure per field)."""
    return re.sub(r"\[\d+\]", "[]", path)


def assert_results_match(got: Any, want: Any, what: str, tol: float = TOL) -> dict[str, float]:
    """Assert ``got`` has ``want``'s structure and every field within ``tol``; returns the figures."""
    diffs = differences(got, want)
    assert diffs, f"{what}: nothing was compared"
    worst = {k: v for k, v in diffs.items() if not math.isfinite(v) or v > tol}
    assert not worst, f"{what}: results differ from ONNX Runtime by more than {tol}: {worst}"
    print(f"\n{what}: max |difference| {max(diffs.values()):.3g} over {len(diffs)} fields")
    return diffs
