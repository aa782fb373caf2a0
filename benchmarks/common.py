"""Helpers shared by the benchmark scripts: shared-data location, timing, results files."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCRATCH = ROOT / "scratch"  # git-ignored: upstream code and generated checkpoints live here

sys.path.insert(0, str(ROOT / "benchmarks"))


def shared_dir() -> Path:
    """The shared data folder (../shared or $FACELIB_SHARED); exits with a message when absent."""
    path = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
    if not (path / "assets").is_dir():
        raise SystemExit(f"shared data not found at {path}; set FACELIB_SHARED")
    return path


def best_of(call: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``call`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def write_result(task: str, title: str, body: str) -> Path:
    """Write ``benchmarks/results/<task>.md`` with a heading, the date and the machine."""
    from run_all import machine

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{task}.md"
    stamp = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    path.write_text(f"## {title}\n\nMeasured {stamp} on {machine()}.\n\n{body.strip()}\n")
    return path
