"""A serialized MagicMind model on one MLU: model -> engine -> context -> queue, Status-checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelib.backends.base import SpecSession, TensorSpec
from facelib.backends.batching import Fit, Stage, fit, pad_batch, unpad_batch
from facelib.errors import BackendError, InferenceError, InputError, ModelFileError
from facelib_cambricon._status import check

_NUMPY = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "BOOL": np.bool_,
}


def numpy_dtype(data_type: Any) -> np.dtype[Any]:
    """numpy dtype of an ``mm.DataType`` (by enum member name)."""
    name = getattr(data_type, "name", str(data_type)).rsplit(".", 1)[-1]
    if name not in _NUMPY:
        raise ModelFileError(f"MagicMind input/output data type {name} is not supported by facelib")
    return np.dtype(_NUMPY[name])


class MagicMindSession(SpecSession):
    """Runs a serialized MagicMind model (``.mm``/``.magicmind``) on MLU ``device_id``.

    Fixed-shape models get their batch padded to the built batch (outputs sliced back);
    mutable models take any shape within the ``dim_range`` they were built with (MagicMind
    checks the range; a shape outside it is reported with MagicMind's Status message).
    """

    def __init__(self, path: Path, device_id: int = 0) -> None:
        import magicmind.python.runtime as mm

        self.model_path = Path(path)
        if not self.model_path.is_file():
            raise ModelFileError(f"MagicMind model not found: {self.model_path}")
        self._mm = mm
        self._model = mm.Model()
        check(self._model.deserialize_from_file(str(self.model_path)), f"loading {self.model_path}", ModelFileError)
        self._device = mm.Device()
        self._device.id = int(device_id)
        check(self._device.active(), f"activating MLU {device_id}")
        self._engine = self._model.create_i_engine()
        if self._engine is None:
            raise BackendError(f"MagicMind could not create an engine for {self.model_path.name} on MLU {device_id}")
        self._context = self._engine.create_i_context()
        if self._context is None:
            raise BackendError(f"MagicMind could not create a context for {self.model_path.name}")
        self._queue = self._device.create_queue()
        if self._queue is None:
            raise BackendError(f"MagicMind could not create a queue on MLU {device_id}")
        in_names = list(self._model.get_input_names())
        out_names = list(self._model.get_output_names())
        in_dims = [tuple(int(d) for d in dims.GetDims()) for dims in self._model.get_input_dimensions()]
        out_dims = [tuple(int(d) for d in dims.GetDims()) for dims in self._model.get_output_dimensions()]
        self._in_types = [numpy_dtype(t) for t in self._model.get_input_data_types()]
        out_types = [numpy_dtype(t) for t in self._model.get_output_data_types()]
        self._mutable = any(d < 0 for dims in in_dims for d in dims)
        self._stage = Stage(
            "mutable" if self._mutable else "fixed", dict(zip(in_names, in_dims)), dict(zip(out_names, out_dims))
        )

        def spec(name: str, dims: tuple[int, ...], dtype: np.dtype[Any]) -> TensorSpec:
            return TensorSpec(name, tuple(d if d >= 0 else None for d in dims), dtype.name)

        self._inputs = tuple(spec(n, d, t) for n, d, t in zip(in_names, in_dims, self._in_types))
        self._outputs = tuple(spec(n, d, t) for n, d, t in zip(out_names, out_dims, out_types))
        self._ranges = _read_dim_range(self.model_path) if self._mutable else {}

    @property
    def mutable(self) -> bool:
        """True when the model was built with ``graph_shape_mutable``."""
        return self._mutable

    def plan(self, feeds: Mapping[str, np.ndarray]) -> Fit | None:
        """The padding a fixed-shape model needs for ``feeds`` (None for mutable models)."""
        if self._mutable:
            return None
        return fit([self._stage], {n: tuple(np.shape(a)) for n, a in feeds.items()}, self.model_path.name)

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        if self._context is None:
            raise InferenceError(f"{self.model_path.name}: the session is closed")
        if self._mutable:
            self.check_feeds(feeds)
            self._check_ranges(feeds)
        elif set(feeds) != set(self._stage.inputs):
            raise InputError(
                f"{self.model_path.name}: inputs do not match the model; got {sorted(feeds)}, "
                f"the model takes {list(self._stage.inputs)}"
            )
        wanted = self.output_names(output_names or None)
        fitted = self.plan(feeds)
        arrays = []
        for spec, dtype in zip(self._inputs, self._in_types):
            value = np.asarray(feeds[spec.name])
            if not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
                raise InputError(f"{self.model_path.name}: input {spec.name!r} has dtype {value.dtype}, not numeric")
            value = np.ascontiguousarray(value, dtype=dtype)
            if fitted is not None and fitted.batch is not None:
                value = pad_batch(value, fitted.batch)
            arrays.append(value)
        tensors = self._context.create_inputs()
        if not isinstance(tensors, list):  # some releases return (Status, list)
            status, tensors = tensors
            check(status, "creating input tensors", InferenceError)
        for tensor, spec, value in zip(tensors, self._inputs, arrays):
            check(tensor.from_numpy(value), f"copying input {spec.name!r} {list(value.shape)}", InferenceError)
        produced: list[Any] = []
        what = f"running {self.model_path.name} on inputs {[list(a.shape) for a in arrays]}"
        check(self._context.enqueue(tensors, produced, self._queue), what, InferenceError)
        check(self._queue.sync(), what + " (queue sync)", InferenceError)
        results = {spec.name: np.asarray(t.asnumpy()) for spec, t in zip(self._outputs, produced)}
        if fitted is not None:
            results = unpad_batch(results, fitted, self.model_path.name)
        return {n: results[n] for n in wanted}

    def _check_ranges(self, feeds: Mapping[str, np.ndarray]) -> None:
        """A shape outside the ``dim_range`` the model was built with is the caller's to fix."""
        for name, (low, high) in self._ranges.items():
            shape = tuple(np.shape(feeds[name]))
            if len(shape) == len(low) and not all(a <= d <= b for d, a, b in zip(shape, low, high)):
                raise InputError(
                    f"{self.model_path.name}: input {name!r} has shape {shape}, outside the range "
                    f"{tuple(low)}..{tuple(high)} this model was built for (dim_range); split the batch, "
                    "or rebuild with a wider shape range in the model card"
                )

    def close(self) -> None:
        # The samples' clean-up order: context, engine, model, queue, device.
        self._context = None
        self._engine = None
        self._queue = None


def _read_dim_range(model_path: Path) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """The ``dim_range`` facelib's builder recorded beside a mutable model (input name -> (min, max));
    empty for a model built elsewhere (MagicMind then reports a shape outside its range itself)."""
    import json

    from facelib_cambricon.builder import dim_range_path

    path = dim_range_path(model_path)
    if not path.is_file():
        return {}
    try:
        ranges = json.loads(path.read_text())["dim_range"]
        return {str(n): (tuple(int(d) for d in r["min"]), tuple(int(d) for d in r["max"])) for n, r in ranges.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path} is not a dim_range record facelib wrote ({exc}); delete it and rebuild") from exc
