"""A bmodel loaded with SOPHON SAIL, run through the numpy ``Engine.process`` path."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from facelib.backends.base import SpecSession, TensorSpec
from facelib.backends.batching import Fit, Stage, fit, pad_batch, unpad_batch
from facelib.errors import BackendError, InferenceError, InputError, ModelFileError

#: Stage graphs facelib compiles (facelib_sophon.compiler.CompilePlan.stage_name):
#: ``<model>_b<batch>`` when stages differ by batch, ``<model>_s<index>`` when they share one.
_STAGE_SUFFIX = re.compile(r"^(?P<base>.+)_(?:b|s)(?P<number>\d+)$")


def family_of(graph: str) -> str:
    """The model a graph belongs to: ``fsanet_b4`` / ``seq_s1`` -> ``fsanet`` / ``seq`` (facelib stages)."""
    match = _STAGE_SUFFIX.match(graph)
    return match.group("base") if match else graph


def _merge(shapes: Sequence[Sequence[int]], dynamic: bool) -> tuple[int | None, ...]:
    """Dims shared by every stage stay fixed; dims that differ (or any, if dynamic) are None."""
    if dynamic:
        return tuple(None for _ in shapes[0])
    first = tuple(shapes[0])
    return tuple(d if all(len(s) == len(first) and s[i] == d for s in shapes) else None for i, d in enumerate(first))


class SophonSession(SpecSession):
    """Runs one graph family of a bmodel on one TPU.

    Parameters
    ----------
    path:
        The ``.bmodel`` file.
    device_id:
        TPU id as listed by ``bm-smi``.
    graph:
        Graph (net) name, or the family name of graphs ``NAME_b<batch>`` / ``NAME_s<index>``
        compiled by facelib as static stages; default: the only family in the file.
    """

    def __init__(self, path: Path, device_id: int = 0, graph: str | None = None) -> None:
        import sophon.sail as sail

        self.model_path = Path(path)
        if not self.model_path.is_file():
            raise ModelFileError(f"bmodel not found: {self.model_path}")
        try:
            # pybind11 constructors take no keyword names: positional only.
            self._engine = sail.Engine(str(self.model_path), int(device_id), sail.IOMode.SYSIO)
        except Exception as exc:  # SailEngineError & co. are plain Exception subclasses
            if type(exc).__name__ == "SailDeviceError":
                raise BackendError(
                    f"TPU {device_id} cannot be opened ({exc}); bm-smi lists the available TPU ids"
                ) from exc
            raise ModelFileError(
                f"SAIL cannot load {self.model_path} on TPU {device_id}: {type(exc).__name__}: {exc}. "
                "Is it a bmodel compiled for this chip?"
            ) from exc
        graphs = list(self._engine.get_graph_names())
        families: dict[str, list[str]] = {}
        for g in graphs:
            families.setdefault(family_of(g), []).append(g)
        if graph is None:
            if len(families) != 1:
                raise InputError(
                    f"{self.model_path.name} holds several models {sorted(families)}; choose one with "
                    "SophonBackend(graph=NAME)"
                )
            members = next(iter(families.values()))
        elif graph in families:
            members = families[graph]
        elif graph in graphs:
            members = [graph]
        else:
            raise InputError(f"{self.model_path.name} has no graph {graph!r}; it has {graphs}")
        self._stages = [self._stage(g) for g in members]
        names = {(tuple(s.inputs), tuple(s.outputs)) for s in self._stages}
        if len(names) != 1:
            raise ModelFileError(f"{self.model_path.name}: graphs {members} do not share input/output names")
        for member in members:
            self._check_input_dtypes(member)
        first = self._stages[0]
        self._inputs = tuple(
            TensorSpec(n, _merge([s.inputs[n] for s in self._stages], any(s.dynamic for s in self._stages)), "float32")
            for n in first.inputs
        )
        self._outputs = tuple(
            TensorSpec(n, _merge([s.outputs[n] for s in self._stages], any(s.dynamic for s in self._stages)), "float32")
            for n in first.outputs
        )

    def _stage(self, graph: str) -> Stage:
        e = self._engine
        dynamic = bool(e.graph_is_dynamic(graph))
        inputs = {n: tuple(int(d) for d in e.get_input_shape(graph, n)) for n in e.get_input_names(graph)}
        outputs = {n: tuple(int(d) for d in e.get_output_shape(graph, n)) for n in e.get_output_names(graph)}
        return Stage(graph, inputs, outputs, dynamic)

    def _check_input_dtypes(self, graph: str) -> None:
        """SAIL's numpy path takes FP32 inputs (and quantizes to INT8/UINT8/INT32 itself); FP16 or
        BF16 bmodel inputs (``model_deploy --quant_input``) are refused by it, so refuse them here."""
        for name in self._engine.get_input_names(graph):
            dtype = self._engine.get_input_dtype(graph, name)
            label = getattr(dtype, "name", str(dtype))
            if "FLOAT16" in label:
                raise ModelFileError(
                    f"{self.model_path.name}: graph {graph!r} input {name!r} is {label}; SAIL's numpy path "
                    "takes float32 inputs only. Compile without --quant_input (the facelib default)."
                )

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The compiled stages (graph, shapes) this session chooses from."""
        return tuple(self._stages)

    def plan(self, feeds: Mapping[str, np.ndarray]) -> Fit:
        """The stage (and padded batch) ``feeds`` would run on."""
        return fit(self._stages, {n: tuple(np.shape(a)) for n, a in feeds.items()}, self.model_path.name)

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        if self._engine is None:
            raise InferenceError(f"{self.model_path.name}: the session is closed")
        expected = list(self._stages[0].inputs)
        if set(feeds) != set(expected):
            raise InputError(
                f"{self.model_path.name}: inputs do not match the model; got {sorted(feeds)}, "
                f"the model takes {expected}"
            )
        for name, value in feeds.items():
            if not np.issubdtype(np.asarray(value).dtype, np.number):
                raise InputError(
                    f"{self.model_path.name}: input {name!r} has dtype {np.asarray(value).dtype}, not numeric"
                )
        wanted = self.output_names(output_names or None)
        fitted = self.plan(feeds)
        # The numpy process() path takes float32 (pybind array_t<float>); quantized inputs are
        # scaled by SAIL itself.
        arrays = {n: np.ascontiguousarray(feeds[n], dtype=np.float32) for n in fitted.stage.inputs}
        if fitted.batch is not None:
            arrays = {n: pad_batch(a, fitted.batch) for n, a in arrays.items()}
        try:
            raw = self._engine.process(fitted.stage.key, arrays)
        except Exception as exc:
            raise InferenceError(
                f"SAIL failed running {self.model_path.name} graph {fitted.stage.key!r} on inputs "
                f"{ {n: list(a.shape) for n, a in arrays.items()} }: {type(exc).__name__}: {exc}"
            ) from exc
        results = unpad_batch({n: np.asarray(v) for n, v in raw.items()}, fitted, self.model_path.name)
        return {n: results[n] for n in wanted}

    def close(self) -> None:
        self._engine = None  # SAIL frees device memory when the Engine is collected
