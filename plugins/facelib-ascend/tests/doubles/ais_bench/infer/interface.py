"""Test double of ``ais_bench.infer.interface`` (the Python wrapper around aclruntime).

Two API generations, chosen by ``FACELIB_AIS_BENCH_DOUBLE_API``:

* ``msit`` (default): the newer ais_bench (gitee ascend/ait -> msit, components/benchmark;
  mirror github mjlovesz/sync-ait ``ait/components/benchmark/ais_bench/infer/interface.py``):
  ``infer(feeds, mode, custom_sizes, out_array)`` dispatches every mode, ``summary()``,
  ``free_resource()``, static ``finalize()``.
* ``tools-2023``: github Ascend/tools @ 9d6da90
  ``ais-bench_workload/tool/ais_bench/ais_bench/infer/interface.py``: ``infer(feeds, mode,
  custom_sizes)`` only handles ``dymshape``/``dymdims`` -- ``static`` and ``dymbatch`` fall
  through to ``run`` without setting a batch; ``sumary()``; instance ``finalize()``; no
  ``free_resource``.
"""

from __future__ import annotations

import os
from typing import Any

import aclruntime
import numpy as np

_NP_SCALARS = (
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.float16,
    np.float32,
    np.float64,
)


_API = os.environ.get("FACELIB_AIS_BENCH_DOUBLE_API", "msit")


