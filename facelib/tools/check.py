"""``facelib check``: run the same inputs through a backend and a reference backend and compare.

The facelib equivalent of the ``--checkMSE`` flag of the port we replace: per output the maximum
absolute difference, the maximum relative difference and the mean squared error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import Backend
from facelib.tools.bench import model_sessions
from facelib.tools.inputs import random_feeds


@attrs.frozen
class Difference:
    """How far one output of the backend under test is from the reference."""

    model: str
    output: str
    max_abs: float
    max_rel: float
    mse: float
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def compare_arrays(model: str, output: str, got: np.ndarray, ref: np.ndarray) -> Difference:
    """Max abs, max rel (relative to max(|ref|, 1e-6)) and MSE of ``got`` against ``ref``."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return Difference(model, output, float("inf"), float("inf"), float("inf"), tuple(got.shape))
    diff = np.abs(got - ref)
    if diff.size == 0:
        return Difference(model, output, 0.0, 0.0, 0.0, tuple(got.shape))
    rel = diff / np.maximum(np.abs(ref), 1e-6)
    return Difference(model, output, float(diff.max()), float(rel.max()), float((diff**2).mean()), tuple(got.shape))


def check_model(path: Path, backend: Backend, reference: Backend, batch: int = 1, seed: int = 0) -> list[Difference]:
    """Compare every output of every file of a model (package) between two backends."""
    out: list[Difference] = []
    tested = model_sessions(path, backend)
    refs = {role: session for role, session, _ in model_sessions(path, reference)}
    for role, session, shapes in tested:
        feeds = random_feeds(session.inputs, batch=batch, shapes=shapes, seed=seed)
        got = session.run(feeds)
        want = refs[role].run(feeds)
        out += [compare_arrays(role, name, got[name], want[name]) for name in want]
        session.close()
        refs[role].close()
    return out


def format_differences(diffs: list[Difference], tolerance: float) -> str:
    """A table of differences with a pass/fail mark against ``tolerance`` (max abs)."""
    lines = [f"{'model':<20}{'output':<28}{'max abs':>12}{'max rel':>12}{'mse':>12}  ok"]
    for d in diffs:
        ok = "yes" if d.max_abs <= tolerance else "NO"
        lines.append(f"{d.model:<20}{d.output[:27]:<28}{d.max_abs:>12.3g}{d.max_rel:>12.3g}{d.mse:>12.3g}  {ok}")
    return "\n".join(lines)
