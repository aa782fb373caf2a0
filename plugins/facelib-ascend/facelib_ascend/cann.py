"""``ascend-cann``: ONNX models on an Ascend NPU through onnxruntime's CANNExecutionProvider.

No compile step: onnxruntime-cann partitions the ONNX graph and compiles it with CANN's graph
engine on first use.  This is facelib's ONNX Runtime backend with the CANN provider (and its
options) put first and the CPU provider as the fallback for unsupported nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from facelib.backends.base import Availability
from facelib.backends.onnxruntime import OnnxRuntimeBackend

PROVIDER = "CANNExecutionProvider"


def _option_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


class AscendCannBackend(OnnxRuntimeBackend):
    """onnxruntime + CANNExecutionProvider on one NPU.

    Options
    -------
    device_id:
        NPU id as ``npu-smi info`` shows it (default 0).
    precision_mode:
        CANN precision mode (``force_fp32``, ``force_fp16``, ``allow_fp32_to_fp16``,
        ``must_keep_origin_dtype``, ``allow_mix_precision``); default: CANN's.
    provider_options:
        Further CANN EP options passed through untouched (``npu_mem_limit``,
        ``arena_extend_strategy``, ``enable_cann_graph``, ``dump_om_model``,
        ``op_select_impl_mode``...).  Only pass keys your onnxruntime-cann version knows: it
        rejects unknown ones.
    intra_op_num_threads, inter_op_num_threads, graph_optimization_level, session_config:
        As for the ``onnxruntime`` backend.
    """

    name: ClassVar[str] = "ascend-cann"
    formats: ClassVar[tuple[str, ...]] = (".onnx",)
    priority: ClassVar[int] = 250

    def __init__(
        self,
        device_id: int = 0,
        precision_mode: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
        intra_op_num_threads: int = 0,
        inter_op_num_threads: int = 0,
        graph_optimization_level: str = "all",
        session_config: Mapping[str, str] | None = None,
    ) -> None:
        cann: dict[str, Any] = {"device_id": int(device_id)}
        if precision_mode is not None:
            cann["precision_mode"] = precision_mode
        cann.update(dict(provider_options or {}))
        super().__init__(
            providers=[(PROVIDER, {k: _option_value(v) for k, v in cann.items()}), "CPUExecutionProvider"],
            intra_op_num_threads=intra_op_num_threads,
            inter_op_num_threads=inter_op_num_threads,
            graph_optimization_level=graph_optimization_level,
            session_config=session_config,
        )

    @classmethod
    def available(cls) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return Availability(False, f"onnxruntime is not importable: {exc}")
        have = ort.get_available_providers()
        if PROVIDER not in have:
            return Availability(
                False,
                f"this onnxruntime build ({ort.__version__}) has no {PROVIDER} (it has {', '.join(have)}); "
                "install facelib's cann extra (onnxruntime-cann) in an environment without another onnxruntime "
                "build, with a matching CANN toolkit (source /usr/local/Ascend/ascend-toolkit/set_env.sh)",
            )
        return Availability(True)