class InferSession:
    def __init__(
        self, device_id: int, model_path: str, acl_json_path: str | None = None, debug: bool = False, loop: int = 1
    ):
        self.device_id = device_id
        self.model_path = model_path
        self.loop = loop
        self.options = aclruntime.session_options()
        if acl_json_path is not None:
            self.options.acl_json_path = acl_json_path
        self.options.log_level = 1 if debug else 2
        self.options.loop = loop
        self.session = aclruntime.InferenceSession(model_path, device_id, self.options)
        self.outputs_names = [meta.name for meta in self.session.get_outputs()]
        self.intensors_desc = self.session.get_inputs()
        self.outtensors_desc = self.session.get_outputs()
        self.infer_mode_switch = {
            "static": self._static_prepare,
            "dymbatch": self._dymbatch_prepare,
            "dymhw": self._dymhw_prepare,
            "dymdims": self._dymdims_prepare,
            "dymshape": self._dymshape_prepare,
        }

    @staticmethod
    def finalize() -> None:
        if hasattr(aclruntime.InferenceSession, "finalize"):
            aclruntime.InferenceSession.finalize()

    def get_inputs(self) -> list[Any]:
        self.intensors_desc = self.session.get_inputs()
        return self.intensors_desc

    def get_outputs(self) -> list[Any]:
        self.outtensors_desc = self.session.get_outputs()
        return self.outtensors_desc

    def set_staticbatch(self) -> None:
        self.session.set_staticbatch()

    def set_dynamic_batchsize(self, dym_batch: int) -> None:
        self.session.set_dynamic_batchsize(dym_batch)

    def set_dynamic_hw(self, w: int, h: int) -> None:
        self.session.set_dynamic_hw(w, h)

    def get_max_dym_batchsize(self) -> int:
        return self.session.get_max_dym_batchsize()

    def set_dynamic_dims(self, dym_dims: str) -> None:
        self.session.set_dynamic_dims(dym_dims)

    def set_dynamic_shape(self, dym_shape: str) -> None:
        self.session.set_dynamic_shape(dym_shape)

    def set_custom_outsize(self, custom_sizes: list[int]) -> None:
        self.session.set_custom_outsize(custom_sizes)

    def run(self, feeds: list[Any], out_array: bool = False) -> list[Any]:
        if feeds and isinstance(feeds[0], np.ndarray):
            inputs = [aclruntime.BaseTensor(a.__array_interface__["data"][0], a.nbytes) for a in feeds]
        else:
            inputs = feeds
        outputs = self.session.run(self.outputs_names, inputs)
        if out_array:
            for tensor in outputs:
                tensor.to_host()
            return [np.array(tensor) for tensor in outputs]
        return outputs

    def infer(
        self, feeds: list[Any], mode: str = "static", custom_sizes: Any = 100000, out_array: bool = True
    ) -> list[Any]:
        if _API == "tools-2023":
            return self._infer_2023(feeds, mode, custom_sizes)
        inputs, shapes = [], []
        descs = self.session.get_inputs()
        for i, feed in enumerate(feeds):
            if type(feed) is np.ndarray:
                value = feed if feed.flags.c_contiguous else np.ascontiguousarray(feed)
                shapes.append(value.shape)
            elif type(feed) in _NP_SCALARS:
                value = np.array(feed)
                shapes.append([feed.size])
            else:
                raise RuntimeError(f"type:{type(feed)} invalid")
            # stricter than ais_bench (which only compares byte sizes): the dtype must match
            if i < len(descs) and aclruntime._numpy_name(value) != descs[i].datatype.name:
                raise RuntimeError(
                    f"[double] input {i} ({descs[i].name}) is {value.dtype}, the model takes {descs[i].datatype.name}"
                )
            inputs.append(value)
        prepare = self.infer_mode_switch.get(mode)
        if prepare is None:
            raise RuntimeError(
                f'wrong infer_mode:{mode}, only support "static","dymbatch","dymhw","dymdims","dymshape"'
            )
        prepare(shapes, custom_sizes)
        return self.run(inputs, out_array)

    def free_resource(self) -> None:
        if hasattr(self.session, "free_resource"):
            self.session.free_resource()

    def summary(self) -> Any:
        return self.session.sumary()  # aclruntime binds only the misspelt "sumary" (both generations)

    def _static_prepare(self, shapes: list[Any], custom_sizes: Any) -> None:
        self.set_staticbatch()

    def _dymbatch_prepare(self, shapes: list[Any], custom_sizes: Any) -> None:
        indesc = self.get_inputs()
        if len(shapes) != len(indesc):
            raise RuntimeError("input datas and intensors nums not matched!")
        for i, shape in enumerate(shapes):
            for j, dim in enumerate(shape):
                if indesc[i].shape[j] < 0:
                    self.set_dynamic_batchsize(dim)
                    return
                if indesc[i].shape[j] != dim:
                    raise RuntimeError("input datas and intensors dim not matched!")
        raise RuntimeError("not a dymbatch model!")

    def _dymhw_prepare(self, shapes: list[Any], custom_sizes: Any) -> None:
        indesc = self.get_inputs()
        if len(shapes) != len(indesc):
            raise RuntimeError("input datas and intensors nums not matched!")
        for i, shape in enumerate(shapes):
            if indesc[i].shape[2] < 0 and indesc[i].shape[3] < 0:
                self.set_dynamic_hw(shape[2], shape[3])
                return
        raise RuntimeError("not a dymhw model!")

    def _shape_string(self, shapes: list[Any]) -> str:
        indesc = self.get_inputs()
        if len(shapes) != len(indesc):
            raise RuntimeError("input datas and intensors nums not matched!")
        return ";".join(f"{indesc[i].name}:{','.join(str(v) for v in shape)}" for i, shape in enumerate(shapes))

    def _dymdims_prepare(self, shapes: list[Any], custom_sizes: Any) -> None:
        self.session.set_dynamic_dims(self._shape_string(shapes))

    def _dymshape_prepare(self, shapes: list[Any], custom_sizes: Any) -> None:
        text = self._shape_string(shapes)
        outdesc = self.get_outputs()
        self.session.set_dynamic_shape(text)
        if isinstance(custom_sizes, int):
            custom_sizes = [custom_sizes] * len(outdesc)
        elif not isinstance(custom_sizes, list):
            raise RuntimeError(f"custom_sizes:{custom_sizes} type:{type(custom_sizes)} invalid")
        self.session.set_custom_outsize(custom_sizes)

    def _infer_2023(self, feeds: list[Any], mode: str, custom_sizes: Any) -> list[Any]:
        """The 2023 Ascend/tools ``infer``: no ``out_array`` argument, and only dymshape/dymdims set shapes."""
        inputs, shapes = [], []
        for feed in feeds:
            if type(feed) is np.ndarray:
                shapes.append(feed.shape)
            elif type(feed) in _NP_SCALARS:
                feed = np.array(feed)
                shapes.append([feed.size])
            else:
                raise RuntimeError(f"type:{type(feed)} invalid")
            inputs.append(feed)
        if mode in ("dymshape", "dymdims"):
            text = self._shape_string(shapes)
            if mode == "dymshape":
                self.session.set_dynamic_shape(text)
                if isinstance(custom_sizes, int):
                    custom_sizes = [custom_sizes] * len(self.get_outputs())
                self.session.set_custom_outsize(custom_sizes)
            else:
                self.session.set_dynamic_dims(text)
        return self.run(inputs, out_array=True)


if _API == "tools-2023":
    # the 2023 wrapper: no free_resource, "sumary" only, finalize on the instance
    del InferSession.free_resource
    del InferSession.summary, InferSession.get_max_dym_batchsize
    InferSession.sumary = lambda self: self.session.sumary()  # type: ignore[attr-defined]
    InferSession.finalize = lambda self: None  # type: ignore[assignment,method-assign]
