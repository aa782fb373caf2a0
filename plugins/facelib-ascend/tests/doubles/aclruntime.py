"""Test double of ``aclruntime`` (the pybind C++ part of ais_bench): sessions on the double's .om."""

from __future__ import annotations

import ctypes
import enum
import os
import threading
import time
from typing import Any

import acl
import numpy as np
import om_format


class dtype(enum.IntEnum):
    float32 = 0
    float16 = 1
    int8 = 2
    int32 = 3
    uint8 = 4
    int16 = 6
    uint16 = 7
    uint32 = 8
    int64 = 9
    uint64 = 10
    double = 11
    bool = 12


for _member in dtype:
    globals()[_member.name] = _member

_NUMPY = {
    "float32": np.float32,
    "float16": np.float16,
    "int8": np.int8,
    "int32": np.int32,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "double": np.float64,
    "bool": np.bool_,
}
_FROM_NUMPY = {np.dtype(v).name: k for k, v in _NUMPY.items()}
_FROM_NUMPY["float64"] = "double"

_LIVE: set[int] = set()
_LOCK = threading.Lock()


def _live_sessions() -> int:
    return len(_LIVE)


class session_options:
    def __init__(self) -> None:
        self.loop = 1
        self.log_level = 2
        self.acl_json_path = ""


class tensor_desc:
    def __init__(self, name: str, datatype: dtype, fmt: int, shape: list[int], size: int, realsize: int) -> None:
        self.name = name
        self.datatype = datatype
        self.format = fmt
        self.shape = shape
        self.size = size
        self.realsize = realsize


class BaseTensor:
    def __init__(self, ptr: int, size: int) -> None:
        self.ptr = ptr
        self.size = size


class Tensor:
    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self.shape = list(array.shape)
        self._on_host = False

    def to_host(self) -> None:
        self._on_host = True

    def to_device(self, device_id: int) -> None:
        self._on_host = False

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if not self._on_host:
            raise RuntimeError("tensor is on the device; call to_host() first")
        return self._array if dtype is None else self._array.astype(dtype)


class _Summary:
    def __init__(self) -> None:
        self.exec_time_list: list[float] = []


