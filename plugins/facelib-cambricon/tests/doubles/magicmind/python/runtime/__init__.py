"""A faithful test double of ``magicmind.python.runtime`` (MagicMind 1.x Python API).

Enforced as the samples and API notes show (vendor-apis.md §3): every mutating call returns
a ``Status`` (never raises); ``Builder.build_model`` returns ``None`` on failure (quantized
precision without calibration, unresolved -1 dims in a fixed-shape build, bad dim_range);
``BuilderConfig.parse_from_string`` validates JSON and precision modes; ``Device.active()``
must succeed before engines/queues exist; ``create_inputs()`` gives one tensor per model input
in order and ``from_numpy`` is positional and dtype-checked; ``enqueue(inputs, outputs, queue)``
appends to the caller's list and checks fixed dims exactly / mutable dims against dim_range;
outputs are only readable after ``queue.sync()``.  Outputs are computed with onnxruntime from
the ONNX embedded in the serialized model (precision modes are not simulated: float32).
Environment: ``FACELIB_MM_DOUBLE_MLUS`` (device count, default 1), ``FACELIB_MM_DOUBLE_FAIL``
(``enqueue`` or ``sync``: that call returns an INTERNAL status, for error-path tests).
"""

from __future__ import annotations

import base64
import enum
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

__version__ = "1.7.0-double"
_MAGIC = b"FACELIB-FAKE-MAGICMIND v1\n"


class Code(enum.IntEnum):
    OK = 0
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


class Status:
    def __init__(self, code: Code = Code.OK, message: str = "") -> None:
        self._code, self._message = Code(code), str(message)

    @staticmethod
    def OK() -> Status:
        return Status()

    def ok(self) -> bool:
        return self._code == Code.OK

    def _error_code(self) -> Code:  # not a confirmed MagicMind name: the double's own
        return self._code

    def _error_message(self) -> str:
        return self._message

    def __str__(self) -> str:
        return f"{self._code.name}: {self._message}" if not self.ok() else "OK"


def _err(code: Code, message: str) -> Status:
    print(f"[MM_ERROR] {message}", file=sys.stderr)
    return Status(code, message)


class ModelKind(enum.Enum):
    kOnnx = 0
    kPytorch = 1
    kTensorflow = 2
    kCaffe = 3


class DataType(enum.Enum):
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    FLOAT16 = "float16"
    FLOAT32 = "float32"
    BOOL = "bool"
    QINT8 = "qint8"
    QINT16 = "qint16"


_ORT_TO_DT = {
    "tensor(float)": DataType.FLOAT32,
    "tensor(int64)": DataType.INT64,
    "tensor(int32)": DataType.INT32,
    "tensor(float16)": DataType.FLOAT16,
    "tensor(uint8)": DataType.UINT8,
    "tensor(bool)": DataType.BOOL,
}


class QuantizationAlgorithm(enum.Enum):
    LINEAR_ALGORITHM = 0
    EQNM_ALGORITHM = 1


class Dims:
    def __init__(self, dims: Any) -> None:
        values = list(dims)
        if not all(isinstance(d, int | np.integer) for d in values):
            raise TypeError(f"Dims(): incompatible arguments {dims!r}")
        self._dims = [int(d) for d in values]

    def GetDims(self) -> list[int]:
        return list(self._dims)

    def GetDimValue(self, index: int) -> int:
        return self._dims[index]

    def __repr__(self) -> str:
        return f"Dims({self._dims})"


_MODES = (
    "force_float32",
    "force_float16",
    "qint8_mixed_float16",
    "qint16_mixed_float16",
    "qint8_mixed_float32",
    "qint16_mixed_float32",
)
_KEYS = (
    "archs",
    "precision_config",
    "graph_shape_mutable",
    "dim_range",
    "opt_config",
    "computation_preference",
    "convert_input_layout",
    "convert_output_layout",
    "insert_bn_before_firstnode",
    "custom_ranges",
    "cross_compile_toolchain_path",
)


def _session(onnx: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])


