"""``facelib bench TASK`` and ``facelib check TASK``: whole tasks on real inputs.

``bench_task`` times task calls (one image / frame / clip, or ``batch`` images for tasks that
batch) and splits each call into preprocess / inference / postprocess with a
:class:`~facelib.tools.stages.StageClock` on every session of the task.  ``check_task`` runs the
same inputs through the task on the backend under test and on a reference backend and compares
every numeric field of the results (max abs / max rel / MSE per field).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.errors import InputError
from facelib.models.hub import resolve_package
from facelib.models.package import ModelPackage
from facelib.tools.adapters import BackendArg, Call, TaskAdapter, get_adapter
from facelib.tools.bench import Timing, peak_rss_mb
from facelib.tools.check import Difference, compare_arrays
from facelib.tools.stages import StageClock, instrument


@attrs.frozen
class TaskRun:
    """What ``bench_task`` / ``check_task`` were asked to do, resolved."""

    adapter: TaskAdapter
    model: ModelPackage
    inputs: tuple[Path, ...]
    options: Mapping[str, Any] = attrs.field(factory=dict)


def prepare(
    task: str,
    model: str | os.PathLike[str] | None,
    inputs: Sequence[str | os.PathLike[str]],
    **options: Any,
) -> TaskRun:
    """Resolve the adapter, the model package (hub name or directory) and the input paths."""
    adapter = get_adapter(task)
    paths = tuple(Path(p) for p in inputs)
    adapter.check_inputs(paths)
    task = adapter.task_class().task_name
    resolved = resolve_package(model if model is not None else adapter.default_model, task=task, progress=False)
    return TaskRun(adapter, resolved, paths, {k: v for k, v in options.items() if v is not None})


def _open(run: TaskRun, backend: BackendArg, backend_options: dict[str, Any] | None) -> Any:
    return run.adapter.open(run.model, backend, backend_options or None, run.inputs, **run.options)


def bench_task(
    run: TaskRun,
    backend: BackendArg,
    backend_options: dict[str, Any] | None = None,
    *,
    batch: int = 1,
    loop: int = 50,
    warmup: int = 5,
    max_frames: int = 64,
) -> Timing:
    """Latency percentiles, throughput, stage split and peak memory of task calls.

    The calls cycle over the input (its frames, in order) for ``warmup`` untimed and ``loop``
    timed calls.  ``stages_ms`` holds the mean preprocess / inference / postprocess milliseconds
    per call; they add up to ``mean_ms`` up to the cost of the clock itself.
    """
    if batch < 1 or loop < 1 or warmup < 0 or max_frames < 1:
        raise InputError("--batch, --loop and --max-frames must be >= 1 and --warmup >= 0")
    if batch > 1 and not run.adapter.batched:
        raise InputError(f"{run.adapter.name} processes one item per call; --batch must be 1")
    task = _open(run, backend, backend_options)
    try:
        calls = run.adapter.calls(task, run.inputs, batch, max_frames)
        for i in range(warmup):
            calls[i % len(calls)].run()
        clock = StageClock()
        instrument(task, clock)
        times = np.empty(loop)
        items = 0
        for i in range(loop):
            call = calls[i % len(calls)]
            clock.begin()
            start = time.perf_counter()
            result = call.run()
            times[i] = time.perf_counter() - start
            clock.end()
            items += call.items if call.count is None else call.count(result)
        ms = times * 1000
        return Timing(
            name=run.adapter.name,
            batch=max(1, round(items / loop)),
            loop=loop,
            p50_ms=float(np.percentile(ms, 50)),
            p90_ms=float(np.percentile(ms, 90)),
            p99_ms=float(np.percentile(ms, 99)),
            mean_ms=float(ms.mean()),
            throughput=float(items / times.sum()),
            stages_ms=clock.mean_ms(),
            peak_rss_mb=peak_rss_mb(),
        )
    finally:
        task.close()


# -- comparing results ---------------------------------------------------------------------------


def _is_numeric(value: object) -> bool:
    if isinstance(value, bool | int | float | np.number | np.bool_):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    return False


def _walk(value: object, name: str, out: dict[str, list[np.ndarray]]) -> None:
    if value is None or isinstance(value, str | bytes):
        return
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):  # type: ignore[arg-type]  # attrs.has checked it
            if field.eq is False:  # e.g. the frame image a video result carries along
                continue
            _walk(getattr(value, field.name), f"{name}.{field.name}" if name else field.name, out)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _walk(item, f"{name}.{key}" if name else str(key), out)
        return
    if _is_numeric(value):
        out[name or "value"].append(np.asarray(value, dtype=np.float64).ravel())
        return
    if isinstance(value, Sequence | np.ndarray):
        items = list(value)
        if items and all(_is_numeric(v) for v in items):
            out[name or "value"].append(np.asarray(items, dtype=np.float64).ravel())
        else:
            for item in items:
                _walk(item, name, out)


def result_fields(results: Sequence[object]) -> dict[str, np.ndarray]:
    """Every numeric field of ``results`` (attrs result objects, lists of them, arrays, dicts).

    Fields are named by their path without list indices (``faces.yaw``, ``faces.variants.capsule``)
    and the values of all results are concatenated in order, flattened; so a different number of
    faces or frames shows as a different length.  Fields declared ``eq=False`` are skipped.
    """
    collected: dict[str, list[np.ndarray]] = defaultdict(list)
    for result in results:
        _walk(result, "", collected)
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in collected.items()}


def run_task(
    run: TaskRun,
    backend: BackendArg,
    backend_options: dict[str, Any] | None = None,
    *,
    max_frames: int = 64,
) -> list[object]:
    """The results of every call over the inputs, in order."""
    task = _open(run, backend, backend_options)
    try:
        calls: list[Call] = run.adapter.calls(task, run.inputs, 1, max_frames)
        return [call.run() for call in calls]
    finally:
        task.close()


def check_task(
    run: TaskRun,
    backend: BackendArg,
    reference: BackendArg = "onnxruntime",
    backend_options: dict[str, Any] | None = None,
    *,
    max_frames: int = 64,
) -> list[Difference]:
    """Per result field: max abs / max rel / MSE of the task on ``backend`` against ``reference``.

    A field present on one side only, or of a different length (e.g. a face found by one backend
    only), is reported with infinite differences.
    """
    got = result_fields(run_task(run, backend, backend_options, max_frames=max_frames))
    want = result_fields(run_task(run, reference, None, max_frames=max_frames))
    diffs = []
    for field in sorted(set(got) | set(want)):
        if field not in got or field not in want:
            inf = float("inf")
            diffs.append(Difference(run.adapter.name, field, inf, inf, inf, ()))
            continue
        diffs.append(compare_arrays(run.adapter.name, field, got[field], want[field]))
    return diffs
