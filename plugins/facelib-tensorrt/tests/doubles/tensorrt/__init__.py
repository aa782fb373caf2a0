"""Test double of the ``tensorrt`` Python package (10.x; 11.x with FACELIB_TRT_DOUBLE_VERSION=11.*).

What it enforces, as the real library does (vendor-apis.md §4): the name-based I/O API only;
``-1`` in engine shapes for dynamic dims; a network with dynamic inputs needs an optimisation
profile; profile shapes must fit the network; ``set_input_shape`` must be called for every
dynamic input and stay inside profile 0; every I/O tensor needs an address; setters and
``execute_async_v3`` return ``False`` and report through the logger; plans only deserialize
with the same TensorRT version and compute capability; TensorRT 11 has no FP16/INT8/BF16
builder flags, no EXPLICIT_BATCH and no int8 calibrator.  Beyond the real library it refuses
tensor addresses that are not live device allocations large enough for the tensor (undefined
behaviour on a real GPU).  Numbers come from onnxruntime running the ONNX inside the plan.
"""

from __future__ import annotations

import enum
import json
import os
import struct
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np


class _LazyCuda:
    """The CUDA runtime, imported on first use (TensorRT does not need cuda-python to import).

    Device memory is reached in one of two ways: through the cuda-bindings double's simulated
    memory (the tests), or -- when the real cuda-bindings is imported, as ``scripts/gpu-check.sh``
    does on a GPU machine -- with real ``cudaMemcpy`` calls, so that the plugin's own device
    buffers, copies, streams and tensor addresses are the real ones and only the kernels are
    replaced by onnxruntime on the CPU.
    """

    def __getattr__(self, name: str) -> Any:
        from cuda.bindings import runtime

        return getattr(runtime, name)

    @property
    def simulated(self) -> bool:
        from cuda.bindings import runtime

        return hasattr(runtime, "_device_view")

    def _device_view(self, ptr: int, nbytes: int) -> Any:  # simulated memory only
        from cuda.bindings import runtime

        return runtime._device_view(ptr, nbytes)

    def valid(self, ptr: int, nbytes: int) -> bool:
        """Whether [ptr, ptr+nbytes) lies inside one live device allocation."""
        if self.simulated:
            return self._device_view(ptr, nbytes) is not None
        from cuda.bindings import driver

        err, base, size = driver.cuMemGetAddressRange(ptr)
        if err != driver.CUresult.CUDA_SUCCESS:
            return False
        return int(base) <= ptr and ptr + nbytes <= int(base) + int(size)

    def read(self, ptr: int, nbytes: int) -> np.ndarray | None:
        """A host copy (uint8) of device bytes, or None when they are not a live allocation."""
        if self.simulated:
            view = self._device_view(ptr, nbytes)
            return None if view is None else np.array(view, copy=True)
        if not self.valid(ptr, nbytes):
            return None
        host = np.empty(nbytes, np.uint8)
        (err,) = self.cudaMemcpy(host.ctypes.data, ptr, nbytes, self.cudaMemcpyKind.cudaMemcpyDeviceToHost)
        if err != self.cudaError_t.cudaSuccess:
            raise MemoryError(f"cudaMemcpy device to host failed: {err}")
        return host

    def write(self, ptr: int, data: np.ndarray) -> None:
        """Copy host bytes (uint8, C-contiguous) to device memory."""
        if self.simulated:
            view = self._device_view(ptr, data.nbytes)
            if view is None:
                raise MemoryError(f"device range 0x{ptr:x}+{data.nbytes} is not a live allocation")
            view[:] = data
            return
        if not self.valid(ptr, data.nbytes):
            raise MemoryError(f"device range 0x{ptr:x}+{data.nbytes} is not a live allocation")
        (err,) = self.cudaMemcpy(ptr, data.ctypes.data, data.nbytes, self.cudaMemcpyKind.cudaMemcpyHostToDevice)
        if err != self.cudaError_t.cudaSuccess:
            raise MemoryError(f"cudaMemcpy host to device failed: {err}")

    def stream_alive(self, handle: int) -> bool:
        from cuda.bindings import runtime

        if self.simulated:
            return bool(runtime._stream_alive(handle))
        (err,) = runtime.cudaStreamQuery(handle)
        return err in (runtime.cudaError_t.cudaSuccess, runtime.cudaError_t.cudaErrorNotReady)

    def enqueue(self, handle: int, work: Any) -> bool:
        """Run ``work`` in stream order: queued on the simulated stream, or -- on a real GPU --
        after the stream's earlier work (the plugin's input copies) has finished."""
        from cuda.bindings import runtime

        if self.simulated:
            return bool(runtime._enqueue(handle, work))
        (err,) = runtime.cudaStreamSynchronize(handle)
        if err != runtime.cudaError_t.cudaSuccess:
            self.last_error: BaseException | str = f"cudaStreamSynchronize: {err}"
            return False
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - reported through the logger, as TensorRT does
            self.last_error = exc
            return False
        return True