class _NetTensor:
    def __init__(self, name: str, dims: list[int], dtype: DataType) -> None:
        self._name, self._dims, self._dtype = name, dims, dtype

    def get_tensor_name(self) -> str:
        return self._name

    def get_dimension(self) -> Dims:
        return Dims(self._dims)

    def set_dimension(self, *args: Any) -> Status:
        if len(args) != 1 or not isinstance(args[0], Dims):
            raise TypeError("set_dimension(): incompatible function arguments")
        dims = args[0].GetDims()
        if len(dims) != len(self._dims) or any(d == 0 or d < -1 for d in dims):
            return _err(Code.INVALID_ARGUMENT, f"{self._name}: bad dims {dims} for rank {len(self._dims)}")
        if any(old > 0 and new > 0 and old != new for old, new in zip(self._dims, dims)):
            return _err(Code.INVALID_ARGUMENT, f"{self._name}: dims {dims} contradict the model's {self._dims}")
        self._dims = dims
        return Status.OK()

    def get_data_type(self) -> DataType:
        return self._dtype

    def set_data_type(self, dtype: DataType) -> Status:
        if dtype not in (DataType.FLOAT32, DataType.FLOAT16):
            return _err(Code.UNIMPLEMENTED, f"input data type {dtype} is not modelled by the double")
        self._dtype = dtype
        return Status.OK()


class Network:
    def __init__(self) -> None:
        self._onnx: bytes | None = None
        self._inputs: list[_NetTensor] = []
        self._outputs: list[_NetTensor] = []
        self._calibrated_mode: str | None = None

    def _load(self, onnx: bytes) -> None:
        sess = _session(onnx)
        self._onnx = onnx
        self._inputs = [
            _NetTensor(
                i.name, [d if isinstance(d, int) else -1 for d in i.shape], _ORT_TO_DT.get(i.type, DataType.FLOAT32)
            )
            for i in sess.get_inputs()
        ]
        self._outputs = [
            _NetTensor(
                o.name, [d if isinstance(d, int) else -1 for d in o.shape], _ORT_TO_DT.get(o.type, DataType.FLOAT32)
            )
            for o in sess.get_outputs()
        ]

    def get_input_count(self) -> int:
        return len(self._inputs)

    def get_output_count(self) -> int:
        return len(self._outputs)

    def get_input(self, index: int) -> _NetTensor:
        return self._inputs[index]

    def get_output(self, index: int) -> _NetTensor:
        return self._outputs[index]


class BuilderConfig:
    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def parse_from_string(self, text: str) -> Status:
        try:
            values = json.loads(text)
        except (TypeError, ValueError) as exc:
            return _err(Code.INVALID_ARGUMENT, f"config is not JSON: {exc}")
        for key, value in values.items():
            if key not in _KEYS:
                return _err(Code.INVALID_ARGUMENT, f"unknown config key {key!r}")
            if key == "precision_config":
                mode = value.get("precision_mode")
                if mode is not None and mode not in _MODES:
                    return _err(Code.INVALID_ARGUMENT, f"unknown precision_mode {mode!r}")
                self._values.setdefault(key, {}).update(value)
            elif key == "graph_shape_mutable" and not isinstance(value, bool):
                return _err(Code.INVALID_ARGUMENT, "graph_shape_mutable must be true or false")
            elif key == "computation_preference" and value not in ("auto", "fast", "high_precision"):
                return _err(Code.INVALID_ARGUMENT, f"unknown computation_preference {value!r}")
            elif key == "archs" and not (isinstance(value, list) and all(isinstance(a, str | dict) for a in value)):
                return _err(Code.INVALID_ARGUMENT, f"archs must be a list, got {value!r}")
            else:
                self._values[key] = value
        return Status.OK()

    def parse_from_file(self, path: str) -> Status:
        try:
            return self.parse_from_string(Path(path).read_text())
        except OSError as exc:
            return _err(Code.NOT_FOUND, str(exc))

    @property
    def mode(self) -> str:
        return str(self._values.get("precision_config", {}).get("precision_mode", "force_float32"))


class CalibDataInterface:
    def __init__(self) -> None:
        pass


