"""A faithful test double of ``sophon.sail`` (SAIL 3.9/3.10 Python API), numpy path only.

Enforced as the real binding does (vendor-apis.md §1.3-1.8, sophon-sail src/bind.cpp and
src/engine.cpp): pybind constructors are positional-only and take ``str`` paths; the numpy
``process`` overload needs the graph's IOMode to hold inputs in system memory (SYSI/SYSIO) and
``Engine(tpu_id)`` + ``load()`` leaves it DEVIO; ``load`` returns False instead of raising;
unknown graph -> ``SailEngineError("invalid argument")``; unknown input / wrong rank / a shape
that is not a compiled stage (static) or exceeds the max (dynamic) -> ``SailEngineError("bad
input")``; inputs are converted to float32 (pybind ``array_t<float>``); outputs are a dict of
float32 arrays; ``get_input_shape`` returns the max shape over stages; a bmodel for another
chip does not load.  Outputs are computed with onnxruntime from the ONNX the compiler double
embedded.  Environment: ``FACELIB_SAIL_DOUBLE_TPUS`` (device count, default 1),
``FACELIB_SAIL_DOUBLE_CHIP`` (default bm1684x).
"""

from __future__ import annotations

import enum
import os
import sys
from typing import Any

import fake_bmodel
import numpy as np

__version__ = "3.10.7-double"


class SailEngineError(Exception):
    pass


class SailDeviceError(Exception):
    pass


class SailTensorError(Exception):
    pass


class SailUnknownError(Exception):
    pass


class IOMode(enum.IntEnum):
    SYSI = 0
    SYSO = 1
    SYSIO = 2
    DEVIO = 3


class Dtype(enum.IntEnum):
    BM_FLOAT32 = 0
    BM_FLOAT16 = 1
    BM_INT8 = 2
    BM_UINT8 = 3
    BM_INT16 = 4
    BM_UINT16 = 5
    BM_INT32 = 6
    BM_UINT32 = 7
    BM_BFLOAT16 = 8


globals().update({m.name: m for m in Dtype})


def _log(message: str) -> None:
    print(f"[error] {message}", file=sys.stderr)


def get_available_tpu_num() -> int:
    return int(os.environ.get("FACELIB_SAIL_DOUBLE_TPUS", "1"))


def _chip() -> str:
    return os.environ.get("FACELIB_SAIL_DOUBLE_CHIP", "bm1684x")


