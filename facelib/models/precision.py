"""Reduced-precision variants of model packages, made with onnxruntime's own quantization tools.

``quantize_package(package, "int8", output, calibration)`` writes a copy of a package whose ONNX
files are quantized; the card records ``metadata["precision"]`` and the new hashes, so every
task opens the variant as it opens the original.  Two methods, chosen per file:

* **dynamic** (``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations
  quantized per call from their observed range) for transformer-style graphs -- MatMul-heavy
  files with no convolutions to speak of, e.g. the FaceFormer decoder step.  It needs no
  calibration data;
* **static Q/DQ** (``quantize_static`` in QDQ format, per-channel int8 weights, MinMax
  calibration) for convolutional files: activation ranges come from real inputs recorded while
  the float32 package runs the caller's samples (:func:`record_feeds`).

Statically, only ``Conv`` / ``ConvTranspose`` inputs are quantized: adding FSA-Net's capsule
MatMuls moved one AFLW2000 face by 26 degrees instead of 2.4 (held-out faces, 3 calibration
faces).  The TensorRT plugin makes its Q/DQ files with :func:`quantize_qdq` too, with
symmetric activations and its own op list.

``bf16`` is a precision word the accelerator plugins take (TensorRT builds it from the same
float32 package); ONNX Runtime's CPU provider has no bfloat16 Conv/MatMul kernels, so asking
for it here raises :class:`~facelib.errors.InputError` naming int8 instead.

How much accuracy each variant costs is measured against float32 on real data by the tests
(tests/test_precision.py) and by ``benchmarks/bench_precision.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelib.errors import BackendError, InputError

#: Precision words every task and backend understands (a backend may support only some).
PRECISIONS = ("fp32", "int8", "bf16")
#: Ops whose inputs static quantization quantizes by default (the rest stay in float).
STATIC_OPS = ("Conv", "ConvTranspose")

Feeds = Mapping[str, np.ndarray]


def ensure_ort_tools() -> None:
    """Put ``onnxruntime/transformers`` on sys.path, as its ``__init__`` does on first import.

    Its modules import each other by bare name (``from fusion_utils import ...``, also reached
    from ``onnxruntime.quantization``); when sys.path was reset after that first import, the
    next module of it would fail to import.
    """
    import onnxruntime.transformers

    folder = os.path.dirname(onnxruntime.transformers.__file__)
    if folder not in sys.path:
        sys.path.append(folder)


def check_precision(precision: str, backend: str = "onnxruntime") -> str:
    """``precision`` if ONNX Runtime on CPU can run it; a typed error naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and backend == "onnxruntime":
        raise InputError(
            "bf16 needs an accelerator backend (e.g. --backend tensorrt --backend-option precision=bf16): "
            "ONNX Runtime's CPU provider has no bfloat16 Conv/MatMul kernels; use precision='int8' on CPU"
        )
    return precision


class _Reader:
    """A ``CalibrationDataReader`` over recorded feeds (one dict per call, then None)."""

    def __init__(self, samples: Sequence[Feeds], names: Sequence[str]) -> None:
        self._samples, self._names = samples, list(names)
        self._iter: Iterator[Feeds] = iter(samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self._iter, None)
        if sample is None:
            return None
        missing = [n for n in self._names if n not in sample]
        if missing:
            raise InputError(f"calibration sample lacks inputs {missing}")
        return {n: np.ascontiguousarray(sample[n]) for n in self._names}

    def rewind(self) -> None:
        self._iter = iter(self._samples)


def _graph_inputs(source: Path) -> list[str]:
    import onnx

    model = onnx.load(os.fspath(source), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in initializers]


def quantize_qdq(
    source: Path,
    target: Path,
    samples: Sequence[Feeds],
    *,
    symmetric: bool = False,
    per_channel: bool = True,
    op_types: Sequence[str] = STATIC_OPS,
) -> Path:
    """Static Q/DQ int8 copy of ``source`` calibrated on ``samples`` (real inputs), at ``target``.

    ``symmetric``: activations with zero point 0 (TensorRT needs it); otherwise asymmetric
    activations, which keep more of the range of post-ReLU tensors on CPU.
    """
    ensure_ort_tools()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not samples:
        raise InputError(
            f"static int8 quantization of {source.name} needs calibration inputs from real data (images, audio)"
        )

    class Reader(_Reader, CalibrationDataReader):
        pass

    try:
        quantize_static(
            os.fspath(source),
            os.fspath(target),
            Reader(samples, _graph_inputs(source)),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(op_types),
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )
    except InputError:
        raise
    except Exception as exc:
        raise BackendError(f"could not quantize {source.name} to int8 Q/DQ: {exc}") from exc
    return target