class Calibrator:
    def __init__(self, *args: Any) -> None:
        if (
            len(args) != 1
            or not isinstance(args[0], list)
            or not all(isinstance(d, CalibDataInterface) for d in args[0])
        ):
            raise TypeError("Calibrator(): expects a list of CalibDataInterface")
        self._data = args[0]
        self._algorithm = QuantizationAlgorithm.LINEAR_ALGORITHM

    def set_quantization_algorithm(self, algorithm: QuantizationAlgorithm) -> Status:
        if not isinstance(algorithm, QuantizationAlgorithm):
            return _err(Code.INVALID_ARGUMENT, "bad quantization algorithm")
        self._algorithm = algorithm
        return Status.OK()

    def calibrate(self, network: Network, config: BuilderConfig) -> Status:
        if not config.mode.startswith("qint"):
            return _err(Code.INVALID_ARGUMENT, f"calibration needs a qint precision mode, config has {config.mode}")
        if not _DEVICE_ACTIVE:
            return _err(Code.UNAVAILABLE, "calibration needs an active MLU device")
        if len(self._data) != network.get_input_count():
            return _err(
                Code.INVALID_ARGUMENT,
                f"{len(self._data)} calibration inputs for {network.get_input_count()} network inputs",
            )
        # Call order of the real Calibrator, as every CalibDataInterface in Cambricon/magicmind_cloud
        # is written for it (buildin/cv/segmentation/u2net_pytorch/gen_model/gen_model.py
        # FixedCalibData; buildin/cv/classification/alexnet_bn_caffe/gen_model/calibrator.py):
        # reset() clears, next() loads the following sample (OUT_OF_RANGE once exhausted), and
        # get_sample() returns what the last next() loaded -- it is never asked before next().
        seen: list[list[np.ndarray]] = []
        for data, tensor in zip(self._data, network._inputs):
            st = data.reset()
            if not st.ok():
                return st
            samples: list[np.ndarray] = []
            while True:
                st = data.next()
                if not st.ok():
                    if st._error_code() != Code.OUT_OF_RANGE:
                        return st
                    break
                raw = data.get_sample()
                if raw is None:
                    return _err(Code.INVALID_ARGUMENT, "get_sample() returned no data after next() returned OK")
                sample = np.asarray(raw)
                shape = data.get_shape().GetDims()
                if list(sample.shape) != shape or len(shape) != len(tensor._dims):
                    return _err(
                        Code.INVALID_ARGUMENT, f"calibration sample shape {list(sample.shape)} != get_shape {shape}"
                    )
                if any(d > 0 and d != s for d, s in zip(tensor._dims, shape)):
                    return _err(
                        Code.INVALID_ARGUMENT, f"calibration sample {shape} does not fit input dims {tensor._dims}"
                    )
                if data.get_data_type() != DataType.FLOAT32 or sample.dtype != np.float32:
                    return _err(Code.INVALID_ARGUMENT, "calibration data must be FLOAT32")
                samples.append(sample.copy())
            if not samples:
                return _err(Code.INVALID_ARGUMENT, "no calibration samples")
            seen.append(samples)
        #: test hook: the samples each input delivered, in order
        self.samples_seen = seen
        network._calibrated_mode = config.mode
        return Status.OK()


class Model:
    def __init__(self) -> None:
        self._spec: dict[str, Any] | None = None
        self._onnx = b""

    # -- serialization
    def serialize_to_file(self, path: str) -> Status:
        if not isinstance(path, str):
            raise TypeError("serialize_to_file(): path must be str")
        assert self._spec is not None
        try:
            Path(path).write_bytes(
                _MAGIC + json.dumps({**self._spec, "onnx": base64.b64encode(self._onnx).decode()}).encode()
            )
        except OSError as exc:
            return _err(Code.INTERNAL, str(exc))
        return Status.OK()

    def deserialize_from_file(self, path: str) -> Status:
        if not isinstance(path, str):
            raise TypeError("deserialize_from_file(): path must be str")
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return _err(Code.NOT_FOUND, str(exc))
        if not data.startswith(_MAGIC):
            return _err(Code.INVALID_ARGUMENT, f"{path} is not a MagicMind model")
        spec = json.loads(data[len(_MAGIC) :])
        self._onnx = base64.b64decode(spec.pop("onnx"))
        self._spec = spec
        return Status.OK()

    # -- metadata
    def _need(self) -> dict[str, Any]:
        if self._spec is None:
            raise RuntimeError("model is empty")
        return self._spec

    def get_input_num(self) -> int:
        return len(self._need()["inputs"])

    def get_output_num(self) -> int:
        return len(self._need()["outputs"])

    def get_input_names(self) -> list[str]:
        return [t["name"] for t in self._need()["inputs"]]

    def get_output_names(self) -> list[str]:
        return [t["name"] for t in self._need()["outputs"]]

    def get_input_dimensions(self) -> list[Dims]:
        return [Dims(t["dims"]) for t in self._need()["inputs"]]

    def get_output_dimensions(self) -> list[Dims]:
        return [Dims(t["dims"]) for t in self._need()["outputs"]]

    def get_input_data_types(self) -> list[DataType]:
        return [DataType(t["dtype"]) for t in self._need()["inputs"]]

    def get_output_data_types(self) -> list[DataType]:
        return [DataType(t["dtype"]) for t in self._need()["outputs"]]

    def create_i_engine(self, config: Any = None) -> _Engine | None:
        if self._spec is None or not _DEVICE_ACTIVE:
            print("[MM_ERROR] create_i_engine: no model or no active device", file=sys.stderr)
            return None
        return _Engine(self)

    class EngineConfig:
        def __init__(self) -> None:
            self.device_type = "MLU"


