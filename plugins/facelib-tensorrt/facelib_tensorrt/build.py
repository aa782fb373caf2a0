"""Compiling an ONNX file to a serialized TensorRT engine (``CompileRequest`` -> ``.engine``).

Steps: parse the ONNX with ``trt.OnnxParser`` (parser errors are reported one by one), add one
optimisation profile covering every dynamic input (min/opt/max from the model card), choose
precision as the installed TensorRT allows it, reuse and update a timing cache file, build and
write the plan.

Precision and TensorRT versions
-------------------------------
* TensorRT 10 (weakly typed network): ``fp16`` sets ``BuilderFlag.FP16``; ``int8`` sets
  ``BuilderFlag.INT8`` and feeds an entropy calibrator from ``request.calibration`` (or relies
  on Q/DQ nodes already in the ONNX).
* Strongly typed networks (TensorRT 11, where the precision flags are gone, or
  ``strongly_typed=True`` on 10.x): tensor types come from the ONNX file.  An ONNX already in
  FP16 / with Q/DQ nodes is built as it is; otherwise ``fp16`` builds from a float16 copy and
  ``int8`` from a Q/DQ copy calibrated on ``request.calibration`` (or the ``calibration_data``
  .npz), both made with onnxruntime's tools (:mod:`facelib_tensorrt.precision`).  ``bf16``
  needs a BF16 ONNX.

The backend option ``precision`` applies to requests that ask for the default ``fp32`` (so that
``facelib check <package> --backend tensorrt --backend-option precision=fp16`` measures it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import CompileRequest, ShapeRange
from facelib.errors import BackendError, InputError
from facelib_tensorrt import cuda
from facelib_tensorrt.sdk import make_logger, trt_major

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def onnx_features(path: Path) -> dict[str, bool]:
    """Which precisions the ONNX file itself carries (for strongly typed builds)."""
    import onnx

    model = onnx.load(os.fspath(path), load_external_data=False)
    types = {init.data_type for init in model.graph.initializer}
    types |= {v.type.tensor_type.elem_type for v in model.graph.input}
    ops = {node.op_type for node in model.graph.node}
    return {
        "fp16": onnx.TensorProto.FLOAT16 in types,
        "bf16": onnx.TensorProto.BFLOAT16 in types,
        "qdq": bool({"QuantizeLinear", "DequantizeLinear"} & ops),
    }


def _parse(trt: Any, parser: Any, path: Path, logger: Any) -> None:
    if parser.parse_from_file(os.fspath(path)):
        return
    problems = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = ""
        node = _call(err, "node")
        name = _call(err, "node_name")
        op = _call(err, "node_operator")
        if name or op:
            where = f"node {name or node} ({op}): " if op else f"node {name or node}: "
        elif isinstance(node, int) and node >= 0:
            where = f"node {node}: "
        problems.append(f"{where}{_call(err, 'desc') or err}")
    detail = "; ".join(problems) or logger.explain() or "no details"
    raise BackendError(
        f"TensorRT {trt.__version__} could not parse {path.name}: {detail}. "
        "Check that the file is a complete ONNX model with ops TensorRT supports (opset <= 20)."
    )


def _call(obj: Any, method: str) -> Any:
    fn = getattr(obj, method, None)
    try:
        return fn() if callable(fn) else None
    except Exception:  # noqa: BLE001 - optional details only
        return None


def _network_inputs(network: Any) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        out.append((str(tensor.name), tuple(int(d) for d in tensor.shape)))
    return out


def _check_range(name: str, shape: tuple[int, ...], rng: ShapeRange) -> None:
    if len(rng.min) != len(shape):
        raise InputError(f"shape range of input {name!r} has rank {len(rng.min)}, the network input is {shape}")
    for i, d in enumerate(shape):
        if d >= 0 and not (rng.min[i] == rng.opt[i] == rng.max[i] == d):
            raise InputError(
                f"shape range of input {name!r} gives dim {i} as {rng.min[i]}..{rng.max[i]}, "
                f"but the network fixes it at {d}"
            )
        if rng.min[i] < 1 and d < 0:
            raise InputError(f"shape range of input {name!r}: dynamic dim {i} needs min >= 1, got {rng.min[i]}")


def _profile(builder: Any, inputs: list[tuple[str, tuple[int, ...]]], shapes: Mapping[str, ShapeRange]) -> Any:
    dynamic = {name: shape for name, shape in inputs if any(d < 0 for d in shape)}
    unknown = sorted(set(shapes) - {name for name, _ in inputs})
    if unknown:
        raise InputError(f"shape ranges given for inputs the network does not have: {unknown}")
    for name, shape in inputs:
        if name in shapes and name not in dynamic:
            _check_range(name, shape, shapes[name])  # a static input's range must be its shape
    if not dynamic:
        return None
    missing = sorted(set(dynamic) - set(shapes))
    if missing:
        raise InputError(
            f"inputs {missing} have dynamic dimensions "
            f"({', '.join(f'{n}: {dynamic[n]}' for n in missing)}); TensorRT needs their min/opt/max "
            "shapes: add them to the model card's 'shapes' (or CompileRequest.shapes)"
        )
    profile = builder.create_optimization_profile()
    for name, shape in dynamic.items():
        rng = shapes[name]
        _check_range(name, shape, rng)
        _set_shape(profile, name, rng.min, rng.opt, rng.max)
    return profile


def _set_shape(profile: Any, name: str, lo: Sequence[int], opt: Sequence[int], hi: Sequence[int]) -> None:
    # the Python binding raises RuntimeError for an invalid range (older ones only log it)
    try:
        profile.set_shape(name, tuple(lo), tuple(opt), tuple(hi))
    except RuntimeError as exc:
        raise InputError(f"TensorRT refused the shape range {tuple(lo)}..{tuple(hi)} of input {name!r}: {exc}") from exc


def _timing_cache_path(options: Mapping[str, Any], device_tag: str, version: str) -> Path | None:
    value = options.get("timing_cache", True)
    if value is False or value is None:
        return None
    if value is True:
        from facelib.models.cache import cache_dir

        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device_tag)
        return cache_dir() / "tensorrt" / f"timing-{safe}-trt{version}.cache"
    return Path(value).expanduser()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class _CalibrationFeeder:
    """Device buffers holding one calibration batch at a time (used by the calibrator)."""

    def __init__(self, rt: Any, batches: Sequence[Mapping[str, np.ndarray]], dtypes: Mapping[str, str]) -> None:
        self.rt = rt
        self.batches = [
            {k: np.ascontiguousarray(v, dtype=dtypes.get(k, "float32")) for k, v in b.items()} for b in batches
        ]
        self.index = 0
        self.buffers: dict[str, cuda.DeviceBuffer] = {}
        for batch in self.batches:
            for name, array in batch.items():
                if name in self.buffers:
                    self.buffers[name].ensure(array.nbytes)
                else:
                    self.buffers[name] = cuda.DeviceBuffer(rt, array.nbytes)

    def next_pointers(self, names: Sequence[str]) -> list[int] | None:
        if self.index >= len(self.batches):
            return None
        batch = self.batches[self.index]
        self.index += 1
        missing = [n for n in names if n not in batch]
        if missing:
            raise InputError(f"calibration batch {self.index - 1} lacks inputs {missing}")
        for name in names:
            cuda.upload_sync(self.rt, self.buffers[name], batch[name])
        return [self.buffers[name].ptr for name in names]

    def free(self) -> None:
        for buf in self.buffers.values():
            buf.free()
        self.buffers.clear()


def _make_calibrator(trt: Any, feeder: _CalibrationFeeder, cache_path: Path | None) -> Any:
    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.error: BaseException | None = None

        def get_batch_size(self) -> int:
            return 1  # explicit-batch networks: the batch is part of each input's shape

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                return feeder.next_pointers(list(names))
            except Exception as exc:  # noqa: BLE001 - TensorRT swallows exceptions here
                self.error = exc
                return None

        def read_calibration_cache(self) -> bytes | None:
            if cache_path is not None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                _write_atomic(cache_path, bytes(cache))

    return Calibrator()


def _calibration_profile(
    builder: Any, inputs: list[tuple[str, tuple[int, ...]]], batches: Sequence[Mapping[str, np.ndarray]]
) -> Any:
    for index, batch in enumerate(batches):
        for name, shape in inputs:
            if name not in batch:
                raise InputError(f"int8 calibration batch {index} lacks input {name!r}")
            got = tuple(np.shape(batch[name]))
            if len(got) != len(shape) or any(d >= 0 and d != g for d, g in zip(shape, got)):
                raise InputError(
                    f"int8 calibration batch {index}: input {name!r} has shape {got}, the network takes {shape}"
                )
    dynamic = [name for name, shape in inputs if any(d < 0 for d in shape)]
    if not dynamic:
        return None
    profile = builder.create_optimization_profile()
    for name in dynamic:
        shapes = {tuple(np.shape(b[name])) for b in batches if name in b}
        if len(shapes) != 1:
            raise InputError(
                f"int8 calibration batches must all have one shape per dynamic input; {name!r} has {sorted(shapes)}"
            )
        shape = shapes.pop()
        _set_shape(profile, name, shape, shape, shape)
    return profile


def build_engine(request: CompileRequest, options: Mapping[str, Any], device_tag: str) -> Path:
    """Compile ``request`` with TensorRT; see the module docstring.  Returns the written path."""
    from facelib_tensorrt.sdk import import_tensorrt

    trt = import_tensorrt()
    rt = cuda.import_runtime()
    cuda.set_device(rt, int(options.get("device_id", 0)))
    precision = request.precision
    if precision == "fp32" and options.get("precision"):
        precision = str(options["precision"])
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    onnx_path = Path(request.onnx_path)
    if not onnx_path.is_file():
        raise BackendError(f"ONNX file not found: {onnx_path}")
    calibration: list[Mapping[str, np.ndarray]] = list(request.calibration or [])
    if not calibration and options.get("calibration_data"):
        from facelib_tensorrt.precision import load_calibration

        calibration = list(load_calibration(options["calibration_data"]))
    request = attrs.evolve(request, precision=precision, calibration=calibration or None)
    strongly_typed = trt_major(trt) >= 11 or bool(options.get("strongly_typed", False))
    output = Path(request.output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    converted = _typed_onnx(onnx_path, output, precision, calibration) if strongly_typed else None
    try:
        return _build(trt, rt, request, converted or onnx_path, options, device_tag, strongly_typed)
    finally:
        if converted is not None:
            converted.unlink(missing_ok=True)


def _typed_onnx(onnx_path: Path, output: Path, precision: str, calibration: Sequence[Any]) -> Path | None:
    """For a strongly typed build: an FP16 / Q/DQ copy of the ONNX when it lacks those types."""
    from facelib_tensorrt import precision as convert

    if precision not in ("fp16", "int8"):
        return None
    features = onnx_features(onnx_path)
    if features["fp16" if precision == "fp16" else "qdq"]:
        return None  # already typed: build it as it is
    target = output.with_name(f".{output.name}.{os.getpid()}.{precision}.onnx")
    try:
        if precision == "fp16":
            return convert.to_fp16(onnx_path, target)
        return convert.to_qdq_int8(onnx_path, target, calibration)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _build(
    trt: Any,
    rt: Any,
    request: CompileRequest,
    onnx_path: Path,
    options: Mapping[str, Any],
    device_tag: str,
    strongly_typed: bool,
) -> Path:

    logger = make_logger(trt)
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    flag_enum = trt.NetworkDefinitionCreationFlag
    flags = 0
    if strongly_typed and hasattr(flag_enum, "STRONGLY_TYPED"):
        flags |= 1 << int(flag_enum.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    _parse(trt, parser, onnx_path, logger)

    config = builder.create_builder_config()
    if options.get("workspace_bytes"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options["workspace_bytes"]))
    if options.get("builder_optimization_level") is not None:
        config.builder_optimization_level = int(options["builder_optimization_level"])
    if options.get("version_compatible"):
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)

    inputs = _network_inputs(network)
    profile = _profile(builder, inputs, request.shapes)
    if profile is not None:
        mark = logger.mark()
        if config.add_optimization_profile(profile) < 0:
            raise InputError(f"TensorRT rejected the optimisation profile of {onnx_path.name}{logger.explain(mark)}")

    feeder: _CalibrationFeeder | None = None
    try:
        feeder = _set_precision(trt, rt, builder, config, network, inputs, request, onnx_path, options, strongly_typed)
        cache_path = _timing_cache_path(options, device_tag, str(trt.__version__))
        cache_bytes = cache_path.read_bytes() if cache_path is not None and cache_path.is_file() else b""
        if cache_path is not None:
            timing_cache = config.create_timing_cache(cache_bytes)
            if timing_cache is None or not config.set_timing_cache(timing_cache, False):
                # corrupt, or made on another GPU: start a fresh cache (the file is replaced after the build)
                config.set_timing_cache(config.create_timing_cache(b""), False)
        mark = logger.mark()
        plan = builder.build_serialized_network(network, config)
        calibrator = getattr(config, "int8_calibrator", None)
        if calibrator is not None and getattr(calibrator, "error", None) is not None:
            raise BackendError(f"int8 calibration failed: {calibrator.error}") from calibrator.error
        if plan is None:
            raise BackendError(f"TensorRT failed to build an engine for {onnx_path.name}{logger.explain(mark)}")
        if cache_path is not None:
            _write_atomic(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    finally:
        if feeder is not None:
            feeder.free()
    output = Path(request.output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(bytes(memoryview(plan)))
    return output


def _set_precision(
    trt: Any,
    rt: Any,
    builder: Any,
    config: Any,
    network: Any,
    inputs: list[tuple[str, tuple[int, ...]]],
    request: CompileRequest,
    onnx_path: Path,
    options: Mapping[str, Any],
    strongly_typed: bool,
) -> _CalibrationFeeder | None:
    precision = request.precision
    if precision == "fp32":
        return None
    features = onnx_features(onnx_path)
    flag = {"fp16": "FP16", "bf16": "BF16", "int8": "INT8"}[precision]
    has_flag = hasattr(trt.BuilderFlag, flag)
    if strongly_typed or not has_flag:
        needed = {"fp16": "fp16", "bf16": "bf16", "int8": "qdq"}[precision]
        if features[needed]:
            return None  # the ONNX already carries the types; the strongly typed build follows them
        raise BackendError(
            f"TensorRT {trt.__version__} builds strongly typed networks: precision comes from the ONNX file's "
            f"types, and {Path(request.onnx_path).name} has no {precision} tensors. Convert it to "
            f"{precision.upper()} yourself and compile that file, or use precision 'fp16' or 'int8', "
            "which facelib converts for you."
        )
    config.set_flag(getattr(trt.BuilderFlag, flag))
    if precision != "int8" or features["qdq"]:
        return None
    if not request.calibration:
        raise BackendError(
            "int8 needs calibration data (CompileRequest.calibration: a few input dicts from real data) "
            "or an ONNX with Q/DQ nodes"
        )
    dtypes = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        from facelib_tensorrt.sdk import dtype_name

        dtypes[str(t.name)] = dtype_name(t.dtype) or "float32"
    calib_profile = _calibration_profile(builder, inputs, request.calibration)
    feeder = _CalibrationFeeder(rt, request.calibration, dtypes)
    cache = options.get("calibration_cache")
    config.int8_calibrator = _make_calibrator(trt, feeder, Path(cache) if cache else None)
    if calib_profile is not None:
        config.set_calibration_profile(calib_profile)
    return feeder
