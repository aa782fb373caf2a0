"""``ascend-cann``: ONNX models on an Ascend NPU through onnxruntime's CANNExecutionProvider.

No compile step: onnxruntime-cann partitions the ONNX graph and compiles it with CANN's graph
engine on first use.  This is facelib's ONNX Runtime backend with the CANN provider (and its
options) put first and the CPU provider as the fallback for unsupported nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from facelib.backends.base import Availability
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import BackendError, InputError

PROVIDER = "CANNExecutionProvider"
#: CANNExecutionProvider option keys onnxruntime-cann parses.  1.24.4 (the newest wheel on PyPI)
#: accepts the first ten -- probed on the real wheel, tests/sdk_names/onnxruntime-cann-1.24.4.json;
#: onnxruntime main (cann_execution_provider_info.cc @38170d0) replaces precision_mode with
#: precision_mode_v2 and adds input_format and the dynamic_* keys.  An unknown key makes
#: onnxruntime drop the provider and run on CPU (it only logs "Unknown provider option").
KNOWN_OPTIONS = (
    "device_id",
    "npu_mem_limit",
    "arena_extend_strategy",
    "enable_cann_graph",
    "enable_cann_subgraph",
    "dump_graphs",
    "dump_om_model",
    "precision_mode",
    "op_select_impl_mode",
    "optypelist_for_implmode",
    "precision_mode_v2",
    "input_format",
    "dynamic_batch_size",
    "dynamic_image_size",
    "dynamic_dims",
)


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
        ``op_select_impl_mode``...; newer onnxruntime: ``precision_mode_v2``, ``input_format``,
        ``dynamic_*``).  Keys no onnxruntime-cann knows are refused here; a key the installed
        version does not know makes onnxruntime fall back to CPU, which ``load`` reports.
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
        unknown = sorted(set(provider_options or {}) - set(KNOWN_OPTIONS))
        if unknown:
            raise InputError(
                f"unknown CANNExecutionProvider options {unknown}; onnxruntime-cann knows {list(KNOWN_OPTIONS)}"
            )
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

    def _create(self, path: Path) -> Any:
        session = super()._create(path)
        active = list(session.get_providers())
        if PROVIDER not in active:
            # onnxruntime drops a provider whose options it cannot parse (or that fails to
            # start) and carries on with the rest, printing only an "EP Error" to stderr
            raise BackendError(
                f"onnxruntime did not put {path.name} on the NPU: it runs with {active} only. "
                f"The {PROVIDER} options {self.options['providers'][0][1]} were refused or CANN failed to "
                "start (see onnxruntime's 'EP Error' above); keep to the keys your onnxruntime-cann "
                "version knows (1.24: precision_mode; newer: precision_mode_v2) and check 'npu-smi info'"
            )
        return session