class Builder:
    def build_model(self, *args: Any) -> Model | None:
        if (
            len(args) != 3
            or not isinstance(args[0], str)
            or not isinstance(args[1], Network)
            or not isinstance(args[2], BuilderConfig)
        ):
            raise TypeError("build_model(): incompatible function arguments (name, network, config)")
        name, network, config = args
        if network._onnx is None:
            print("[MM_ERROR] build_model: empty network", file=sys.stderr)
            return None
        mode = config.mode
        if mode.startswith("qint") and network._calibrated_mode != mode:
            print(f"[MM_ERROR] build_model: {mode} needs calibration (Calibrator.calibrate) first", file=sys.stderr)
            return None
        mutable = bool(config._values.get("graph_shape_mutable", False))
        ranges = config._values.get("dim_range", {})
        inputs = []
        for index, tensor in enumerate(network._inputs):
            dims = list(tensor._dims)
            if not mutable and any(d < 0 for d in dims):
                print(
                    f"[MM_ERROR] build_model: input {tensor._name} has unknown dims {dims} in a fixed-shape build",
                    file=sys.stderr,
                )
                return None
            rng = ranges.get(str(index))
            if rng is not None:
                lo, hi = rng.get("min"), rng.get("max")
                if (
                    not lo
                    or not hi
                    or len(lo) != len(dims)
                    or len(hi) != len(dims)
                    or any(a > b for a, b in zip(lo, hi))
                    or any(d > 0 and not a <= d <= b for d, a, b in zip(dims, lo, hi))
                ):
                    print(f"[MM_ERROR] build_model: bad dim_range for input {index}: {rng}", file=sys.stderr)
                    return None
            inputs.append({"name": tensor._name, "dims": dims, "dtype": tensor._dtype.value, "range": rng})
        sess = _session(network._onnx)
        outputs = []
        for out in sess.get_outputs():
            dims = [d if isinstance(d, int) else -1 for d in out.shape]
            if not mutable:  # infer fixed output dims by running once
                feeds = {
                    i.name: np.zeros([d for d in t["dims"]], _np(DataType(t["dtype"])))
                    for i, t in zip(sess.get_inputs(), inputs)
                }
                result = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
                dims = list(result[out.name].shape)
            outputs.append({"name": out.name, "dims": dims, "dtype": _ORT_TO_DT.get(out.type, DataType.FLOAT32).value})
        model = Model()
        model._spec = {"name": name, "mode": mode, "mutable": mutable, "inputs": inputs, "outputs": outputs}
        model._onnx = network._onnx
        return model


def _np(dtype: DataType) -> Any:
    return np.dtype(dtype.value) if dtype not in (DataType.QINT8, DataType.QINT16) else np.int8


_DEVICE_ACTIVE = False


class System:
    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def initialize(self) -> Status:
        return Status.OK()

    def device_count(self) -> int:
        return int(os.environ.get("FACELIB_MM_DOUBLE_MLUS", "1"))


class Queue:
    def __init__(self) -> None:
        self._pending: list[_RuntimeTensor] = []

    def sync(self) -> Status:
        if os.environ.get("FACELIB_MM_DOUBLE_FAIL") == "sync":
            return _err(Code.INTERNAL, "queue sync failed (injected)")
        for tensor in self._pending:
            tensor._ready = True
        self._pending.clear()
        return Status.OK()


