"""Building MagicMind models: ONNX (what facelib packages hold) or TensorFlow frozen graphs.

Both paths parse into an ``mm.Network``, set the input dimensions, configure the builder with
JSON snippets (archs, precision mode, fixed or mutable shapes with ``dim_range``), calibrate
quantized modes on real samples, then ``Builder().build_model(...)`` and serialize.  Every
MagicMind call returning a ``Status`` is checked; a failure is a :class:`BackendError` naming
the step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import CompileRequest, ShapeRange
from facelib.errors import BackendError, InputError
from facelib.io.atomic import write_bytes_atomic
from facelib_cambricon._status import check

#: facelib precision -> MagicMind precision_mode.
PRECISION_MODES = {"fp32": "force_float32", "fp16": "force_float16", "int8": "qint8_mixed_float16"}
ALL_MODES = (
    "force_float32",
    "force_float16",
    "qint8_mixed_float16",
    "qint16_mixed_float16",
    "qint8_mixed_float32",
    "qint16_mixed_float32",
)


@attrs.frozen
class BuildOptions:
    """How to build.

    precision_mode: a MagicMind mode (overrides the facelib precision).  mutable: mutable
    input shapes (``graph_shape_mutable`` + ``dim_range`` from the shape ranges); default: True
    when the model has dynamic inputs with shape ranges.  batch_size: dim 0 of a fixed build
    (default: the ranges' ``opt``).  archs: e.g. ``["mtp_372"]`` (default: the build machine's).
    type64to32: ``opt_config.type64to32_conversion``.  calibration_algorithm: ``"linear"`` or
    ``"eqnm"``.  computation_preference: ``"auto"``, ``"fast"`` or ``"high_precision"``.
    device_id: the MLU that calibration runs on (quantized modes need an active device).
    """

    precision_mode: str | None = None
    mutable: bool | None = None
    batch_size: int | None = None
    archs: tuple[str, ...] | None = None
    type64to32: bool = True
    calibration_algorithm: str = "linear"
    computation_preference: str | None = None
    device_id: int = 0

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> BuildOptions:
        known = {f.name for f in attrs.fields(cls)}
        kwargs = {k: v for k, v in options.items() if k in known}
        if kwargs.get("archs") is not None:
            kwargs["archs"] = tuple(kwargs["archs"])
        return cls(**kwargs)


def _mm() -> Any:
    try:
        import magicmind.python.runtime as mm
    except ImportError as exc:
        raise BackendError(
            f"MagicMind's Python module is not importable ({exc}); build inside Cambricon's MagicMind "
            "docker image (see docs/plugins/cambricon.md)"
        ) from exc
    return mm


class _Samples:
    """``mm.CalibDataInterface`` over real samples of one input (created lazily: the base
    class comes from MagicMind).

    MagicMind's Calibrator calls ``reset()``, then ``next()`` to load each sample and
    ``get_sample()`` to fetch what ``next()`` loaded, until ``next()`` returns OUT_OF_RANGE
    (the order every calibrator in Cambricon/magicmind_cloud's ``gen_model`` samples follows).
    """

    @staticmethod
    def make(mm: Any, samples: Sequence[np.ndarray]) -> Any:
        class Samples(mm.CalibDataInterface):
            def __init__(self) -> None:
                super().__init__()
                self._samples = [np.ascontiguousarray(s, dtype=np.float32) for s in samples]
                self._next = 0  # index of the sample the next next() loads
                self._current: np.ndarray | None = None

            def get_shape(self) -> Any:
                shown = self._current if self._current is not None else self._samples[0]
                return mm.Dims(shown.shape)

            def get_data_type(self) -> Any:
                return mm.DataType.FLOAT32

            def get_sample(self) -> np.ndarray | None:
                return self._current

            def next(self) -> Any:
                if self._next >= len(self._samples):
                    return mm.Status(mm.Code.OUT_OF_RANGE, "end of calibration data")
                self._current = self._samples[self._next]
                self._next += 1
                return mm.Status.OK()

            def reset(self) -> Any:
                self._next = 0
                self._current = None
                return mm.Status.OK()

        return Samples()


def _input_dims(
    names: Sequence[str], current: Sequence[Sequence[int]], shapes: Mapping[str, ShapeRange], options: BuildOptions
) -> tuple[list[tuple[int, ...]], dict[str, dict[str, list[int]]], bool]:
    """Dimensions to set per input, the dim_range JSON (by input index), and mutability."""
    dynamic = [any(d < 0 for d in dims) for dims in current]
    mutable = options.mutable if options.mutable is not None else any(dynamic)
    dims_out: list[tuple[int, ...]] = []
    ranges: dict[str, dict[str, list[int]]] = {}
    for index, (name, dims) in enumerate(zip(names, current)):
        rng = shapes.get(name)
        if rng is None and dynamic[index]:
            raise BackendError(
                f"input {name!r} has dynamic dims {list(dims)} and no shape range: add 'shapes' to the model card"
            )
        if rng is None:
            dims_out.append(tuple(dims))
            continue
        if mutable:
            dims_out.append(tuple(-1 if lo != hi else lo for lo, hi in zip(rng.min, rng.max)))
            ranges[str(index)] = {"min": list(rng.min), "max": list(rng.max)}
        else:
            fixed = list(rng.opt)
            if options.batch_size is not None:
                fixed[0] = int(options.batch_size)
            dims_out.append(tuple(fixed))
    return dims_out, ranges, mutable


def _config_snippets(
    mode: str, mutable: bool, ranges: Mapping[str, Any], options: BuildOptions
) -> list[dict[str, Any]]:
    snippets: list[dict[str, Any]] = [
        {"precision_config": {"precision_mode": mode}},
        {"graph_shape_mutable": mutable},
        {"opt_config": {"type64to32_conversion": options.type64to32}},
    ]
    if mutable and ranges:
        snippets.append({"dim_range": dict(ranges)})
    if options.archs:
        snippets.append({"archs": list(options.archs)})
    if options.computation_preference:
        snippets.append({"computation_preference": options.computation_preference})
    return snippets


def build_network(
    mm: Any,
    network: Any,
    output: Path,
    name: str,
    shapes: Mapping[str, ShapeRange],
    precision_mode: str,
    calibration: Sequence[Mapping[str, np.ndarray]] | None,
    options: BuildOptions,
) -> Path:
    """Configure, calibrate, build and serialize an already parsed ``mm.Network``."""
    if precision_mode not in ALL_MODES:
        raise InputError(f"precision_mode must be one of {ALL_MODES}, got {precision_mode!r}")
    count = network.get_input_count()
    tensors = [network.get_input(i) for i in range(count)]
    names = [t.get_tensor_name() for t in tensors]
    current = [list(t.get_dimension().GetDims()) for t in tensors]
    dims, ranges, mutable = _input_dims(names, current, shapes, options)
    for tensor, name, want in zip(tensors, names, dims):
        check(tensor.set_dimension(mm.Dims(want)), f"setting the dimensions of input {name!r} to {list(want)}")
    config = mm.BuilderConfig()
    for snippet in _config_snippets(precision_mode, mutable, ranges, options):
        check(config.parse_from_string(json.dumps(snippet)), f"builder config {json.dumps(snippet)}")
    if precision_mode.startswith("qint"):
        if not calibration:
            raise BackendError(
                f"{precision_mode} needs calibration data: pass calibration=[{{input: array}}, ...] "
                "drawn from real inputs"
            )
        data = []
        for name in names:
            try:
                data.append(_Samples.make(mm, [np.asarray(sample[name]) for sample in calibration]))
            except KeyError as exc:
                raise InputError(f"calibration samples lack input {name!r}") from exc
        device = mm.Device()
        device.id = int(options.device_id)
        check(device.active(), f"activating MLU {options.device_id} for calibration")
        calibrator = mm.Calibrator(data)
        algorithm = {
            "linear": mm.QuantizationAlgorithm.LINEAR_ALGORITHM,
            "eqnm": mm.QuantizationAlgorithm.EQNM_ALGORITHM,
        }
        if options.calibration_algorithm not in algorithm:
            raise InputError(f"calibration_algorithm must be one of {sorted(algorithm)}")
        check(
            calibrator.set_quantization_algorithm(algorithm[options.calibration_algorithm]),
            "choosing the calibration algorithm",
        )
        check(calibrator.calibrate(network, config), f"calibrating on {len(calibration)} samples")
    model = mm.Builder().build_model(name, network, config)
    if model is None:
        raise BackendError(
            f"MagicMind could not build {name!r} ({precision_mode}, {'mutable' if mutable else 'fixed'} shapes "
            f"{[list(d) for d in dims]}); see the MagicMind log above"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    check(model.serialize_to_file(os.fspath(output)), f"serializing to {output}")
    if mutable and ranges:  # the serialized model does not say which range it takes: its sessions read this
        by_name = {names[int(index)]: rng for index, rng in ranges.items()}
        write_bytes_atomic(dim_range_path(output), json.dumps({"dim_range": by_name}, indent=1).encode())
    return output


def dim_range_path(model: Path) -> Path:
    """The companion file of a mutable build: its inputs' ``dim_range`` by input name."""
    return model.with_name(model.name + ".dim_range.json")


def _mode(precision: str, options: BuildOptions) -> str:
    if options.precision_mode:
        return options.precision_mode
    if precision not in PRECISION_MODES:
        raise BackendError(f"the cambricon backend supports precisions {sorted(PRECISION_MODES)}, not {precision!r}")
    return PRECISION_MODES[precision]


def build_from_onnx(request: CompileRequest, options: BuildOptions) -> Path:
    """Build ``request.onnx_path`` into a serialized MagicMind model at ``request.output_path``."""
    mm = _mm()
    from magicmind.python.runtime.parser import Parser

    network = mm.Network()
    parser = Parser(mm.ModelKind.kOnnx)
    check(parser.parse(network, os.fspath(request.onnx_path)), f"parsing {request.onnx_path}")
    return build_network(
        mm,
        network,
        request.output_path,
        request.onnx_path.stem,
        request.shapes,
        _mode(request.precision, options),
        request.calibration,
        options,
    )


def build_from_tensorflow(
    graph_pb: str | os.PathLike[str],
    output: str | os.PathLike[str],
    inputs: Sequence[str],
    outputs: Sequence[str],
    shapes: Mapping[str, ShapeRange],
    precision: str = "fp32",
    calibration: Sequence[Mapping[str, np.ndarray]] | None = None,
    **options: Any,
) -> Path:
    """Build a TensorFlow frozen graph (e.g. an FSA-Net ``.pb``) directly, as the MagicMind port did.

    ``inputs``/``outputs`` are graph node names (``["input_1"]``, ``["pred_pose/mul_24"]`` for
    FSA-Net); ``shapes`` gives every input's range (FSA-Net: NHWC ``(N, 64, 64, 3)``), because
    a graphdef carries no usable input dims.  The built model's tensors carry those node names.
    """
    mm = _mm()
    from magicmind.python.runtime.parser import Parser

    build = BuildOptions.from_mapping(options)
    missing = [n for n in inputs if n not in shapes]
    if missing:
        raise InputError(f"give a shape range for every TF input; missing {missing}")
    network = mm.Network()
    parser = Parser(mm.ModelKind.kTensorflow)
    check(parser.set_model_param("tf-model-type", "tf-graphdef-file"), "setting tf-model-type")
    check(parser.set_model_param("tf-graphdef-inputs", list(inputs)), "setting tf-graphdef-inputs")
    check(parser.set_model_param("tf-graphdef-outputs", list(outputs)), "setting tf-graphdef-outputs")
    check(parser.parse(network, os.fspath(graph_pb)), f"parsing {graph_pb}")
    for i, name in enumerate(inputs):  # graphdef inputs arrive without dims: declare the range's shape
        rng = shapes[name]
        dims = tuple(-1 if lo != hi else lo for lo, hi in zip(rng.min, rng.max))
        check(network.get_input(i).set_dimension(mm.Dims(dims)), f"setting the dimensions of {name!r}")
    return build_network(
        mm, network, Path(output), Path(graph_pb).stem, shapes, _mode(precision, build), calibration, build
    )