def _volume(shape: list[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


class InferenceSession:
    def __init__(self, model_path: str, device_id: int, options: session_options) -> None:
        count, ret = acl.rt.get_device_count()
        if ret != 0 or not 0 <= int(device_id) < count:
            raise RuntimeError(f"[ERROR] acl open device {device_id} failed ret[107001]")
        try:
            header, onnx_bytes = om_format.read(model_path)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"[ERROR] load model from file failed, model file is {model_path} ({exc})") from None
        if header["soc_version"] != acl.get_soc_name():
            raise RuntimeError(
                f"[ERROR] load model failed: the om was built for {header['soc_version']}, "
                f"this device is {acl.get_soc_name()} (ret 145000)"
            )
        import onnxruntime as ort

        self._ort = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self._header = header
        self._kind = header["dynamic"]["kind"]
        self._current: dict[str, list[int]] | None = (
            {t["name"]: list(t["shape"]) for t in header["inputs"]} if self._kind == "static" else None
        )
        if self._kind == "batch":
            # until set_dynamic_batchsize, a dynamic-batch model takes its largest gear: realsize is
            # the max size (Ascend/tools aclruntime ModelInferenceProcessor compares feed bytes with it)
            top = max(header["dynamic"]["batch_gears"])
            self._current = {t["name"]: [top if d < 0 else d for d in t["shape"]] for t in header["inputs"]}
        self._custom: list[int] | None = None
        self._static_requested = False
        self._summary = _Summary()
        self._freed = False
        with _LOCK:
            _LIVE.add(id(self))

    # -- description -----------------------------------------------------------------------------

    def _max_shape(self, t: dict[str, Any]) -> list[int]:
        dyn = self._header["dynamic"]
        shape = list(t["shape"])
        if self._kind == "batch":
            shape = [max(dyn["batch_gears"]) if d < 0 else d for d in shape]
        elif self._kind == "dims":
            best = max(dyn["dims_gears"], key=lambda g: _volume(list(g[t["name"]])) if t["name"] in g else 0)
            if t["name"] in best:
                shape = list(best[t["name"]])
        elif self._kind == "shape" and t["name"] in dyn["ranges"]:
            shape = list(dyn["ranges"][t["name"]][1])
        return shape

    def get_inputs(self) -> list[tensor_desc]:
        out = []
        for t in self._header["inputs"]:
            item = np.dtype(_NUMPY[t["dtype"]]).itemsize
            size = _volume(self._max_shape(t)) * item
            real = _volume(self._current[t["name"]]) * item if self._current else size
            out.append(tensor_desc(t["name"], dtype[t["dtype"]], t.get("format", 0), list(t["shape"]), size, real))
        return out

    def get_outputs(self) -> list[tensor_desc]:
        out = []
        for t in self._header["outputs"]:
            item = np.dtype(_NUMPY[t["dtype"]]).itemsize
            size = _volume([d if d >= 0 else 1 for d in t["shape"]]) * item
            out.append(tensor_desc(t["name"], dtype[t["dtype"]], 2, list(t["shape"]), size, size))
        return out

    # -- dynamic settings ------------------------------------------------------------------------

    def _require(self, kind: str, what: str) -> None:
        if self._kind != kind:
            raise RuntimeError(f"[ERROR] {what}: the model is not a {kind} model (it is {self._kind})")

    def set_staticbatch(self) -> None:
        self._static_requested = True

    def set_dynamic_batchsize(self, batch: int) -> None:
        self._require("batch", "set_dynamic_batchsize")
        gears = self._header["dynamic"]["batch_gears"]
        if int(batch) not in gears:
            raise RuntimeError(f"[ERROR] dynamic batch {batch} is not in the model's gears {gears}")
        self._current = {t["name"]: [int(batch) if d < 0 else d for d in t["shape"]] for t in self._header["inputs"]}

    def set_dynamic_hw(self, w: int, h: int) -> None:
        self._require("hw", "set_dynamic_hw")
        raise RuntimeError("[ERROR] dynamic hw gears are not produced by this double's atc")

    def _parse(self, text: str) -> dict[str, list[int]]:
        shapes: dict[str, list[int]] = {}
        for part in text.split(";"):
            name, _, dims = part.rpartition(":")
            shapes[name] = [int(v) for v in dims.split(",") if v != ""]
        names = [t["name"] for t in self._header["inputs"]]
        if list(shapes) != names:
            raise RuntimeError(f"[ERROR] dynamic shape string names {list(shapes)}, model inputs are {names}")
        for t in self._header["inputs"]:
            got = shapes[t["name"]]
            if len(got) != len(t["shape"]) or any(d >= 0 and d != g for d, g in zip(t["shape"], got)):
                raise RuntimeError(f"[ERROR] shape {got} of {t['name']} does not fit {t['shape']}")
        return shapes

    def set_dynamic_dims(self, text: str) -> None:
        self._require("dims", "set_dynamic_dims")
        shapes = self._parse(text)
        for gear in self._header["dynamic"]["dims_gears"]:
            if all(shapes[n] == list(g) for n, g in gear.items()):
                self._current = shapes
                return
        raise RuntimeError(f"[ERROR] dymdims {text} is not one of the model's gears")

    def set_dynamic_shape(self, text: str) -> None:
        self._require("shape", "set_dynamic_shape")
        shapes = self._parse(text)
        for name, (lo, hi) in self._header["dynamic"]["ranges"].items():
            if any(s < a or (b >= 0 and s > b) for s, a, b in zip(shapes[name], lo, hi)):
                raise RuntimeError(f"[ERROR] shape {shapes[name]} of {name} is outside the range {lo}~{hi}")
        self._current = shapes

    def set_custom_outsize(self, sizes: list[int]) -> None:
        if len(sizes) != len(self._header["outputs"]):
            raise RuntimeError("[ERROR] custom_sizes count does not match the outputs")
        self._custom = [int(s) for s in sizes]

    def get_max_dym_batchsize(self) -> int:
        self._require("batch", "get_max_dym_batchsize")
        return int(max(self._header["dynamic"]["batch_gears"]))

    # -- running -----------------------------------------------------------------------------------

    def run(self, output_names: list[str], inputs: list[Any]) -> list[Tensor]:
        if self._freed:
            raise RuntimeError("[ERROR] session resources were freed")
        if self._current is None:
            raise RuntimeError("[ERROR] dynamic model: set the dynamic batch/dims/shape before running")
        if self._static_requested and self._kind != "static":
            self._static_requested = False
        descs = self._header["inputs"]
        if len(inputs) != len(descs):
            raise RuntimeError("input datas and intensors nums not matched!")
        if list(output_names) != [t["name"] for t in self._header["outputs"]]:
            raise RuntimeError(f"[ERROR] output names {output_names} do not match the model")
        feeds = {}
        for i, (tensor, t) in enumerate(zip(inputs, descs)):
            np_type = np.dtype(_NUMPY[t["dtype"]])
            shape = self._current[t["name"]]
            realsize = _volume(shape) * np_type.itemsize
            if tensor.size != realsize:
                raise RuntimeError(
                    f"[ERROR] input {i} ({t['name']}) size {tensor.size} does not match realsize {realsize}"
                )
            raw = ctypes.string_at(tensor.ptr, tensor.size)
            feeds[t["name"]] = np.frombuffer(raw, np_type).reshape(shape).copy()
        start = time.perf_counter()
        values = self._ort.run(None, feeds)
        self._summary.exec_time_list.append((time.perf_counter() - start) * 1000)
        out = []
        for i, value in enumerate(values):
            value = np.ascontiguousarray(value)
            if self._kind == "shape" and (self._custom is None or value.nbytes > self._custom[i]):
                raise RuntimeError(
                    f"[ERROR] output {i} needs {value.nbytes} bytes, custom out size is "
                    f"{None if self._custom is None else self._custom[i]}"
                )
            out.append(Tensor(value))
        return out

    def sumary(self) -> _Summary:
        return self._summary

    def reset_sumaryinfo(self) -> None:
        self._summary = _Summary()

    def free_resource(self) -> None:
        self._freed = True
        with _LOCK:
            _LIVE.discard(id(self))

    @staticmethod
    def finalize() -> None:
        pass


def _numpy_name(array: np.ndarray) -> str:
    return _FROM_NUMPY[array.dtype.name]


__all__ = ["BaseTensor", "InferenceSession", "Tensor", "dtype", "session_options", "tensor_desc"]
_ = os
