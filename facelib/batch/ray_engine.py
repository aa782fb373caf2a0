"""The ``ray`` engine: Ray Data ``map_batches`` with a stateful class on an actor pool.

Each actor holds one task instance (an :class:`~facelib.batch.runner.ItemRunner`) and runs
one item per call; every item is its own block (up to :data:`MAX_BLOCKS`), so a retried task
(after an actor or a node was lost) redoes at most the one item it held, and items an earlier
try already committed are recognised and not redone.  Actors ask Ray for what the backend needs
(:func:`actor_resources`): CPUs for ONNX Runtime on CPU, ``num_gpus`` for CUDA / TensorRT, a
custom resource (``NPU``, ``TPU``, ``MLU``) for device plugins.  Needs ``facelib[ray]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from facelib.batch.items import Item
from facelib.batch.runner import ItemRunner, JobConfig
from facelib.errors import require

#: Ray resources one actor needs, by facelib backend name (device plugins).
DEVICE_RESOURCES: dict[str, dict[str, Any]] = {
    "tensorrt": {"num_gpus": 1},
    "ascend": {"resources": {"NPU": 1}},
    "ascend-cann": {"resources": {"NPU": 1}},
    "sophon": {"resources": {"TPU": 1}},
    "cambricon": {"resources": {"MLU": 1}},
}
#: Items are one block each up to this many; larger jobs share blocks (a retried block skips the
#: items it already committed).
MAX_BLOCKS = 10_000
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "ROCMExecutionProvider")


def actor_resources(
    backend: str, backend_options: Mapping[str, Any] | None = None, num_cpus: float = 1.0
) -> dict[str, Any]:
    """Keyword arguments for ``map_batches`` (``num_cpus``, ``num_gpus``, ``resources``) of one actor.

    ``backend`` ``"auto"`` is resolved on this (the driver's) machine; name the backend when
    the workers differ.  ONNX Runtime asks for a GPU when its providers include CUDA, TensorRT
    or ROCm.
    """
    name = backend
    if name == "auto":
        from facelib.backends.registry import backend_class

        name = backend_class("auto").name
    wants: dict[str, Any] = {"num_cpus": float(num_cpus)}
    if name in DEVICE_RESOURCES:
        wants.update(DEVICE_RESOURCES[name])
    elif name == "onnxruntime":
        providers = (backend_options or {}).get("providers") or []
        names = [p[0] if isinstance(p, list | tuple) else p for p in providers]
        if any(p in _GPU_PROVIDERS for p in names):
            wants["num_gpus"] = 1
    return wants


class _RayWorker:
    """The stateful map_batches class: one ItemRunner (one task instance) per actor."""

    def __init__(self, config: JobConfig) -> None:
        self.runner = ItemRunner(config)
        self.runner.open()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        names, statuses = [], []
        for text in batch["item"]:
            row = self.runner.run(Item.from_json(str(text)))
            names.append(str(row["name"]))
            statuses.append(str(row["status"]))
        return {"name": names, "status": statuses}


def run_ray(
    config: JobConfig,
    items: Sequence[Item],
    workers: int | None,
    address: str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Iterator[tuple[str, str]]:
    """Run ``items`` on Ray; yields ``(name, status)`` as each item finishes.

    Connects to a running Ray (``ray.init`` already called), to ``address`` or ``RAY_ADDRESS``,
    or starts a local cluster (shut down again at the end).  ``workers`` is the actor pool
    size (default: as many actors as the cluster's CPUs / GPUs / devices allow, at most one
    per item); ``resources`` overrides :func:`actor_resources`.
    """
    require("ray.data", "ray", "The Ray batch engine")
    import ray
    import ray.data

    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        started = address is None
    wants = (
        dict(resources)
        if resources is not None
        else actor_resources(config.options.get("backend", "auto"), config.options.get("backend_options"))
    )
    size = workers or _pool_size(ray.cluster_resources(), wants)
    size = max(1, min(int(size), len(items)))
    try:
        rows = [{"item": item.to_json()} for item in items]
        data = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
        mapped = data.map_batches(
            _RayWorker,
            fn_constructor_kwargs={"config": config},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=size),  # Ray Data restarts lost actors and retries
            **wants,
        )
        for batch in mapped.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0):
            for name, status in zip(batch["name"], batch["status"]):
                yield str(name), str(status)
    finally:
        if started:
            ray.shutdown()


def _pool_size(cluster: Mapping[str, float], wants: Mapping[str, Any]) -> int:
    """How many actors the cluster holds at once for ``wants``."""
    limits = [cluster.get("CPU", 1.0) / max(float(wants.get("num_cpus", 1.0)), 1e-6)]
    if wants.get("num_gpus"):
        limits.append(cluster.get("GPU", 0.0) / float(wants["num_gpus"]))
    for key, amount in (wants.get("resources") or {}).items():
        limits.append(cluster.get(key, 0.0) / float(amount))
    return max(1, int(min(limits)))