_cuda = _LazyCuda()

__version__ = os.environ.get("FACELIB_TRT_DOUBLE_VERSION", "10.16.1")
_MAJOR = int(__version__.split(".")[0])
_MAGIC = b"TRTDBLPL"


# -- enums -------------------------------------------------------------------------------------


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = _Severity

    def __init__(self) -> None:
        pass

    def log(self, severity: _Severity, msg: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Logger(ILogger):
    INTERNAL_ERROR = _Severity.INTERNAL_ERROR
    ERROR = _Severity.ERROR
    WARNING = _Severity.WARNING
    INFO = _Severity.INFO
    VERBOSE = _Severity.VERBOSE

    def __init__(self, min_severity: _Severity = _Severity.WARNING) -> None:
        super().__init__()
        self.min_severity = min_severity

    def log(self, severity: _Severity, msg: str) -> None:
        if severity <= self.min_severity:
            print(f"[TRT] [{severity.name[0]}] {msg}", file=sys.stderr)


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9


float32, float16, int8, int32, int64 = DataType.FLOAT, DataType.HALF, DataType.INT8, DataType.INT32, DataType.INT64

_NP = {
    DataType.FLOAT: np.float32,
    DataType.HALF: np.float16,
    DataType.INT8: np.int8,
    DataType.INT32: np.int32,
    DataType.BOOL: np.bool_,
    DataType.UINT8: np.uint8,
    DataType.INT64: np.int64,
}


def nptype(trt_type: DataType) -> type:
    if trt_type not in _NP:
        raise TypeError(f"Could not resolve TensorRT datatype to an equivalent numpy datatype. {trt_type}")
    return _NP[trt_type]


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


if _MAJOR >= 11:

    class NetworkDefinitionCreationFlag(enum.IntEnum):
        STRONGLY_TYPED = 1

    class BuilderFlag(enum.IntEnum):
        DEBUG = 1
        REFIT = 4
        VERSION_COMPATIBLE = 11
        EXCLUDE_LEAN_RUNTIME = 13
        TF32 = 6
        DIRECT_IO = 12
else:

    class NetworkDefinitionCreationFlag(enum.IntEnum):  # type: ignore[no-redef]
        EXPLICIT_BATCH = 0
        STRONGLY_TYPED = 1

    class BuilderFlag(enum.IntEnum):  # type: ignore[no-redef]
        FP16 = 0
        INT8 = 1
        DEBUG = 2
        REFIT = 4
        TF32 = 6
        BF16 = 17
        VERSION_COMPATIBLE = 11
        EXCLUDE_LEAN_RUNTIME = 13
        DIRECT_IO = 12


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    TACTIC_DRAM = 4


class Dims(tuple):
    """``trt.Dims``: iterable of ints, ``-1`` for dynamic dimensions."""

    def __new__(cls, values: Sequence[int]) -> Dims:
        return super().__new__(cls, tuple(int(v) for v in values))


def _log(logger: ILogger, severity: _Severity, msg: str) -> None:
    logger.log(severity, msg)


def init_libnvinfer_plugins(logger: ILogger, namespace: str) -> bool:
    return True


# -- networks and the ONNX parser ----------------------------------------------------------------

_ONNX_TO_TRT = {
    1: DataType.FLOAT,
    10: DataType.HALF,
    3: DataType.INT8,
    6: DataType.INT32,
    7: DataType.INT64,
    9: DataType.BOOL,
    2: DataType.UINT8,
    16: DataType.BF16,
}


class ITensor:
    def __init__(self, name: str, shape: Sequence[int], dtype: DataType) -> None:
        self.name = name
        self.shape = Dims(shape)
        self.dtype = dtype


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._onnx: bytes | None = None
        self.num_layers = 0

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_input(self, index: int) -> ITensor | None:
        return self._inputs[index] if 0 <= index < len(self._inputs) else None

    def get_output(self, index: int) -> ITensor | None:
        return self._outputs[index] if 0 <= index < len(self._outputs) else None

    def get_flag(self, flag: NetworkDefinitionCreationFlag) -> bool:
        return bool(self.flags & (1 << int(flag)))


class ParserError:
    def __init__(self, desc: str, node: int = -1, node_name: str = "", node_operator: str = "") -> None:
        self._desc, self._node, self._name, self._op = desc, node, node_name, node_operator

    def desc(self) -> str:
        return self._desc

    def node(self) -> int:
        return self._node

    def node_name(self) -> str:
        return self._name

    def node_operator(self) -> str:
        return self._op

    def code(self) -> int:
        return 8  # ErrorCode.kUNSUPPORTED_NODE

    def file(self) -> str:
        return "ModelImporter.cpp"

    def line(self) -> int:
        return 0

    def func(self) -> str:
        return "parseGraph"

    def __str__(self) -> str:
        return f"In node {self._node} with name: {self._name} and operator: {self._op} ({self._desc})"


_MAX_OPSET = 22


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        self.network = network
        self.logger = logger
        self._errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> ParserError | None:
        return self._errors[index] if 0 <= index < len(self._errors) else None

    def clear_errors(self) -> None:
        self._errors.clear()

    def parse_from_file(self, model: str) -> bool:
        try:
            with open(model, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            self._fail(f"Failed to open file: {model} ({exc})")
            return False
        return self.parse(data, os.path.dirname(model))

    def _fail(self, desc: str, node: int = -1, name: str = "", op: str = "") -> None:
        self._errors.append(ParserError(desc, node, name, op))
        _log(self.logger, _Severity.ERROR, f"ModelImporter.cpp: ERROR: {desc}")

    def parse(self, model: bytes, path: str | None = None) -> bool:
        import onnx

        if self.network._onnx is not None:
            self._fail("The network has already been populated by a parser")
            return False
        try:
            proto = onnx.load_model_from_string(bytes(model))
        except Exception as exc:  # noqa: BLE001 - protobuf decode errors
            self._fail(f"Failed to parse ONNX model from file: {exc}")
            return False
        if not proto.graph.node:
            self._fail("Failed to parse ONNX model: the graph has no nodes")
            return False
        from onnx.external_data_helper import load_external_data_for_model, uses_external_data

        if any(uses_external_data(t) for t in proto.graph.initializer):
            # onnx-tensorrt reads external weights relative to the model's folder, which
            # parse_from_file knows and parse(model, path) is given; without it they cannot be found
            if path is None:
                self._fail("Failed to import initializer: the model has external weights and no path to find them")
                return False
            try:
                load_external_data_for_model(proto, path)
            except OSError as exc:
                self._fail(f"Failed to open external weights: {exc}")
                return False
            model = proto.SerializeToString()
        for opset in proto.opset_import:
            if opset.domain in ("", "ai.onnx") and opset.version > _MAX_OPSET:
                self._fail(f"Unsupported ONNX opset version {opset.version} (this parser supports up to {_MAX_OPSET})")
                return False
        for i, node in enumerate(proto.graph.node):
            if node.domain not in ("", "ai.onnx", "trt"):
                self._fail(f"No importer registered for op: {node.op_type}", i, node.name, node.op_type)
                return False
        try:
            import onnxruntime as ort

            ort.InferenceSession(bytes(model), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - the model does not hold together
            self._fail(f"Assertion failed: model is not valid: {str(exc).splitlines()[0]}")
            return False
        initializers = {t.name for t in proto.graph.initializer}

        def tensor(value: Any) -> ITensor | None:
            tt = value.type.tensor_type
            dtype = _ONNX_TO_TRT.get(tt.elem_type)
            if dtype is None:
                self._fail(f"Unsupported ONNX data type {tt.elem_type} of tensor {value.name}")
                return None
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            return ITensor(value.name, dims, dtype)

        ins = [tensor(v) for v in proto.graph.input if v.name not in initializers]
        outs = [tensor(v) for v in proto.graph.output]
        if any(t is None for t in (*ins, *outs)):
            return False
        self.network._inputs = [t for t in ins if t is not None]
        self.network._outputs = [t for t in outs if t is not None]
        self.network._onnx = bytes(model)
        self.network.num_layers = len(proto.graph.node)
        return True


# -- builder ---------------------------------------------------------------------------------------


class IOptimizationProfile:
    def __init__(self, logger: ILogger) -> None:
        self._logger = logger
        self._shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {}
        self._valid = True

    def set_shape(self, input: str, min: Sequence[int], opt: Sequence[int], max: Sequence[int]) -> None:
        lo, mid, hi = (tuple(int(v) for v in s) for s in (min, opt, max))
        if (
            not (len(lo) == len(mid) == len(hi))
            or any(not (a <= b <= c) for a, b, c in zip(lo, mid, hi))
            or any(v < 0 for v in lo)
        ):
            _log(self._logger, _Severity.ERROR, f"IOptimizationProfile::setDimensions: invalid dims for {input}")
            self._valid = False
            raise RuntimeError(f"min/opt/max dimensions of {input} are inconsistent")
        self._shapes[input] = (lo, mid, hi)

    def get_shape(self, input: str) -> list[Dims]:
        return [Dims(s) for s in self._shapes.get(input, ((), (), ()))]

    def __bool__(self) -> bool:
        return self._valid


class ITimingCache:
    def __init__(self, entries: list[str], device: str) -> None:
        self.entries = entries
        self.device = device

    def serialize(self) -> bytes:
        return b"TRTDBLTC" + json.dumps({"device": self.device, "entries": self.entries}).encode()


class IInt8Calibrator:
    def __init__(self) -> None:
        pass


class IInt8EntropyCalibrator2(IInt8Calibrator):
    pass


def _device_tag() -> str:
    _, dev = _cuda.cudaGetDevice()
    _err, prop = _cuda.cudaGetDeviceProperties(dev)
    if prop is None:
        return "none"
    name = prop.name.split(b"\0")[0].decode()
    return f"{name}|{prop.major}.{prop.minor}"


class IBuilderConfig:
    def __init__(self, logger: ILogger) -> None:
        self._logger = logger
        self._flags: set[int] = {int(BuilderFlag.TF32)}
        self._profiles: list[IOptimizationProfile] = []
        self._pools: dict[int, int] = {}
        self._timing: ITimingCache | None = None
        self._calibration_profile: IOptimizationProfile | None = None
        self._opt_level = 3
        if _MAJOR < 11:
            self.int8_calibrator: Any = None

    def set_flag(self, flag: BuilderFlag) -> None:
        self._flags.add(int(flag))

    def clear_flag(self, flag: BuilderFlag) -> None:
        self._flags.discard(int(flag))

    def get_flag(self, flag: BuilderFlag) -> bool:
        return int(flag) in self._flags

    def set_memory_pool_limit(self, pool: MemoryPoolType, pool_size: int) -> None:
        self._pools[int(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool: MemoryPoolType) -> int:
        return self._pools.get(int(pool), 8 << 30)

    @property
    def builder_optimization_level(self) -> int:
        return self._opt_level

    @builder_optimization_level.setter
    def builder_optimization_level(self, value: int) -> None:
        if not 0 <= int(value) <= 5:
            _log(self._logger, _Severity.ERROR, "setBuilderOptimizationLevel: level must be in [0, 5]")
            return
        self._opt_level = int(value)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile or not profile._shapes:
            _log(self._logger, _Severity.ERROR, "addOptimizationProfile: the profile is invalid")
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def set_calibration_profile(self, profile: IOptimizationProfile) -> bool:
        if not profile:
            return False
        self._calibration_profile = profile
        return True

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache | None:
        data = bytes(serialized_timing_cache)
        if not data:
            return ITimingCache([], _device_tag())
        if not data.startswith(b"TRTDBLTC"):
            _log(self._logger, _Severity.ERROR, "createTimingCache: the timing cache blob is corrupted")
            return None
        content = json.loads(data[8:])
        return ITimingCache(list(content["entries"]), content["device"])

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if cache is None:
            return False
        if cache.device != _device_tag() and not ignore_mismatch:
            _log(self._logger, _Severity.ERROR, "setTimingCache: the timing cache was made on another device")
            return False
        self._timing = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self._timing


class IHostMemory(bytes):
    @property
    def nbytes(self) -> int:
        return len(self)


class Builder:
    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        if _MAJOR < 11:  # deprecated in 10.x, gone from the 11.x bindings (sdk_names/tensorrt-11.txt)
            self.platform_has_fast_fp16 = True

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        allowed = 0
        for member in NetworkDefinitionCreationFlag:
            allowed |= 1 << int(member)
        if flags & ~allowed:
            _log(self.logger, _Severity.ERROR, f"createNetworkV2: unknown flags {flags}")
            raise TypeError("invalid network creation flags")
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self.logger)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile(self.logger)

    def _error(self, msg: str) -> None:
        _log(self.logger, _Severity.ERROR, msg)

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        if network._onnx is None or not network._inputs:
            self._error("Network must have at least one input and one output")
            return None
        dynamic = {t.name: t for t in network._inputs if any(d < 0 for d in t.shape)}
        if dynamic and not config._profiles:
            self._error("Network has dynamic or shape inputs, but no optimization profile has been defined.")
            return None
        inputs = {t.name: t for t in network._inputs}
        profiles = []
        for index, profile in enumerate(config._profiles):
            unknown = set(profile._shapes) - set(inputs)
            if unknown:
                self._error(
                    f"Optimization profile {index} names tensors that are not network inputs: {sorted(unknown)}"
                )
                return None
            for name in dynamic:
                if name not in profile._shapes:
                    self._error(f"{name}: dynamic input is missing dimensions in profile {index}.")
                    return None
            for name, (lo, _, hi) in profile._shapes.items():
                shape = inputs[name].shape
                if len(lo) != len(shape) or any(d >= 0 and (a != d or b != d) for d, a, b in zip(shape, lo, hi)):
                    self._error(f"{name}: profile {index} dimensions {lo}..{hi} are incompatible with {tuple(shape)}")
                    return None
            profiles.append({k: [list(s) for s in v] for k, v in profile._shapes.items()})
        strongly_typed = _MAJOR >= 11 or network.get_flag(NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        flags = {BuilderFlag(f).name for f in config._flags}
        if strongly_typed and flags & {"FP16", "INT8", "BF16"}:
            self._error("Network is strongly typed: precision builder flags (FP16/INT8/BF16) are not allowed")
            return None
        calibrated = False
        if "INT8" in flags and getattr(config, "int8_calibrator", None) is not None:
            calibrated = self._calibrate(network, config, dynamic)
            if not calibrated:
                return None
        if config._timing is not None:
            config._timing.entries.append(f"{len(network._onnx)}:{network.num_layers}")
        header = {
            "version": __version__,
            "device": _device_tag(),
            "version_compatible": "VERSION_COMPATIBLE" in flags,
            # a version-compatible plan embeds the lean runtime (host code) unless EXCLUDE_LEAN_RUNTIME
            "host_code": "VERSION_COMPATIBLE" in flags and "EXCLUDE_LEAN_RUNTIME" not in flags,
            "inputs": [[t.name, list(t.shape), int(t.dtype)] for t in network._inputs],
            "outputs": [[t.name, list(t.shape), int(t.dtype)] for t in network._outputs],
            "profiles": profiles,
            "flags": sorted(flags),
            "strongly_typed": bool(strongly_typed),
            "calibrated": calibrated,
        }
        blob = json.dumps(header).encode()
        return IHostMemory(_MAGIC + struct.pack("<Q", len(blob)) + blob + network._onnx)

    def _calibrate(self, network: INetworkDefinition, config: IBuilderConfig, dynamic: dict[str, ITensor]) -> bool:
        import onnxruntime as ort

        calibrator = config.int8_calibrator
        cached = calibrator.read_calibration_cache()
        if cached:
            return True
        profile = config._calibration_profile or (config._profiles[0] if config._profiles else None)
        shapes = {}
        for t in network._inputs:
            if t.name in dynamic:
                lo, opt, hi = profile._shapes[t.name]  # type: ignore[union-attr]
                if lo != hi:
                    self._error(f"Calibration profile must have min == opt == max for {t.name}")
                    return False
                shapes[t.name] = opt
            else:
                shapes[t.name] = tuple(t.shape)
        session = ort.InferenceSession(network._onnx, providers=["CPUExecutionProvider"])
        names = [t.name for t in network._inputs]
        amax: dict[str, float] = {}
        batches = 0
        while True:
            pointers = calibrator.get_batch(names)
            if pointers is None:
                break
            if len(pointers) != len(names):
                self._error("Calibrator returned the wrong number of device pointers")
                return False
            feeds = {}
            for t, ptr in zip(network._inputs, pointers):
                dtype = np.dtype(nptype(t.dtype))
                nbytes = int(np.prod(shapes[t.name])) * dtype.itemsize
                view = _cuda.read(int(ptr), nbytes)
                if view is None:
                    self._error(f"Calibration batch pointer for {t.name} is not a device allocation of {nbytes} bytes")
                    return False
                feeds[t.name] = view.view(dtype).reshape(shapes[t.name]).copy()
            for name, value in zip([o.name for o in session.get_outputs()], session.run(None, feeds)):
                amax[name] = max(amax.get(name, 0.0), float(np.abs(value).max()))
            batches += 1
        if batches == 0:
            self._error("Calibration failure occurred with no scaling factors detected (no batches)")
            return False
        calibrator.write_calibration_cache(b"TRT-double-EntropyCalibration2\n" + json.dumps(amax).encode())
        return True


if _MAJOR >= 11:
    # TensorRT 11 removed implicit quantization (calibrators, calibration profiles) and these
    # properties: the 11.4 bindings hold none of the names (tests/sdk_names/tensorrt-11.txt).
    del IInt8Calibrator, IInt8EntropyCalibrator2
    del IBuilderConfig.set_calibration_profile


# -- runtime ---------------------------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _loads_version(built: str, version_compatible: bool) -> bool:
    """Whether a plan built by TensorRT ``built`` deserializes with this version.

    docs.nvidia.com/deeplearning/tensorrt/10.16.1/inference-library/version-compatibility.html
    and 11.1.0/inference-library/engine-compatibility.html: a plan loads with the exact version
    that built it; a version-compatible plan also with later versions of the same major, and a
    TensorRT 10 version-compatible plan with TensorRT 11 -- never with an older runtime.
    Versions compare numerically (10.9.0 < 10.16.1).
    """
    if built == __version__:
        return True
    mine, theirs = _version_tuple(__version__), _version_tuple(built)
    if not version_compatible or theirs > mine:
        return False
    return theirs[0] == mine[0] or (theirs[0] == 10 and mine[0] == 11)


class Runtime:
    def __init__(self, logger: ILogger) -> None:
        self.logger = logger
        # Python API (tensorrt.Runtime): "engine_host_code_allowed: Whether this runtime is
        # allowed to deserialize engines that contain host executable code (Default: False)";
        # version-compatible plans carry the lean runtime as host code (version-compatibility page).
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, serialized_engine: Any) -> ICudaEngine | None:
        data = bytes(serialized_engine)
        if not data.startswith(_MAGIC):
            _log(self.logger, _Severity.ERROR, "Serialization assertion magicTagRead == kMAGIC_TAG failed.")
            return None
        (size,) = struct.unpack("<Q", data[8:16])
        header = json.loads(data[16 : 16 + size])
        onnx_bytes = data[16 + size :]
        if not _loads_version(header["version"], bool(header["version_compatible"])):
            _log(
                self.logger,
                _Severity.ERROR,
                "The engine plan file is not compatible with this version of TensorRT, "
                f"expecting library version {__version__} got {header['version']}, please rebuild.",
            )
            return None
        if header.get("host_code") and not self.engine_host_code_allowed:
            _log(
                self.logger,
                _Severity.ERROR,
                "Cannot deserialize engine with lean runtime since host code is not allowed. "
                "Set IRuntime::setEngineHostCodeAllowed(true) to allow it.",
            )
            return None
        if header["device"].split("|")[-1] != _device_tag().split("|")[-1]:
            _log(
                self.logger,
                _Severity.ERROR,
                "The engine plan file is generated on an incompatible device, expecting compute "
                f"{_device_tag().split('|')[-1]} got compute {header['device'].split('|')[-1]}, please rebuild.",
            )
            return None
        return ICudaEngine(header, onnx_bytes, self.logger)


class ICudaEngine:
    def __init__(self, header: dict[str, Any], onnx_bytes: bytes, logger: ILogger) -> None:
        self._header = header
        self._onnx = onnx_bytes
        self._logger = logger
        # outputs first: callers must ask get_tensor_mode, not assume inputs come first
        self._io = [(n, s, DataType(d), TensorIOMode.OUTPUT) for n, s, d in header["outputs"]]
        self._io += [(n, s, DataType(d), TensorIOMode.INPUT) for n, s, d in header["inputs"]]
        self._by_name = {t[0]: t for t in self._io}
        self._session: Any = None
        self._session_lock = threading.Lock()
        self.name = "facelib-double-engine"
        self.num_layers = 1

    def _ort(self) -> Any:
        with self._session_lock:
            if self._session is None:
                import onnxruntime as ort

                self._session = ort.InferenceSession(self._onnx, providers=["CPUExecutionProvider"])
            return self._session

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    @property
    def num_optimization_profiles(self) -> int:
        return max(1, len(self._header["profiles"]))

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 20

    def get_tensor_name(self, index: int) -> str:
        if not 0 <= index < len(self._io):
            raise IndexError("tensor index out of range")
        return self._io[index][0]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        entry = self._by_name.get(name)
        return entry[3] if entry else TensorIOMode.NONE

    def get_tensor_shape(self, name: str) -> Dims:
        entry = self._by_name.get(name)
        if entry is None:
            _log(self._logger, _Severity.ERROR, f"getTensorShape: {name} is not an I/O tensor")
            return Dims(())
        return Dims(entry[1])

    def get_tensor_dtype(self, name: str) -> DataType:
        return self._by_name[name][2]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        entry = self._by_name.get(name)
        if entry is None or entry[3] != TensorIOMode.INPUT:
            raise RuntimeError(f"get_tensor_profile_shape: {name} is not an input tensor")
        profiles = self._header["profiles"]
        if not 0 <= profile_index < len(profiles):
            shape = Dims(entry[1])
            return [shape, shape, shape]
        shapes = profiles[profile_index].get(name)
        if shapes is None:
            return [Dims(entry[1])] * 3
        return [Dims(s) for s in shapes]

    def create_execution_context(self) -> IExecutionContext:
        return IExecutionContext(self)

    def serialize(self) -> IHostMemory:
        blob = json.dumps(self._header).encode()
        return IHostMemory(_MAGIC + struct.pack("<Q", len(blob)) + blob + self._onnx)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self._logger = engine._logger
        self._shapes: dict[str, tuple[int, ...]] = {
            n: tuple(s) for n, s, _, m in engine._io if m == TensorIOMode.INPUT and all(d >= 0 for d in s)
        }
        self._addresses: dict[str, int] = {}
        self._output_shape_cache: dict[tuple[Any, ...], dict[str, tuple[int, ...]]] = {}

    def _error(self, msg: str) -> None:
        _log(self._logger, _Severity.ERROR, msg)

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        entry = self.engine._by_name.get(name)
        if entry is None or entry[3] != TensorIOMode.INPUT:
            self._error(f"IExecutionContext::setInputShape: Error Code 3: {name} is not an input tensor")
            return False
        dims = tuple(int(d) for d in shape)
        declared = entry[1]
        if len(dims) != len(declared) or any(d >= 0 and d != s for d, s in zip(declared, dims)):
            self._error(
                f"IExecutionContext::setInputShape: Error Code 3: {name} shape {dims} does not match {declared}"
            )
            return False
        if any(d < 0 for d in declared):
            lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
            if any(s < a or s > b for s, a, b in zip(dims, lo, hi)):
                self._error(
                    f"IExecutionContext::setInputShape: Error Code 3: API Usage Error (Supplied shape {dims} for "
                    f"{name} is out of the optimization profile's bounds [{tuple(lo)}, {tuple(hi)}])"
                )
                return False
        self._shapes[name] = dims
        return True

    def _inputs_specified(self) -> list[str]:
        return [n for n, _, _, m in self.engine._io if m == TensorIOMode.INPUT and n not in self._shapes]

    @property
    def all_binding_shapes_specified(self) -> bool:
        return not self._inputs_specified()

    @property
    def all_shape_inputs_specified(self) -> bool:
        return True

    def infer_shapes(self) -> list[str]:
        return self._inputs_specified()

    def _output_shapes(self) -> dict[str, tuple[int, ...]]:
        key = tuple(sorted(self._shapes.items()))
        cached = self._output_shape_cache.get(key)
        if cached is None:
            engine = self.engine
            feeds = {n: np.zeros(self._shapes[n], nptype(d)) for n, _, d, m in engine._io if m == TensorIOMode.INPUT}
            session = engine._ort()
            names = [o.name for o in session.get_outputs()]
            cached = {n: tuple(v.shape) for n, v in zip(names, session.run(names, feeds))}
            self._output_shape_cache[key] = cached
        return cached

    def get_tensor_shape(self, name: str) -> Dims:
        entry = self.engine._by_name.get(name)
        if entry is None:
            self._error(f"getTensorShape: {name} is not an I/O tensor")
            return Dims(())
        if entry[3] == TensorIOMode.INPUT:
            return Dims(self._shapes.get(name, entry[1]))
        if all(d >= 0 for d in entry[1]):
            return Dims(entry[1])
        if self._inputs_specified():
            return Dims(entry[1])
        return Dims(self._output_shapes()[name])

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if self.engine.get_tensor_mode(name) == TensorIOMode.NONE:
            self._error(f"IExecutionContext::setTensorAddress: Error Code 3: {name} is not an I/O tensor")
            return False
        if not isinstance(memory, int):
            raise TypeError("set_tensor_address(): incompatible function arguments")
        if memory % 16:
            self._error(f"IExecutionContext::setTensorAddress: Error Code 3: address of {name} is misaligned")
            return False
        self._addresses[name] = memory
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not isinstance(stream_handle, int):
            raise TypeError("execute_async_v3(): incompatible function arguments")
        if not _cuda.stream_alive(stream_handle):
            self._error("IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime (invalid resource handle)")
            return False
        missing = self._inputs_specified()
        if missing:
            self._error(f"IExecutionContext::enqueueV3: Error Code 3: input shapes not specified for {missing}")
            return False
        engine = self.engine
        plan = []
        out_shapes = self._output_shapes()
        for name, _, dtype, mode in engine._io:
            address = self._addresses.get(name, 0)
            if not address:
                kind = "input" if mode == TensorIOMode.INPUT else "output"
                self._error(
                    f"IExecutionContext::enqueueV3: Error Code 3: API Usage Error (Neither address or allocator "
                    f"is set for {kind} tensor {name}. Call setInputTensorAddress, setTensorAddress or "
                    "setOutputAllocator before enqueue/execute.)"
                )
                return False
            shape = self._shapes[name] if mode == TensorIOMode.INPUT else out_shapes[name]
            itemsize = np.dtype(nptype(dtype)).itemsize
            nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
            if not _cuda.valid(address, nbytes):
                self._error(
                    f"[double] tensor {name} needs {nbytes} bytes at 0x{address:x}, which is not inside a live "
                    "device allocation (a real GPU would read or write out of bounds)"
                )
                return False
            plan.append((name, shape, np.dtype(nptype(dtype)), mode, address, nbytes))
        session = engine._ort()

        def launch() -> None:
            feeds = {}
            for name, shape, dtype, mode, address, nbytes in plan:
                if mode == TensorIOMode.INPUT:
                    view = _cuda.read(address, nbytes)
                    if view is None:
                        raise MemoryError(f"input {name} was freed before the launch")
                    feeds[name] = view.view(dtype).reshape(shape).copy()
            names = [p[0] for p in plan if p[3] == TensorIOMode.OUTPUT]
            values = dict(zip(names, session.run(names, feeds)))
            for name, shape, dtype, mode, address, _nbytes in plan:
                if mode == TensorIOMode.OUTPUT:
                    value = np.ascontiguousarray(values[name], dtype=dtype)
                    if value.shape != tuple(shape):
                        raise RuntimeError(f"output {name} came out {value.shape}, expected {shape}")
                    _cuda.write(address, value.reshape(-1).view(np.uint8))

        if _cuda.enqueue(stream_handle, launch):
            return True
        self._error(f"IExecutionContext::enqueueV3: Error Code 1: {getattr(_cuda, 'last_error', 'launch failed')}")
        return False


if _MAJOR >= 11:
    del IExecutionContext.all_shape_inputs_specified  # absent from the 11.4 bindings