def quantize_dynamic_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 copy of ``source`` (int8 MatMul/Gemm weights, activations quantized per call)."""
    ensure_ort_tools()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        quantize_dynamic(
            os.fspath(source),
            os.fspath(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
    except Exception as exc:
        raise BackendError(f"could not quantize {source.name} to dynamic int8: {exc}") from exc
    return target


def method_for(source: Path) -> str:
    """``"dynamic"`` for MatMul-dominated graphs (transformers), ``"static"`` for convolutional ones."""
    import onnx

    ops = [n.op_type for n in onnx.load(os.fspath(source), load_external_data=False).graph.node]
    convs = sum(op in ("Conv", "ConvTranspose") for op in ops)
    matmuls = sum(op in ("MatMul", "Gemm") for op in ops)
    return "static" if convs > matmuls else "dynamic"


def record_feeds(task: Any, run: Callable[[], object], limit: int = 64) -> dict[str, list[dict[str, np.ndarray]]]:
    """Every session input ``task`` sees while ``run()`` runs, per role (at most ``limit`` each).

    ``task`` is a :class:`facelib.tasks.base.Task` (sessions it opens later are wrapped through
    its ``session_hook``; ones already open are wrapped in place).
    """
    recorded: dict[str, list[dict[str, np.ndarray]]] = {}

    def wrap(role: str, session: Any) -> Any:
        inner = session.run

        def run_and_record(feeds: Feeds, *args: Any, **kwargs: Any) -> Any:
            bucket = recorded.setdefault(role, [])
            if len(bucket) < limit:
                bucket.append({k: np.array(v, copy=True) for k, v in feeds.items()})
            return inner(feeds, *args, **kwargs)

        session.run = run_and_record
        return session

    previous = task.session_hook
    opened = dict(task._sessions)
    task._sessions.clear()  # re-open through the hook, so existing sessions are recorded too
    task.session_hook = wrap
    try:
        run()
    finally:
        for session in task._sessions.values():
            session.__dict__.pop("run", None)
        task._sessions.clear()
        task._sessions.update(opened)
        task.session_hook = previous
    return recorded


def quantize_package(
    package: str | os.PathLike[str] | Any,
    precision: str,
    output: str | os.PathLike[str],
    calibration: Mapping[str, Sequence[Feeds]] | None = None,
    roles: Sequence[str] | None = None,
) -> Path:
    """Write the ``precision`` variant of ``package`` to ``output`` (complete, or not at all).

    ``calibration`` maps roles to recorded inputs (:func:`record_feeds`); files quantized
    statically need theirs (with calibration given, a convolutional file the task never ran
    while calibrating stays float32 and the card says so).  ``roles`` limits which files are
    quantized (default: all, each by :func:`method_for`).  Returns ``output``.
    """
    import attrs

    from facelib.models.package import ModelPackage, sha256_file

    check_precision(precision)
    pkg = package if isinstance(package, ModelPackage) else ModelPackage.load(Path(package))
    target = Path(output).expanduser()
    if precision == "fp32":
        raise InputError("precision 'fp32' is the package itself; nothing to quantize")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(pkg.root, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".facelib-cache"))
        files = dict(pkg.card.files)
        methods: dict[str, str] = {}
        for role in roles or list(files):
            item = files[role]
            if not item.path.endswith(".onnx"):
                continue
            source = pkg.path(role)
            method = method_for(source)
            quantized = work / item.path
            if method == "static" and calibration is not None and role not in calibration:
                methods[role] = "fp32 (not run while calibrating)"
                continue
            if method == "static":
                quantize_qdq(source, quantized, list((calibration or {}).get(role, ())))
            else:
                quantize_dynamic_int8(source, quantized)
            methods[role] = method
            if item.sha256:
                files[role] = attrs.evolve(item, sha256=sha256_file(quantized))
        card = attrs.evolve(
            pkg.card,
            files=files,
            metadata={**pkg.card.metadata, "precision": precision, "quantization": methods},
        )
        card.write(work)
        for leftover in work.glob("*-inferred.onnx"):
            leftover.unlink()
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def precision_variant(
    task_cls: Any,
    package: Any,
    precision: str,
    calibrate: Callable[[Any], object] | None = None,
    **task_options: Any,
) -> Any:
    """The ``precision`` variant of ``package`` for ``task_cls``, made once and cached.

    ``calibrate(task)`` runs the float32 task on the caller's real inputs (images, audio, a
    clip) so that convolutional files get their activation ranges from them; files that need
    none (dynamic quantization) ignore it.  The variant lives in the package's
    ``.facelib-cache/precision-<precision>`` (or the user cache when the package is read-only);
    delete it to recalibrate.
    """
    from facelib.models.package import ModelPackage

    check_precision(precision)
    pkg = package if isinstance(package, ModelPackage) else ModelPackage.load(package)
    if precision == "fp32":
        return pkg
    if os.access(pkg.root, os.W_OK):
        target = pkg.root / ".facelib-cache" / f"precision-{precision}"
    else:
        from facelib.models.cache import cache_dir

        target = cache_dir() / "precision" / pkg.card.name / precision
    if (target / "facelib.json").is_file():
        return ModelPackage.load(target)
    calibration = None
    if calibrate is not None:
        with task_cls(pkg, backend="onnxruntime", **task_options) as task:
            calibration = record_feeds(task, lambda: calibrate(task))
    return ModelPackage.load(quantize_package(pkg, precision, target, calibration=calibration))
