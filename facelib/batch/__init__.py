"""Batch jobs: one task over a whole dataset, on this machine or on a Ray cluster.

>>> from facelib import batch
>>> result = batch.run("headpose", ["photos/"], "out/", workers=4)        # doctest: +SKIP
>>> result.table().to_pandas()                                           # doctest: +SKIP

``run`` expands the inputs into items (:mod:`facelib.batch.items`), skips the items an earlier
run of the same OUTDIR finished (:mod:`facelib.batch.store`), runs the rest on an engine
(``local``: worker processes, :mod:`facelib.batch.local`; ``ray``: Ray Data,
:mod:`facelib.batch.ray_engine`) and writes ``OUTDIR/results.parquet`` with one row per item
(:mod:`facelib.batch.table`).  Task-specific code lives only in :mod:`facelib.batch.adapters`.

Needs pyarrow (``pip install 'facelib[batch]'``; the ``ray`` engine: ``'facelib[ray]'``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from facelib.batch.adapters import ADAPTERS, get_adapter
from facelib.batch.items import Item, expand_inputs
from facelib.batch.runner import JobConfig
from facelib.batch.store import JobStore
from facelib.errors import InputError

ENGINES = ("local", "ray")


@attrs.frozen
class BatchResult:
    """What one run of a batch job did.

    Attributes
    ----------
    outdir, results:
        The job folder and its ``results.parquet``.
    total:
        Items of the job.
    skipped:
        Items an earlier run had finished (not redone).
    processed:
        Items this run finished, ``ok`` + ``errors`` of them.
    ok, errors:
        Items this run finished successfully / with an error row.
    seconds:
        Wall time of this run (workers starting included).
    """

    outdir: Path
    results: Path
    total: int
    skipped: int
    processed: int
    ok: int
    errors: int
    seconds: float

    @property
    def complete(self) -> bool:
        """True when every item of the job has a row."""
        return self.skipped + self.processed == self.total

    def table(self) -> Any:
        """The results as a ``pyarrow.Table``."""
        from facelib.batch.table import pyarrow_modules

        _, pq = pyarrow_modules("Reading batch results")
        return pq.read_table(self.results)


def plan(task: str, inputs: Sequence[str | os.PathLike[str]], **options: Any) -> list[Item]:
    """The items ``run`` would process for ``inputs`` (in order), without running anything."""
    adapter = get_adapter(task)
    merged = adapter.options(options)
    return expand_inputs(inputs, lambda p: adapter.accepts(p, merged), adapter.path_params)


def run(
    task: str,
    inputs: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    ray_resources: Mapping[str, Any] | None = None,
    retry_errors: bool = False,
    max_attempts: int = 2,
    progress: bool | None = None,
    **options: Any,
) -> BatchResult:
    """Run ``task`` over every item of ``inputs``; resumes a job already in ``outdir``.

    Parameters
    ----------
    task:
        ``headpose``, ``blendshapes``, ``audio2face`` or ``motion``.
    inputs:
        Files, folders (searched recursively for the task's inputs), glob patterns, or
        manifests (``.csv`` / ``.parquet``: column ``input``, optional ``name``, other columns
        are per-item parameters such as ``subject``, ``template``, ``driving``).
    outdir:
        Where outputs, ``results.parquet`` and the job state go.  Running again with the same
        ``outdir`` (and the same task options) redoes only the items without a row.
    engine:
        ``local`` (worker processes here) or ``ray``.
    workers:
        Worker processes / Ray actors (default: the CPU count, at most the item count; on Ray:
        what the cluster holds).
    address:
        Ray cluster address (default ``RAY_ADDRESS``, else a local cluster).
    ray_resources:
        Per-actor ``num_cpus`` / ``num_gpus`` / ``resources`` (default: from the backend,
        :func:`facelib.batch.ray_engine.actor_resources`).
    retry_errors:
        Redo items whose row is an error (default: an error row counts as finished).
    max_attempts:
        Starts of an item whose worker dies before an error row is written instead.
    progress:
        Draw a progress bar over the whole job (default: when stderr is a terminal).
    **options:
        Task options (:data:`facelib.batch.adapters.ADAPTERS`; e.g. ``model``, ``backend``,
        ``backend_options``, ``detector``, ``num_faces``, ``subject``, ``source``).
    """
    from facelib._progress import progress as progress_bar
    from facelib.batch.table import build_table, pyarrow_modules, write_table

    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if max_attempts < 1:
        raise InputError(f"max_attempts must be at least 1, got {max_attempts}")
    pyarrow_modules("Batch jobs (the results table)")
    adapter = get_adapter(task)
    merged = adapter.options(options)
    items = expand_inputs(inputs, lambda p: adapter.accepts(p, merged), adapter.path_params)
    store = JobStore(Path(outdir).expanduser().resolve())
    store.open_job(task, merged)
    todo = [item for item in items if not _finished(store.read_row(item.name), retry_errors)]
    config = JobConfig(task, merged, str(store.outdir), uuid.uuid4().hex[:12], max_attempts)
    ok = errors = 0
    start = time.perf_counter()
    try:
        if todo:
            events = _engine(engine, config, todo, workers, address, ray_resources)
            for _, status in progress_bar(events, total=len(todo), desc=f"batch {task}", enabled=progress, unit="item"):
                ok += status == "ok"
                errors += status != "ok"
    finally:
        names = {item.name for item in items}
        rows = (row for row in store.iter_rows() if row.get("name") in names)
        write_table(build_table(rows, adapter.fields, [item.name for item in items]), store.results_path)
    return BatchResult(
        store.outdir,
        store.results_path,
        len(items),
        len(items) - len(todo),
        ok + errors,
        ok,
        errors,
        time.perf_counter() - start,
    )


def _finished(row: Mapping[str, Any] | None, retry_errors: bool) -> bool:
    return row is not None and not (retry_errors and row.get("status") != "ok")


def _engine(
    engine: str,
    config: JobConfig,
    items: Sequence[Item],
    workers: int | None,
    address: str | None,
    resources: Mapping[str, Any] | None,
) -> Iterator[tuple[str, str]]:
    if engine == "local":
        from facelib.batch.local import run_local

        return run_local(config, items, workers or os.cpu_count() or 1)
    from facelib.batch.ray_engine import run_ray

    return run_ray(config, items, workers, address, resources)


__all__ = ["ADAPTERS", "ENGINES", "BatchResult", "Item", "plan", "run"]
