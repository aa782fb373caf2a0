"""``facelib bench``: latency percentiles, throughput and peak memory of a model on a backend.

A model is a bare model file or a model package (every file of it, by role).  Inputs come
from the file's specs (dynamic dims resolved from the card's ``shapes``), seeded.
"""

from __future__ import annotations

import functools
import resource
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import Backend, Session, ShapeRange
from facelib.models.card import CARD_FILENAME
from facelib.models.package import ModelPackage
from facelib.tools.inputs import random_feeds


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@attrs.frozen
class Timing:
    """Latency statistics of ``loop`` timed calls, in milliseconds, and items per second."""

    name: str
    batch: int
    loop: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput: float  #: items (batch elements) per second at the mean latency
    stages_ms: dict[str, float] = attrs.field(factory=dict)  #: mean ms per stage, when measured
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def time_calls(name: str, call: Callable[[], object], batch: int, loop: int, warmup: int) -> tuple[Timing, np.ndarray]:
    """Run ``call`` ``warmup`` times untimed, then ``loop`` times timed."""
    for _ in range(warmup):
        call()
    times = np.empty(loop)
    for i in range(loop):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    ms = times * 1000
    timing = Timing(
        name=name,
        batch=batch,
        loop=loop,
        p50_ms=float(np.percentile(ms, 50)),
        p90_ms=float(np.percentile(ms, 90)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        throughput=float(batch / times.mean()),
        peak_rss_mb=peak_rss_mb(),
    )
    return timing, ms


def model_sessions(path: Path, backend: Backend) -> list[tuple[str, Session, Mapping[str, ShapeRange]]]:
    """(role, session, card shapes) for a package, or one ("model", session, {}) for a bare file."""
    if path.is_dir() or path.name == CARD_FILENAME:
        package = ModelPackage.load(path)
        return [(role, package.session(role, backend), item.shapes) for role, item in package.card.files.items()]
    return [("model", backend.load(path), {})]


def bench_model(path: Path, backend: Backend, batch: int = 1, loop: int = 50, warmup: int = 5) -> list[Timing]:
    """Time every file of a model (package) on ``backend`` with seeded inputs."""
    results = []
    for role, session, shapes in model_sessions(path, backend):
        feeds = random_feeds(session.inputs, batch=batch, shapes=shapes)
        timing, _ = time_calls(role, functools.partial(session.run, feeds), batch, loop, warmup)
        results.append(timing)
        session.close()
    return results


def format_timings(timings: list[Timing]) -> str:
    """A fixed-width table of timings."""
    header = f"{'model':<24}{'batch':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'items/s':>11}{'peak MiB':>10}"
    lines = [header]
    for t in timings:
        lines.append(
            f"{t.name:<24}{t.batch:>6}{t.p50_ms:>10.2f}{t.p90_ms:>10.2f}{t.p99_ms:>10.2f}"
            f"{t.throughput:>11.1f}{t.peak_rss_mb:>10.0f}"
        )
        for stage, ms in t.stages_ms.items():
            lines.append(f"  {stage:<22}{'':>6}{ms:>10.2f}")
    return "\n".join(lines)