def _incompatible(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TypeError:
    return TypeError(f"{name}(): incompatible function arguments. Invoked with: {args!r}, {kwargs!r}")


class Handle:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs or len(args) != 1 or not isinstance(args[0], int):
            raise _incompatible("__init__", args, kwargs)
        if not 0 <= args[0] < get_available_tpu_num():
            _log(f"bm_dev_request failed, tpu_id {args[0]}")
            raise SailDeviceError("device not found")
        self._id = args[0]

    def get_device_id(self) -> int:
        return self._id

    def get_target(self) -> str:
        return _chip().upper()


class _Graph:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.dynamic: bool = spec["dynamic"]
        self.input_names: list[str] = spec["input_names"]
        self.output_names: list[str] = spec["output_names"]
        self.stages: list[dict[str, Any]] = spec["stages"]
        self.input_dtype = Dtype[spec.get("input_dtype", "BM_FLOAT32")]
        self.onnx = fake_bmodel.decode_onnx(spec["onnx"])
        self.io_mode = IOMode.SYSIO
        self._session: Any = None

    def max_shape(self, kind: str, name: str) -> list[int]:
        shapes = [s[kind][name] for s in self.stages]
        return [max(dims) for dims in zip(*shapes)]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(self.onnx, opts, providers=["CPUExecutionProvider"])
        types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
        typed = {i.name: feeds[i.name].astype(types.get(i.type, np.float32)) for i in self._session.get_inputs()}
        values = self._session.run(self.output_names, typed)
        return {n: np.ascontiguousarray(v, dtype=np.float32) for n, v in zip(self.output_names, values)}


class Engine:
    """``Engine(tpu_id)``, ``Engine(handle)``, ``Engine(path, tpu_id, mode)``, ``Engine(bytes, size, tpu_id, mode)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs:
            raise _incompatible("__init__", args, kwargs)
        self._graphs: dict[str, _Graph] = {}
        if len(args) == 1 and isinstance(args[0], int):
            self._handle, self._mode = Handle(args[0]), IOMode.DEVIO
            return
        if len(args) == 1 and isinstance(args[0], Handle):
            self._handle, self._mode = args[0], IOMode.DEVIO
            return
        if len(args) == 3 and isinstance(args[0], str) and isinstance(args[1], int) and isinstance(args[2], IOMode):
            self._handle, self._mode = Handle(args[1]), args[2]
            if not self.load(args[0]):
                raise SailEngineError("invalid bmodel")
            return
        if (
            len(args) == 4
            and isinstance(args[0], bytes)
            and isinstance(args[1], int)
            and isinstance(args[2], int)
            and isinstance(args[3], IOMode)
        ):
            self._handle, self._mode = Handle(args[2]), args[3]
            if not self._load_bytes(args[0][: args[1]], "<bytes>"):
                raise SailEngineError("invalid bmodel")
            return
        raise _incompatible("__init__", args, kwargs)

    def _load_bytes(self, data: bytes, where: str) -> bool:
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".bmodel") as fh:
            fh.write(data)
            fh.flush()
            return self._load_file(fh.name, where)

    def _load_file(self, path: str, where: str) -> bool:
        try:
            graphs = fake_bmodel.read(path)
        except (OSError, ValueError, KeyError):
            _log(f"Load {where} failed!")
            return False
        for spec in graphs:
            if spec["chip"] != _chip():
                _log(f"Load {where} failed! bmodel is for {spec['chip']}, device is {_chip()}")
                return False
        for spec in graphs:
            graph = _Graph(spec)
            graph.io_mode = self._mode
            self._graphs[graph.name] = graph
        return True

    def load(self, *args: Any) -> bool:
        if len(args) == 1 and isinstance(args[0], str):
            return self._load_file(args[0], args[0])
        if len(args) == 2 and isinstance(args[0], bytes) and isinstance(args[1], int):
            return self._load_bytes(args[0][: args[1]], "<bytes>")
        raise _incompatible("load", args, {})

    def _graph(self, name: Any) -> _Graph:
        if not isinstance(name, str):
            raise _incompatible("graph method", (name,), {})
        if name not in self._graphs:
            _log(f"graph name {name} not found")
            raise SailEngineError("invalid argument")
        return self._graphs[name]

    def get_handle(self) -> Handle:
        return self._handle

    def get_device_id(self) -> int:
        return self._handle.get_device_id()

    def get_graph_names(self) -> list[str]:
        return list(self._graphs)

    def set_io_mode(self, graph_name: str, mode: IOMode) -> None:
        self._graph(graph_name).io_mode = IOMode(mode)

    def graph_is_dynamic(self, graph_name: str) -> bool:
        return self._graph(graph_name).dynamic

    def get_input_names(self, graph_name: str) -> list[str]:
        return list(self._graph(graph_name).input_names)

    def get_output_names(self, graph_name: str) -> list[str]:
        return list(self._graph(graph_name).output_names)

    def _tensor(self, graph_name: str, name: str, kind: str) -> _Graph:
        graph = self._graph(graph_name)
        if name not in (graph.input_names if kind == "inputs" else graph.output_names):
            _log(f"tensor {name} not found in {graph_name}")
            raise SailEngineError("invalid argument")
        return graph

    def get_input_shape(self, graph_name: str, tensor_name: str) -> list[int]:
        return self._tensor(graph_name, tensor_name, "inputs").max_shape("inputs", tensor_name)

    def get_output_shape(self, graph_name: str, tensor_name: str) -> list[int]:
        return self._tensor(graph_name, tensor_name, "outputs").max_shape("outputs", tensor_name)

    def get_max_input_shapes(self, graph_name: str) -> dict[str, list[int]]:
        g = self._graph(graph_name)
        return {n: g.max_shape("inputs", n) for n in g.input_names}

    def get_max_output_shapes(self, graph_name: str) -> dict[str, list[int]]:
        g = self._graph(graph_name)
        return {n: g.max_shape("outputs", n) for n in g.output_names}

    def get_input_dtype(self, graph_name: str, tensor_name: str) -> Dtype:
        return self._tensor(graph_name, tensor_name, "inputs").input_dtype

    def get_output_dtype(self, graph_name: str, tensor_name: str) -> Dtype:
        self._tensor(graph_name, tensor_name, "outputs")
        return Dtype.BM_FLOAT32

    def get_input_scale(self, graph_name: str, tensor_name: str) -> float:
        self._tensor(graph_name, tensor_name, "inputs")
        return 1.0

    def get_output_scale(self, graph_name: str, tensor_name: str) -> float:
        self._tensor(graph_name, tensor_name, "outputs")
        return 1.0

    def process(
        self, graph_name: str, input_tensors: dict[str, Any], core_list: list[int] | None = None
    ) -> dict[str, np.ndarray]:
        graph = self._graph(graph_name)
        if graph.io_mode not in (IOMode.SYSI, IOMode.SYSIO):
            _log("IOMode must be SYSIO or SYSI when inputs are numpy arrays")
            raise SailEngineError("bad input")
        if not isinstance(input_tensors, dict):
            raise _incompatible("process", (graph_name, input_tensors), {})
        if graph.input_dtype not in (Dtype.BM_FLOAT32, Dtype.BM_INT8, Dtype.BM_UINT8, Dtype.BM_INT32):
            _log(f"input dtype {graph.input_dtype.name} is not supported by the numpy process path")
            raise SailEngineError("not supported")
        feeds: dict[str, np.ndarray] = {}
        for name, value in input_tensors.items():
            if name not in graph.input_names:
                _log(f"input tensor {name} not in graph {graph_name}")
                raise SailEngineError("bad input")
            array = np.asarray(value)
            if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
                raise _incompatible("process", (graph_name, input_tensors), {})
            feeds[name] = np.ascontiguousarray(array, dtype=np.float32)  # pybind array_t<float> forcecast
        missing = [n for n in graph.input_names if n not in feeds]
        if missing:
            _log(f"inputs {missing} not given")
            raise SailEngineError("bad input")
        for name, array in feeds.items():
            max_shape = graph.max_shape("inputs", name)
            if array.ndim != len(max_shape):
                _log(f"input {name}: rank {array.ndim} != {len(max_shape)}")
                raise SailEngineError("bad input")
            if graph.dynamic and not all(0 < d <= m for d, m in zip(array.shape, max_shape)):
                _log(f"Invalid shape for input tensor {name}: {list(array.shape)} exceeds max {max_shape}")
                raise SailEngineError("bad input")
        if not graph.dynamic:
            shapes = {n: list(a.shape) for n, a in feeds.items()}
            if not any(all(stage["inputs"][n] == s for n, s in shapes.items()) for stage in graph.stages):
                _log(f"Invalid shape for input tensor: {shapes} is no stage of {graph_name}")
                raise SailEngineError("bad input")
        return graph.run(feeds)