class Device:
    def __init__(self) -> None:
        self.id = 0
        self._active = False

    def active(self) -> Status:
        global _DEVICE_ACTIVE
        count = System().device_count()
        if not isinstance(self.id, int) or not 0 <= self.id < count:
            return _err(Code.INVALID_ARGUMENT, f"device id {self.id} not in [0, {count})")
        self._active = _DEVICE_ACTIVE = True
        return Status.OK()

    def create_queue(self) -> Queue | None:
        if not self._active:
            print("[MM_ERROR] create_queue: device is not active", file=sys.stderr)
            return None
        return Queue()


class _RuntimeTensor:
    def __init__(self, name: str, dtype: DataType, dims: list[int]) -> None:
        self._name, self._dtype, self._dims = name, dtype, dims
        self._data: np.ndarray | None = None
        self._ready = True

    def from_numpy(self, *args: Any) -> Status:
        if len(args) != 1:
            raise TypeError("from_numpy(): takes one positional numpy array")
        array = args[0]
        if not isinstance(array, np.ndarray):
            raise TypeError("from_numpy(): expects a numpy.ndarray")
        if array.dtype != _np(self._dtype):
            return _err(
                Code.INVALID_ARGUMENT, f"{self._name}: numpy dtype {array.dtype} != tensor data type {self._dtype.name}"
            )
        if not array.flags.c_contiguous:
            return _err(Code.INVALID_ARGUMENT, f"{self._name}: array must be C-contiguous")
        self._data = array.copy()
        return Status.OK()

    def to(self, device: Device) -> Status:
        return Status.OK()

    def get_dimension(self) -> Dims:
        return Dims(list(self._data.shape) if self._data is not None else self._dims)

    def get_data_type(self) -> DataType:
        return self._dtype

    def asnumpy(self) -> np.ndarray:
        if self._data is None or not self._ready:
            raise RuntimeError(f"{self._name}: data is not ready (call queue.sync() after enqueue)")
        return self._data.copy()


class _Context:
    def __init__(self, model: Model) -> None:
        self._model = model
        self._session = _session(model._onnx)

    def create_inputs(self) -> list[_RuntimeTensor]:
        spec = self._model._need()
        return [_RuntimeTensor(t["name"], DataType(t["dtype"]), t["dims"]) for t in spec["inputs"]]

    def enqueue(self, *args: Any) -> Status:
        if (
            len(args) != 3
            or not isinstance(args[0], list)
            or not isinstance(args[1], list)
            or not isinstance(args[2], Queue)
        ):
            raise TypeError("enqueue(): incompatible function arguments (inputs: list, outputs: list, queue)")
        inputs, outputs, queue = args
        spec = self._model._need()
        if os.environ.get("FACELIB_MM_DOUBLE_FAIL") == "enqueue":
            return _err(Code.INTERNAL, "enqueue failed (injected)")
        if len(inputs) != len(spec["inputs"]):
            return _err(Code.INVALID_ARGUMENT, f"{len(inputs)} inputs given, model has {len(spec['inputs'])}")
        feeds = {}
        for index, (tensor, want) in enumerate(zip(inputs, spec["inputs"])):
            if tensor._data is None:
                return _err(Code.INVALID_ARGUMENT, f"input {index} ({want['name']}) has no data")
            shape = list(tensor._data.shape)
            dims = want["dims"]
            if len(shape) != len(dims) or any(d > 0 and d != s for d, s in zip(dims, shape)):
                return _err(
                    Code.INVALID_ARGUMENT,
                    f"input {index} ({want['name']}) dims {shape} do not match the model's {dims}",
                )
            rng = want.get("range")
            if rng and not all(a <= s <= b for s, a, b in zip(shape, rng["min"], rng["max"])):
                return _err(
                    Code.OUT_OF_RANGE, f"input {index} ({want['name']}) dims {shape} are outside dim_range {rng}"
                )
            feeds[want["name"]] = tensor._data
        values = self._session.run([o["name"] for o in spec["outputs"]], feeds)
        for out, value in zip(spec["outputs"], values):
            tensor = _RuntimeTensor(out["name"], DataType(out["dtype"]), list(value.shape))
            tensor._data = np.ascontiguousarray(value)
            tensor._ready = False
            queue._pending.append(tensor)
            outputs.append(tensor)
        return Status.OK()


class _Engine:
    def __init__(self, model: Model) -> None:
        self._model = model

    def create_i_context(self) -> _Context | None:
        return _Context(self._model)
