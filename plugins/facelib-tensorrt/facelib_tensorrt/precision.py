"""FP16 and int8 (Q/DQ) ONNX files for strongly typed TensorRT builds (TensorRT 11 always).

A strongly typed network takes every tensor type from the ONNX file: the precision builder
flags are gone (TensorRT 11) or not allowed (``STRONGLY_TYPED`` on 10.x).  So for ``fp16`` the
ONNX is converted to float16 first, and for ``int8`` quantized with QuantizeLinear /
DequantizeLinear pairs calibrated on real inputs -- NVIDIA's "explicit quantization" that
TensorRT reads from ONNX.  Both conversions use onnxruntime's own tools (a core dependency):

* ``onnxruntime.transformers.float16.convert_float_to_float16`` with ``keep_io_types=True``
  (inputs and outputs stay float32, so callers feed the same arrays);
* ``onnxruntime.quantization.quantize_static`` in QDQ format with symmetric int8 activations
  and weights (TensorRT takes zero-point 0 only), per-channel weights, MinMax calibration on the
  samples given, and Q/DQ only on the inputs of Conv / ConvTranspose / Gemm / MatMul -- the
  placement NVIDIA recommends for explicit quantization (TensorRT developer guide, "Q/DQ
  Layer-Placement Recommendations"); quantizing every op cost FSA-Net 41 degrees at worst on
  the six reference crops instead of 13.

The converted file is written next to the engine being built and removed afterwards.  How close
the result is to float32 is measured with ``facelib check <package> --backend tensorrt
--backend-option precision=fp16`` (reference: onnxruntime, float32).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from facelib.errors import BackendError, InputError

#: Ops whose inputs get Q/DQ pairs (the compute-heavy ones; the rest stay in float).
QUANTIZED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _ort_tools() -> None:
    """Put ``onnxruntime/transformers`` on sys.path, as its ``__init__`` does on first import.

    Its modules import each other by bare name (``from fusion_utils import ...``, also reached
    from ``onnxruntime.quantization``); when sys.path was reset after that first import, the
    next module of it would fail to import.
    """
    import onnxruntime.transformers

    folder = os.path.dirname(onnxruntime.transformers.__file__)
    if folder not in sys.path:
        sys.path.append(folder)


def to_fp16(source: Path, target: Path) -> Path:
    """Write a float16 copy of ``source`` (float32 inputs/outputs kept) to ``target``."""
    import onnx

    _ort_tools()
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(os.fspath(source))
    try:
        converted = convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:
        raise BackendError(f"could not convert {source.name} to float16 for TensorRT: {exc}") from exc
    onnx.save(converted, os.fspath(target))
    return target


class _Reader:
    """``CalibrationDataReader`` over real input samples (one dict per call, then None)."""

    def __init__(self, samples: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> None:
        self._samples = samples
        self._names = list(names)
        self._iter: Iterator[Mapping[str, np.ndarray]] = iter(samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self._iter, None)
        if sample is None:
            return None
        missing = [n for n in self._names if n not in sample]
        if missing:
            raise InputError(f"int8 calibration sample lacks inputs {missing}")
        return {n: np.ascontiguousarray(sample[n], dtype=np.float32) for n in self._names}

    def rewind(self) -> None:
        self._iter = iter(self._samples)


def to_qdq_int8(source: Path, target: Path, samples: Sequence[Mapping[str, np.ndarray]]) -> Path:
    """Write a Q/DQ int8 copy of ``source`` calibrated on ``samples`` (real inputs) to ``target``."""
    import onnx

    _ort_tools()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not samples:
        raise BackendError(
            "int8 on a strongly typed TensorRT network needs calibration samples from real inputs "
            "(CompileRequest.calibration, or the backend option calibration_data=<file.npz>) to place "
            "the Q/DQ scales"
        )
    model = onnx.load(os.fspath(source), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in initializers]

    class Reader(_Reader, CalibrationDataReader):
        pass

    try:
        quantize_static(
            os.fspath(source),
            os.fspath(target),
            Reader(samples, names),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    except InputError:
        raise
    except Exception as exc:
        raise BackendError(f"could not quantize {source.name} to int8 Q/DQ for TensorRT: {exc}") from exc
    return target


def load_calibration(path: str | os.PathLike[str]) -> list[dict[str, np.ndarray]]:
    """Samples from an ``.npz`` of real inputs: one array per input name, samples along axis 0.

    Each sample keeps a batch axis of 1 (``x[i:i+1]``).  All arrays must hold the same count.
    """
    file = Path(path).expanduser()
    try:
        with np.load(file) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read calibration data {file}: {exc}") from exc
    counts = {k: len(v) for k, v in arrays.items()}
    if not arrays or len(set(counts.values())) != 1:
        raise InputError(f"calibration data {file} needs one array per input with equal sample counts, got {counts}")
    n = next(iter(counts.values()))
    return [{k: v[i : i + 1] for k, v in arrays.items()} for i in range(n)]
